"""Engines: one place that knows how to talk to SQLite and PostgreSQL properly."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# A PostgreSQL URL's `?pgbouncer=transaction`: the database is reached through PgBouncer in
# transaction pooling, where one session's prepared statements may be missing on the next
# transaction's server connection, so psycopg 3 must not prepare any (its auto-prepare).
POOLER = "pgbouncer"


def make_engine(url: str, **kwargs) -> sa.Engine:
    parsed = make_url(normalize_url(url))
    pooler = parsed.query.get(POOLER)
    if pooler is not None:
        if pooler != "transaction" or parsed.get_backend_name() != "postgresql":
            raise ValueError(f"{POOLER}= takes `transaction`, on a PostgreSQL URL only")
        parsed = parsed.difference_update_query([POOLER])
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "prepare_threshold": None}
    engine = sa.create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        _make_sqlite_transactional(engine)
        event.listen(engine, "before_cursor_execute", _restart_sqlite_clock)
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


# -- a time limit on a transaction's queries ----------------------------------------------------

_SQLITE_STEPS = 10_000  # virtual machine steps between looks at the clock (well under a millisecond)
_PG_CANCELED = "57014"  # query_canceled: statement_timeout (or a cancel request)


_LIMIT = "packwork_query_limit"  # in a limited connection's info: (its driver connection, _Clock)


class _Clock:
    __slots__ = ("seconds", "until")

    def __init__(self, seconds: float):
        self.seconds, self.until = seconds, time.monotonic() + seconds

    def over(self) -> bool:
        return time.monotonic() > self.until


def limit_queries(conn: sa.Connection, seconds: float) -> None:
    """Stop any statement of the transaction just begun on `conn` that runs (fetching its rows
    included) longer than `seconds`: PostgreSQL's `statement_timeout` until the transaction
    ends; on SQLite a progress handler, until `end_limit`, on a clock each statement restarts.
    `is_timeout` recognises the error either raises."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
        return
    raw, clock = conn.connection.dbapi_connection, _Clock(seconds)
    raw.set_progress_handler(clock.over, _SQLITE_STEPS)
    conn.info[_LIMIT] = raw, clock


def end_limit(conn: sa.Connection) -> None:
    """Take an SQLite connection's limit off before it goes back to the pool."""
    limited = conn.info.pop(_LIMIT, None)
    if limited is not None:
        limited[0].set_progress_handler(None, 0)


def _restart_sqlite_clock(conn, _cursor, _statement, _parameters, _context, _many) -> None:
    limited = conn.info.get(_LIMIT)
    if limited is not None:
        clock = limited[1]
        clock.until = time.monotonic() + clock.seconds


def is_timeout(error: BaseException) -> bool:
    """A query stopped by `limit_queries`."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    orig = error.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == 9  # SQLITE_INTERRUPT
    return getattr(orig, "sqlstate", None) == _PG_CANCELED


# -- retrying a unit of work ------------------------------------------------------------------

T = TypeVar("T")
log = logging.getLogger("packwork.db")
ATTEMPTS = 4
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (primary codes; extended codes add high bits)
_PG_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def is_retryable(error: BaseException) -> bool:
    """An error after which the database rolled the whole transaction back and the same work
    may simply run again: SQLite busy or locked, a PostgreSQL serialization failure or
    deadlock. Anything else (a lost connection, whose COMMIT may have happened) is not."""
    if not isinstance(error, sa.exc.DBAPIError) or error.connection_invalidated:
        return False
    orig = error.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY
    return getattr(orig, "sqlstate", None) in _PG_RETRYABLE


def retrying(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `work` (one whole transaction, begun and ended inside it) again after a retryable
    error, at most `attempts` times in all, with a short random back-off. Safe because the
    failed attempt's transaction rolled back: nothing of it was written."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except sa.exc.DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
            log.warning("retrying a unit of work (attempt %d of %d): %s", attempt + 1, attempts,
                        str(error.orig).splitlines()[0])
            time.sleep(random.uniform(0, 0.02 * 2 ** attempt))
    raise AssertionError("unreachable")
