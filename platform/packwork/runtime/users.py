"""Platform users, their roles and teams (passwords and sign-in: `runtime.sessions`).

Teams form a tree: a team's records, for a `team`-scoped role, include those of every team
below it. A user belongs to at most one team."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
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

    def __init__(self, problems: dict[str, list[str]]):
        super().__init__("; ".join(m for messages in problems.values() for m in messages))
        self.problems = problems  # input name -> what is wrong with it


MAX_DISPLAY_NAME = 200


def user_problems(conn: sa.Connection, username: str, roles: Iterable[str], known_roles: Iterable[str],
                  display_name: str | None = None, team: str | None = None) -> dict[str, list[str]]:
    """Everything wrong with a new user, by input: its name (valid, not taken), roles (each a
    pack role or `admin`), display name and team (one that exists)."""
    problems: dict[str, list[str]] = {}
    if (problem := _name_problem(conn, pw_user.c.username, username, "user")) is not None:
        problems["username"] = [problem]
    allowed = set(known_roles) | {ADMIN_ROLE}
    unknown = sorted(r for r in set(roles) if r not in allowed or not IDENTIFIER.match(r))
    if unknown:
        problems["roles"] = [f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"]
    if display_name is not None and len(display_name) > MAX_DISPLAY_NAME:
        problems["display_name"] = [f"must be at most {MAX_DISPLAY_NAME} characters long"]
    if team is not None and _id_of(conn, pw_team.c.name, team) is None:
        problems["team"] = [f"there is no team named {team!r}"]
    return problems


def create_user(conn: sa.Connection, username: str, roles: Iterable[str], known_roles: Iterable[str],
                display_name: str | None = None, team: str | None = None) -> int:
    """A new active user with `roles`, each of which must be a pack role or `admin`; UserError
    naming every problem (`user_problems`) otherwise, and nothing written."""
    roles = sorted(set(roles))
    problems = user_problems(conn, username, roles, known_roles, display_name, team)
    if problems:
        raise UserError(problems)
    user_id = conn.execute(pw_user.insert().values(
        username=username, display_name=display_name or username, is_active=True, language="en",
        created_at=datetime.now(timezone.utc)).returning(pw_user.c.id)).scalar_one()
    for role in roles:
        conn.execute(pw_user_role.insert().values(user_id=user_id, role=role))
    if team is not None:
        conn.execute(pw_team_member.insert().values(user_id=user_id, team_id=find_team(conn, team)))
    return user_id


def _name_problem(conn: sa.Connection, column: sa.Column, name: str, kind: str) -> str | None:
    if not 1 <= len(name) <= 80 or any(c.isspace() or c == "\x00" for c in name):
        return f"{name!r} is not a valid {kind} name (1-80 characters, no spaces)"
    if _id_of(conn, column, name) is not None:
        return f"a {kind} named {name!r} already exists"
    return None


def find_user(conn: sa.Connection, username: str) -> int:
    return _find(conn, pw_user.c.username, username, "user")


def team_problems(conn: sa.Connection, name: str, parent: str | None = None,
                  label: str | None = None) -> dict[str, list[str]]:
    """Everything wrong with a new team, by input: its name, parent (one that exists), label."""
    problems: dict[str, list[str]] = {}
    if (problem := _name_problem(conn, pw_team.c.name, name, "team")) is not None:
        problems["name"] = [problem]
    if parent is not None and _id_of(conn, pw_team.c.name, parent) is None:
        problems["parent"] = [f"there is no team named {parent!r}"]
    if label is not None and len(label) > MAX_DISPLAY_NAME:
        problems["label"] = [f"must be at most {MAX_DISPLAY_NAME} characters long"]
    return problems


def create_team(conn: sa.Connection, name: str, parent: str | None = None, label: str | None = None) -> int:
    """A new team, under `parent` if given; UserError naming every problem otherwise."""
    problems = team_problems(conn, name, parent, label)
    if problems:
        raise UserError(problems)
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
    found = _id_of(conn, column, name)
    if found is None:
        raise UserError({kind: [f"there is no {kind} named {name!r}"]})
    return found


def _id_of(conn: sa.Connection, column: sa.Column, name: str) -> int | None:
    return conn.execute(sa.select(column.table.c.id).where(column == name)).scalar()


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


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    username: str
    display_name: str | None
    is_active: bool
    team: str | None
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    label: str | None
    parent: str | None


def people(conn: sa.Connection) -> list[Person]:
    """Every user, by user name, with their roles and team (the administrator's list)."""
    roles: dict[int, list[str]] = {}
    for user_id, role in conn.execute(sa.select(pw_user_role.c.user_id, pw_user_role.c.role)
                                      .order_by(pw_user_role.c.role)):
        roles.setdefault(user_id, []).append(role)
    rows = conn.execute(
        sa.select(pw_user.c.id, pw_user.c.username, pw_user.c.display_name, pw_user.c.is_active, pw_team.c.name)
        .select_from(pw_user.outerjoin(pw_team_member, pw_team_member.c.user_id == pw_user.c.id)
                     .outerjoin(pw_team, pw_team.c.id == pw_team_member.c.team_id))
        .order_by(pw_user.c.username))
    return [Person(*row[:5], tuple(roles.get(row[0], ()))) for row in rows]


def teams(conn: sa.Connection) -> list[Team]:
    """Every team, by name, with the team it is part of."""
    parent = pw_team.alias("parent")
    rows = conn.execute(sa.select(pw_team.c.name, pw_team.c.label, parent.c.name)
                        .select_from(pw_team.outerjoin(parent, parent.c.id == pw_team.c.parent_id))
                        .order_by(pw_team.c.name))
    return [Team(*row) for row in rows]


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
