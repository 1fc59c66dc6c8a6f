"""Engines: one place that knows how to talk to SQLite and PostgreSQL properly."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs) -> sa.Engine:
    engine = sa.create_engine(normalize_url(url), **kwargs)
    if engine.dialect.name == "sqlite":
        _make_sqlite_transactional(engine)
    return engine


def _make_sqlite_transactional(engine: sa.Engine) -> None:
    """pysqlite does not BEGIN before DDL, so a failed migration would be half applied.
    Take transaction control from the driver and emit BEGIN ourselves (SQLAlchemy's recipe)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        # A writer takes the write lock up front: upgrading a read lock later can fail with
        # SQLITE_BUSY however long busy_timeout is. Readers (see `reading`) must not queue.
        reader = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")


READ_ONLY = "packwork_read_only"


def reading(engine: sa.Engine) -> sa.Connection:
    """A connection for a transaction that only reads (on SQLite it does not take the write lock)."""
    return engine.connect().execution_options(**{READ_ONLY: True})
