"""Sign-in: argon2id passwords, sessions found by the hash of their secret, the throttle on
guessing, expiry and sign-out, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from packwork.runtime import sessions
from packwork.runtime.system import pw_login_failure, pw_session, pw_user, system_metadata
from packwork.runtime.users import create_user


@pytest.fixture
def ann(engine):
    system_metadata.create_all(engine)
    with engine.begin() as conn:
        user_id = create_user(conn, "ann", [], [])
        sessions.set_password(conn, user_id, "correct horse")
    return user_id


def sign_in(engine, password: str, username: str = "ann", address: str = "10.0.0.1", now=None):
    with engine.begin() as conn:
        return sessions.sign_in(conn, username, password, address, now)


def test_the_password_is_stored_as_argon2id_only(engine, ann):
    with engine.connect() as conn:
        stored = conn.execute(sa.select(pw_user.c.password_hash).where(pw_user.c.id == ann)).scalar_one()
        assert stored.startswith("$argon2id$") and "correct horse" not in stored
        assert sessions.verify_password(conn, ann, "correct horse")
        assert not sessions.verify_password(conn, ann, "correct horsE")


def test_a_short_password_is_refused_naming_the_field(engine, ann):
    with engine.begin() as conn, pytest.raises(sessions.PasswordRefused) as refused:
        sessions.set_password(conn, ann, "short")
    assert refused.value.errors == {"password": ["must be 8 to 1024 characters long"]}


def test_a_session_stands_for_its_user_until_sign_out(engine, ann):
    secret = sign_in(engine, "correct horse")
    assert secret.startswith("pws_")
    with engine.connect() as conn:
        session = sessions.authenticate_session(conn, secret)
        assert session.actor.user_id == ann and session.username == "ann" and len(session.csrf_token) >= 32
        assert conn.execute(sa.select(pw_session.c.token_hash)).scalar_one() != secret  # only the hash is kept
        assert sessions.authenticate_session(conn, secret + "x") is None
    with engine.begin() as conn:
        sessions.sign_out(conn, secret)
    with engine.connect() as conn:
        assert sessions.authenticate_session(conn, secret) is None


def test_a_session_expires(engine, ann):
    secret = sign_in(engine, "correct horse")
    with engine.connect() as conn:
        row = conn.execute(sa.select(pw_session.c.created_at)).scalar_one()
        later = row.replace(tzinfo=row.tzinfo or sessions.timezone.utc) + sessions.LIFETIME + timedelta(seconds=1)
        assert sessions.authenticate_session(conn, secret, now=later) is None


def test_wrong_credentials_are_recorded_and_then_throttled(engine, ann):
    assert sign_in(engine, "wrong") is None
    assert sign_in(engine, "correct horse", username="nobody") is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(pw_login_failure)).scalar_one() == 2
    for _ in range(sessions.MAX_FAILURES_PER_USER - 1):
        assert sign_in(engine, "wrong") is None
    with pytest.raises(sessions.TooManyAttempts):
        sign_in(engine, "correct horse")  # the right password does not help while throttled
    later = sessions.datetime.now(sessions.timezone.utc) + sessions.WINDOW + timedelta(seconds=1)
    assert sign_in(engine, "correct horse", now=later) is not None


def test_one_address_guessing_many_names_is_throttled(engine, ann):
    for number in range(sessions.MAX_FAILURES_PER_ADDRESS):
        assert sign_in(engine, "wrong", username=f"user{number}") is None
    with pytest.raises(sessions.TooManyAttempts):
        sign_in(engine, "correct horse")
    assert sign_in(engine, "correct horse", address="10.0.0.2") is not None


def test_an_inactive_user_cannot_sign_in_or_keep_a_session(engine, ann):
    secret = sign_in(engine, "correct horse")
    with engine.begin() as conn:
        conn.execute(pw_user.update().where(pw_user.c.id == ann).values(is_active=False))
    with engine.connect() as conn:
        assert sessions.authenticate_session(conn, secret) is None
    assert sign_in(engine, "correct horse") is None


def test_settings_are_kept(engine, ann):
    secret = sign_in(engine, "correct horse")
    with engine.begin() as conn:
        sessions.save_settings(conn, ann, "zh", "Asia/Shanghai")
    with engine.connect() as conn:
        session = sessions.authenticate_session(conn, secret)
    assert (session.actor.language, session.time_zone) == ("zh", "Asia/Shanghai")
