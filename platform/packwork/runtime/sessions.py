"""Browser sign-in: passwords hashed with argon2id, sessions, and a throttle on guessing.

A session is like an API token: the cookie carries a random secret, the database keeps only
its SHA-256, so authenticating a page is one indexed query (the same one tokens use). Each
session has its own CSRF token. Failed sign-ins are counted per user name and per address;
past the limit, sign-in answers 429 until the window has passed, even with the right password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from packwork.errors import RequestError, ValidationError
from packwork.runtime.permissions import Actor
from packwork.runtime.system import pw_login_failure, pw_saved_view, pw_session, pw_user, pw_user_setting
from packwork.runtime.tokens import actor_of, actor_statement, digest

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, 64 MiB, 3 passes),
# above OWASP's minimum; Werkzeug's scrypt defaults are below it.
HASHER = PasswordHasher()
# Verified when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
PREFIX = "pws_"
LIFETIME = timedelta(hours=12)
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20
MIN_PASSWORD, MAX_PASSWORD = 8, 1024


class TooManyAttempts(RequestError):
    status = 429
    code = "AUTH-E002"
    title = "Too many sign-in attempts"


class PasswordRefused(ValidationError):
    code = "AUTH-E003"


@dataclass(frozen=True, slots=True)
class Session:
    actor: Actor
    version_id: int | None
    csrf_token: str
    username: str
    display_name: str
    time_zone: str
    has_saved_views: bool = False  # read with the session, so most list pages skip a query


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordRefused("the password is not acceptable",
                              {"password": [f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"]})


def set_password(conn: sa.Connection, user_id: int, password: str) -> None:
    check_new_password(password)
    conn.execute(pw_user.update().where(pw_user.c.id == user_id).values(password_hash=HASHER.hash(password)))


def verify_password(conn: sa.Connection, user_id: int, password: str) -> bool:
    stored = conn.execute(sa.select(pw_user.c.password_hash).where(pw_user.c.id == user_id)).scalar()
    return _matches(stored, password)


def _matches(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def sign_in(conn: sa.Connection, username: str, password: str, address: str,
            now: datetime | None = None) -> str | None:
    """A new session's secret for the cookie, or None for a wrong user name or password (the
    failure is recorded for the throttle: the caller commits, then refuses). Raises
    TooManyAttempts (429) while the throttle holds, whatever the password."""
    now = now or datetime.now(timezone.utc)
    username, address = username.strip()[:80], address[:64]
    _throttle(conn, username, address, now)
    user = conn.execute(sa.select(pw_user.c.id, pw_user.c.password_hash, pw_user.c.is_active)
                        .where(pw_user.c.username == username)).first()
    if not _matches(user.password_hash if user else None, password) or not user.is_active:
        conn.execute(pw_login_failure.insert().values(username=username, address=address, at=now))
        return None
    conn.execute(pw_login_failure.delete().where(pw_login_failure.c.username == username))
    if HASHER.check_needs_rehash(user.password_hash):
        conn.execute(pw_user.update().where(pw_user.c.id == user.id).values(password_hash=HASHER.hash(password)))
    secret = PREFIX + secrets.token_urlsafe(32)
    conn.execute(pw_session.insert().values(user_id=user.id, token_hash=digest(secret),
                                            csrf_token=secrets.token_urlsafe(32), created_at=now,
                                            expires_at=now + LIFETIME))
    conn.execute(pw_session.delete().where(pw_session.c.expires_at < now))  # keeps the table small
    return secret


def _throttle(conn: sa.Connection, username: str, address: str, now: datetime) -> None:
    since = now - WINDOW
    count = lambda column, value: conn.execute(  # noqa: E731
        sa.select(sa.func.count()).where(column == value, pw_login_failure.c.at > since)).scalar_one()
    if (count(pw_login_failure.c.username, username) >= MAX_FAILURES_PER_USER
            or count(pw_login_failure.c.address, address) >= MAX_FAILURES_PER_ADDRESS):
        minutes = int(WINDOW.total_seconds() // 60)
        raise TooManyAttempts(f"too many failed sign-ins; try again in {minutes} minutes")


def sign_out(conn: sa.Connection, secret: str) -> None:
    conn.execute(pw_session.delete().where(pw_session.c.token_hash == digest(secret)))


def _session_statement() -> sa.Select:
    has_views = sa.exists().where(pw_saved_view.c.user_id == pw_session.c.user_id).label("has_views")
    return (actor_statement(pw_session, pw_session.c.csrf_token, pw_session.c.expires_at, pw_user.c.username,
                            pw_user.c.display_name, pw_user_setting.c.time_zone, has_views)
            .outerjoin(pw_user_setting, pw_user_setting.c.user_id == pw_session.c.user_id))


_AUTHENTICATE = _session_statement()


def authenticate_session(conn: sa.Connection, secret: str, now: datetime | None = None) -> Session | None:
    """The session a cookie's secret stands for, or None if unknown, expired or the user inactive."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    row = conn.execute(_AUTHENTICATE, {"token_hash": digest(secret)}).first()
    if row is None or _aware(row.expires_at) <= (now or datetime.now(timezone.utc)):
        return None
    return Session(actor_of(row), row.version_id, row.csrf_token, row.username, row.display_name or row.username,
                   row.time_zone or "UTC", bool(row.has_views))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # SQLite keeps no offset


def save_settings(conn: sa.Connection, user_id: int, language: str, time_zone: str) -> None:
    conn.execute(pw_user.update().where(pw_user.c.id == user_id).values(language=language))
    done = conn.execute(pw_user_setting.update().where(pw_user_setting.c.user_id == user_id)
                        .values(time_zone=time_zone))
    if done.rowcount == 0:
        conn.execute(pw_user_setting.insert().values(user_id=user_id, time_zone=time_zone))
