"""The audit trail: one row per write, written in the write's own transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from packwork.runtime.system import pw_audit, pw_user


_INSERT = pw_audit.insert()


def record_change(conn: sa.Connection, entity: str, record_id: int, action: str, actor_id: int | None,
                  at: datetime, changes: dict[str, list]) -> None:
    """`changes` maps each written field to [old, new], as JSON values."""
    conn.execute(_INSERT, {"entity": entity, "record_id": record_id, "action": action, "actor_id": actor_id,
                           "at": at, "changes": changes})


def record_changes(conn: sa.Connection, entity: str, record_ids: list[int], action: str, actor_id: int | None,
                   at: datetime, changes: dict[str, list]) -> None:
    """The same change to many records, as one multi-row insert."""
    conn.execute(_INSERT, [{"entity": entity, "record_id": record_id, "action": action, "actor_id": actor_id,
                            "at": at, "changes": changes} for record_id in record_ids])


def record_each(conn: sa.Connection, entity: str, action: str, actor_id: int | None, at: datetime,
                entries: list[tuple[int, dict[str, list]]]) -> None:
    """One entry per (record id, changes), as one multi-row insert."""
    conn.execute(_INSERT, [{"entity": entity, "record_id": record_id, "action": action, "actor_id": actor_id,
                            "at": at, "changes": changes} for record_id, changes in entries])


def history(conn: sa.Connection, entity: str, record_id: int, limit: int = 200) -> list[dict]:
    """The newest `limit` entries for one record, newest first."""
    query = (sa.select(pw_audit.c.id, pw_audit.c.action, pw_audit.c.at, pw_audit.c.changes,
                       pw_audit.c.actor_id, pw_user.c.username)
             .select_from(pw_audit.outerjoin(pw_user, pw_user.c.id == pw_audit.c.actor_id))
             .where(pw_audit.c.entity == entity, pw_audit.c.record_id == record_id)
             .order_by(pw_audit.c.id.desc()).limit(limit))
    return [{"id": row.id, "action": row.action, "at": row.at, "actor": row.username,
             "actor_id": row.actor_id, "changes": row.changes} for row in conn.execute(query)]
