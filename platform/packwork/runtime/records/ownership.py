"""Who owns a record and who else may reach it: sharing a record with a user or a team, and
transferring every record of one user to another (when someone leaves)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from packwork.errors import NotFound, PermissionDenied, ValidationError
from packwork.runtime import audit
from packwork.runtime.records import core
from packwork.runtime.records.core import Context, Target
from packwork.runtime.system import pw_share, pw_team, pw_user
from packwork.runtime.values import INT64

ACCESS = ("read", "edit")


def _managed(ctx: Context, name: str, record_id: int) -> tuple[Target, Mapping]:
    """A record the actor may share: their own, or one within their transfer reach.
    404 if they cannot read it, 403 if they may not manage it."""
    target = core.target_for(ctx, name, "read")
    row = core.fetch(ctx, target, record_id)
    if row["owner_id"] != ctx.actor.user_id or ctx.actor.user_id is None:
        if not ctx.access.policy(name).reach("transfer").granted:
            raise PermissionDenied(f"only the owner of {name} {record_id} may share it")
        core.require_row(ctx, target, row, "transfer")
    return target, row


def record_shares(ctx: Context, name: str, record_id: int) -> list[dict]:
    _managed(ctx, name, record_id)
    rows = ctx.conn.execute(sa.select(pw_share.c.id, pw_share.c.user_id, pw_share.c.team_id, pw_share.c.access)
                            .where(pw_share.c.entity == name, pw_share.c.record_id == record_id)
                            .order_by(pw_share.c.id)).mappings()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def share_record(ctx: Context, name: str, record_id: int, body: object) -> dict:
    """Share with `{"user": id}` or `{"team": id}`, `"access": "read" | "edit"`. Sharing again
    with the same recipient changes the access."""
    target, row = _managed(ctx, name, record_id)
    user_id, team_id, access = _recipient(ctx, body)
    who = pw_share.c.user_id == user_id if user_id is not None else pw_share.c.team_id == team_id
    where = (pw_share.c.entity == name, pw_share.c.record_id == record_id, who)
    share_id = ctx.conn.execute(sa.select(pw_share.c.id).where(*where)).scalar()
    if share_id is None:
        share_id = ctx.conn.execute(pw_share.insert().values(
            entity=name, record_id=record_id, user_id=user_id, team_id=team_id, access=access,
            created_by=ctx.actor.user_id, created_at=ctx.now).returning(pw_share.c.id)).scalar_one()
    else:
        ctx.conn.execute(pw_share.update().where(pw_share.c.id == share_id).values(access=access))
    recipient = f"user {user_id}" if user_id is not None else f"team {team_id}"
    audit.record_change(ctx.conn, name, record_id, "share", ctx.actor.user_id, ctx.now,
                        {"shared_with": [None, f"{recipient} ({access})"]})
    shared = {"id": share_id, "access": access}
    return shared | ({"user_id": user_id} if user_id is not None else {"team_id": team_id})


def unshare_record(ctx: Context, name: str, record_id: int, share_id: int) -> None:
    _managed(ctx, name, record_id)
    if not _is_id(share_id):
        raise NotFound(f"{name} {record_id} has no share {share_id}")
    gone = ctx.conn.execute(pw_share.delete().where(
        pw_share.c.id == share_id, pw_share.c.entity == name, pw_share.c.record_id == record_id)
        .returning(pw_share.c.user_id, pw_share.c.team_id, pw_share.c.access)).first()
    if gone is None:
        raise NotFound(f"{name} {record_id} has no share {share_id}")
    recipient = f"user {gone.user_id}" if gone.user_id is not None else f"team {gone.team_id}"
    audit.record_change(ctx.conn, name, record_id, "unshare", ctx.actor.user_id, ctx.now,
                        {"shared_with": [f"{recipient} ({gone.access})", None]})


def _recipient(ctx: Context, body: object) -> tuple[int | None, int | None, str]:
    if not isinstance(body, Mapping) or ("user" in body) == ("team" in body):
        raise ValidationError("name one recipient", {"user": ["send either `user` or `team`, with an id"]})
    access = body.get("access", "read")
    if access not in ACCESS:
        raise ValidationError("unknown access", {"access": ["must be 'read' or 'edit'"]})
    key = "user" if "user" in body else "team"
    value, table = body[key], pw_user if key == "user" else pw_team
    if not _is_id(value) or ctx.conn.execute(sa.select(table.c.id).where(table.c.id == value)).first() is None:
        raise ValidationError(f"there is no such {key}", {key: [f"there is no {key} {value!r}"]})
    return (value, None, access) if key == "user" else (None, value, access)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64


def transfer_records(ctx: Context, from_user: int, to_user: int, entities: Iterable[str] | None = None) -> dict:
    """Give every live record `from_user` owns to `to_user`, entity by entity, as far as the
    actor's transfer grant reaches; one audit entry per record, all in the caller's
    transaction. Returns {entity: records moved} and, under "_left", what stayed behind."""
    for user_id in (from_user, to_user):
        if not _is_id(user_id) or \
                ctx.conn.execute(sa.select(pw_user.c.id).where(pw_user.c.id == user_id)).first() is None:
            raise ValidationError("there is no such user", {"user": [f"there is no user {user_id!r}"]})
    names = list(entities) if entities is not None else [
        e.name for e in ctx.catalog.metadata.entities.values() if not e.hidden]
    moved, left = {}, {}
    for name in names:
        target = core.target_for(ctx, name)
        table = target.table
        mine = (table.c.owner_id == from_user, table.c.deleted_at.is_(None))
        if ctx.access.policy(name).reach("transfer").granted:
            rows = ctx.conn.execute(table.update().where(
                *mine, *core.scope(ctx, target), *core.scope(ctx, target, "transfer"))
                .values(owner_id=to_user, version=table.c.version + 1, updated_at=ctx.now)
                .returning(table.c.id)).scalars().all()
            if rows:
                audit.record_changes(ctx.conn, name, rows, "transfer", ctx.actor.user_id, ctx.now,
                                     {"owner_id": [from_user, to_user]})
                moved[name] = len(rows)
        remaining = ctx.conn.execute(sa.select(sa.func.count()).select_from(table)
                                     .where(*mine, *core.scope(ctx, target))).scalar()
        if remaining:
            left[name] = remaining
    return moved | ({"_left": left} if left else {})
