"""API tokens: `pwt_` + 32 random bytes, shown once; only their SHA-256 is stored.

A high-entropy secret needs no slow password hash: SHA-256 lets a lookup by hash use the
unique index, so authenticating a request is one indexed query."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import PackworkError
from packwork.runtime.permissions import Actor
from packwork.runtime.system import pw_meta_version, pw_share, pw_team_member, pw_team_path, pw_token, pw_user, \
    pw_user_role

PREFIX = "pwt_"


@dataclass(frozen=True, slots=True)
class Authenticated:
    actor: Actor
    version_id: int | None  # the newest metadata version, read in the same query


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(conn: sa.Connection, user_id: int, name: str) -> tuple[int, str]:
    """(token id, secret). The secret is not stored and cannot be shown again."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(pw_token.insert().values(
        user_id=user_id, name=name[:80], token_hash=digest(secret),
        created_at=datetime.now(timezone.utc)).returning(pw_token.c.id)).scalar_one()
    return token_id, secret


def revoke_token(conn: sa.Connection, token_id: int) -> None:
    done = conn.execute(pw_token.update().where(pw_token.c.id == token_id, pw_token.c.revoked_at.is_(None))
                        .values(revoked_at=datetime.now(timezone.utc)))
    if done.rowcount != 1:
        raise PackworkError(f"there is no active token {token_id}")


def list_tokens(conn: sa.Connection) -> list[sa.Row]:
    return conn.execute(sa.select(pw_token.c.id, pw_user.c.username, pw_token.c.name, pw_token.c.created_at,
                                  pw_token.c.revoked_at)
                        .join(pw_user, pw_user.c.id == pw_token.c.user_id).order_by(pw_token.c.id)).all()


def actor_statement(credential: sa.Table, *extra: sa.ColumnElement) -> sa.Select:
    """The one query that turns a credential row (an API token or a browser session, found by
    the hash of its secret) into an actor: the user, their roles, team, whether anything is
    shared with them, and the newest metadata version id."""
    user_id = credential.c.user_id
    roles = (sa.select(sa.func.aggregate_strings(pw_user_role.c.role, ","))
             .where(pw_user_role.c.user_id == user_id).scalar_subquery())
    newest = sa.select(sa.func.max(pw_meta_version.c.id)).scalar_subquery()
    teams_above = sa.select(pw_team_path.c.ancestor_id).where(pw_team_path.c.descendant_id == pw_team_member.c.team_id)
    shared = sa.exists().where(sa.or_(pw_share.c.user_id == user_id, pw_share.c.team_id.in_(teams_above)))
    return (sa.select(user_id, pw_user.c.language, roles.label("roles"), newest.label("version_id"),
                      pw_team_member.c.team_id, shared.label("shared"), *extra)
            .join(pw_user, pw_user.c.id == user_id)
            .outerjoin(pw_team_member, pw_team_member.c.user_id == user_id)
            .where(credential.c.token_hash == sa.bindparam("token_hash"), pw_user.c.is_active.is_(True)))


def actor_of(row: sa.Row) -> Actor:
    return Actor(row.user_id, frozenset((row.roles or "").split(",")) - {""}, row.language, row.team_id,
                 bool(row.shared))


_AUTHENTICATE = actor_statement(pw_token).where(pw_token.c.revoked_at.is_(None))


def authenticate(conn: sa.Connection, secret: str) -> Authenticated | None:
    """The actor a bearer secret stands for (None if unknown, revoked or the user inactive),
    with their roles, team, whether anything is shared with them, and the newest metadata
    version id, in one query."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    row = conn.execute(_AUTHENTICATE, {"token_hash": digest(secret)}).first()
    if row is None:
        return None
    return Authenticated(actor_of(row), row.version_id)
