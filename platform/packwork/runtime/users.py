"""Platform users and their roles (the web-UI issue adds passwords, teams and sign-in)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import PackworkError
from packwork.metadata.names import IDENTIFIER
from packwork.runtime.system import pw_user, pw_user_role

ADMIN_ROLE = "admin"  # the platform's own role: manages metadata and users


class UserError(PackworkError):
    status = 400
    code = "USER-E001"


def create_user(conn: sa.Connection, username: str, roles: Iterable[str], known_roles: Iterable[str],
                display_name: str | None = None) -> int:
    """A new active user with `roles`, each of which must be a pack role or `admin`."""
    if not 1 <= len(username) <= 80 or any(c.isspace() or c == "\x00" for c in username):
        raise UserError(f"{username!r} is not a valid user name (1-80 characters, no spaces)")
    if conn.execute(sa.select(pw_user.c.id).where(pw_user.c.username == username)).first():
        raise UserError(f"a user named {username!r} already exists")
    roles = sorted(set(roles))
    allowed = set(known_roles) | {ADMIN_ROLE}
    unknown = [r for r in roles if r not in allowed or not IDENTIFIER.match(r)]
    if unknown:
        raise UserError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    user_id = conn.execute(pw_user.insert().values(
        username=username, display_name=display_name or username, is_active=True, language="en",
        created_at=datetime.now(timezone.utc)).returning(pw_user.c.id)).scalar_one()
    for role in roles:
        conn.execute(pw_user_role.insert().values(user_id=user_id, role=role))
    return user_id


def find_user(conn: sa.Connection, username: str) -> int:
    user_id = conn.execute(sa.select(pw_user.c.id).where(pw_user.c.username == username)).scalar()
    if user_id is None:
        raise UserError(f"there is no user named {username!r}")
    return user_id
