"""Platform users, their roles and teams (passwords and sign-in: `runtime.sessions`).

Teams form a tree: a team's records, for a `team`-scoped role, include those of every team
below it. A user belongs to at most one team."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import PackworkError
from packwork.metadata.access import ADMIN_ROLE  # noqa: F401 - re-exported for callers
from packwork.metadata.names import IDENTIFIER
from packwork.runtime.sessions import set_password
from packwork.runtime.system import pw_team, pw_team_member, pw_team_path, pw_user, pw_user_role

class UserError(PackworkError):
    status = 400
    code = "USER-E001"


def create_user(conn: sa.Connection, username: str, roles: Iterable[str], known_roles: Iterable[str],
                display_name: str | None = None, team: str | None = None) -> int:
    """A new active user with `roles`, each of which must be a pack role or `admin`."""
    _require_new(conn, pw_user.c.username, username, "user")
    roles = sorted(set(roles))
    allowed = set(known_roles) | {ADMIN_ROLE}
    unknown = [r for r in roles if r not in allowed or not IDENTIFIER.match(r)]
    if unknown:
        raise UserError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    team_id = None if team is None else find_team(conn, team)
    user_id = conn.execute(pw_user.insert().values(
        username=username, display_name=display_name or username, is_active=True, language="en",
        created_at=datetime.now(timezone.utc)).returning(pw_user.c.id)).scalar_one()
    for role in roles:
        conn.execute(pw_user_role.insert().values(user_id=user_id, role=role))
    if team_id is not None:
        conn.execute(pw_team_member.insert().values(user_id=user_id, team_id=team_id))
    return user_id


def _require_new(conn: sa.Connection, column: sa.Column, name: str, kind: str) -> None:
    if not 1 <= len(name) <= 80 or any(c.isspace() or c == "\x00" for c in name):
        raise UserError(f"{name!r} is not a valid {kind} name (1-80 characters, no spaces)")
    if conn.execute(sa.select(column).where(column == name)).first():
        raise UserError(f"a {kind} named {name!r} already exists")


def find_user(conn: sa.Connection, username: str) -> int:
    return _find(conn, pw_user.c.username, username, "user")


def create_team(conn: sa.Connection, name: str, parent: str | None = None, label: str | None = None) -> int:
    """A new team, under `parent` if given."""
    _require_new(conn, pw_team.c.name, name, "team")
    parent_id = None if parent is None else find_team(conn, parent)
    team_id = conn.execute(pw_team.insert().values(name=name, label=label or name, parent_id=parent_id)
                           .returning(pw_team.c.id)).scalar_one()
    conn.execute(pw_team_path.insert().from_select(
        ["ancestor_id", "descendant_id"],
        sa.union_all(sa.select(sa.literal(team_id), sa.literal(team_id)),
                     sa.select(pw_team_path.c.ancestor_id, sa.literal(team_id))
                     .where(pw_team_path.c.descendant_id == parent_id))))
    return team_id


def find_team(conn: sa.Connection, name: str) -> int:
    return _find(conn, pw_team.c.name, name, "team")


def _find(conn: sa.Connection, column: sa.Column, name: str, kind: str) -> int:
    found = conn.execute(sa.select(column.table.c.id).where(column == name)).scalar()
    if found is None:
        raise UserError(f"there is no {kind} named {name!r}")
    return found


def join_team(conn: sa.Connection, user_id: int, team: str | None) -> None:
    """Move the user to `team` (None: no team)."""
    conn.execute(pw_team_member.delete().where(pw_team_member.c.user_id == user_id))
    if team is not None:
        conn.execute(pw_team_member.insert().values(user_id=user_id, team_id=find_team(conn, team)))


def display_names(conn: sa.Connection, user_ids: Iterable[int]) -> dict[int, str]:
    """{id: display name} of the given users (for showing owners next to records)."""
    ids = {i for i in user_ids if type(i) is int}  # not True or False, which isinstance counts
    if not ids:
        return {}
    rows = conn.execute(sa.select(pw_user.c.id, pw_user.c.display_name, pw_user.c.username)
                        .where(pw_user.c.id.in_(ids)))
    return {row.id: row.display_name or row.username for row in rows}


def active_users(conn: sa.Connection, limit: int = 500) -> list[tuple[int, str]]:
    """(id, display name) of active users, by name: the choices of a user picker."""
    rows = conn.execute(sa.select(pw_user.c.id, pw_user.c.display_name, pw_user.c.username)
                        .where(pw_user.c.is_active.is_(True)).order_by(pw_user.c.username).limit(limit))
    return [(row.id, row.display_name or row.username) for row in rows]


DEMO_TEAM = "demo"


def ensure_demo_users(conn: sa.Connection, roles: Iterable[str]) -> list[tuple[str, str]]:
    """A user named after each role that has none yet, all in one team, each with a fresh
    random password: [(user name, password)] of those created, to show once."""
    if conn.execute(sa.select(pw_team.c.id).where(pw_team.c.name == DEMO_TEAM)).first() is None:
        create_team(conn, DEMO_TEAM, label="Demo")
    existing = set(conn.execute(sa.select(pw_user.c.username)).scalars())
    created = []
    for role in sorted(set(roles)):
        if role in existing:
            continue
        password = secrets.token_urlsafe(9)
        user_id = create_user(conn, role, [role], [role], role.replace("_", " ").capitalize(), DEMO_TEAM)
        set_password(conn, user_id, password)
        created.append((role, password))
    return created
