"""The audit trail: one row per write, written in the write's own transaction."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
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
    """One entry per (record id, changes), as one executemany."""
    if entries:
        _Many.of(conn.dialect).run(conn, entity, action, actor_id, at, entries)


class _Many:
    """The audit INSERT compiled once per dialect and run as the driver's own executemany, with
    SQLAlchemy's own conversions applied to each value: SQLAlchemy's handling of each row of an
    executemany (parameters, then conversions) costs several times the insert itself, and an
    import writes an entry per record. The values all entries share are converted once."""

    COLUMNS = ("entity", "record_id", "action", "actor_id", "at", "changes")

    def __init__(self, dialect: sa.Dialect):
        # inline: no RETURNING of the new id (PostgreSQL would add one to a single-row INSERT)
        compiled = pw_audit.insert().inline().compile(dialect=dialect, column_keys=list(self.COLUMNS))
        self.sql = str(compiled)
        # the positions of the columns in the driver's parameters, or None: it takes them by name
        self.positions = tuple(compiled.positiontup.index(c) for c in self.COLUMNS) if compiled.positional \
            else None
        binds = [pw_audit.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in self.COLUMNS]
        self.convert = [bind or _same for bind in binds]

    @classmethod
    def of(cls, dialect: sa.Dialect) -> "_Many":
        found = _compiled.get(dialect)
        if found is None:
            found = _compiled[dialect] = cls(dialect)
        return found

    def run(self, conn: sa.Connection, entity: str, action: str, actor_id: int | None, at: datetime,
            entries: list[tuple[int, dict[str, list]]]) -> None:
        entity_of, record_id_of, action_of, actor_of, at_of, changes_of = self.convert
        shared = entity_of(entity), action_of(action), actor_of(actor_id), at_of(at)
        rows = [(shared[0], record_id_of(record_id), shared[1], shared[2], shared[3], changes_of(changes))
                for record_id, changes in entries]  # in COLUMNS order
        if self.positions is None:
            rows = [dict(zip(self.COLUMNS, row)) for row in rows]
        elif self.positions != tuple(range(len(self.COLUMNS))):
            rows = [tuple(row[i] for i in self.positions) for row in rows]
        conn.exec_driver_sql(self.sql, rows)


_compiled: weakref.WeakKeyDictionary[sa.Dialect, _Many] = weakref.WeakKeyDictionary()  # as SQLAlchemy keeps its own


def _same(value: object) -> object:
    return value


def history(conn: sa.Connection, entity: str, record_id: int, limit: int = 200) -> list[dict]:
    """The newest `limit` entries for one record, newest first."""
    query = (sa.select(pw_audit.c.id, pw_audit.c.action, pw_audit.c.at, pw_audit.c.changes,
                       pw_audit.c.actor_id, pw_user.c.username)
             .select_from(pw_audit.outerjoin(pw_user, pw_user.c.id == pw_audit.c.actor_id))
             .where(pw_audit.c.entity == entity, pw_audit.c.record_id == record_id)
             .order_by(pw_audit.c.id.desc()).limit(limit))
    return [{"id": row.id, "action": row.action, "at": row.at, "actor": row.username,
             "actor_id": row.actor_id, "changes": row.changes} for row in conn.execute(query)]


def last_actors(conn: sa.Connection, entity: str, record_ids: Iterable[int], action: str) -> dict[int, dict | None]:
    """Who last took `action` on each of `record_ids` (one query, served by the record index):
    {record id: {id, username, display_name}, or None for the platform itself}. A record with
    no such entry (written before the audit trail, or by SQL) is left out."""
    ids = sorted(set(record_ids))
    if not ids:
        return {}
    query = (sa.select(pw_audit.c.record_id, pw_audit.c.actor_id, pw_user.c.username, pw_user.c.display_name)
             .select_from(pw_audit.outerjoin(pw_user, pw_user.c.id == pw_audit.c.actor_id))
             .where(pw_audit.c.entity == entity, pw_audit.c.record_id.in_(ids), pw_audit.c.action == action)
             .order_by(pw_audit.c.id))
    found: dict[int, dict | None] = {}
    for row in conn.execute(query):  # oldest first: each record keeps its latest entry
        found[row.record_id] = None if row.actor_id is None else \
            {"id": row.actor_id, "username": row.username, "display_name": row.display_name or row.username}
    return found
