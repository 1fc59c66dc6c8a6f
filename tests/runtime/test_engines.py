"""make_engine's `?pgbouncer=transaction`: behind PgBouncer in transaction pooling psycopg 3
must prepare no statement (a prepared statement lives on one server connection, and the next
transaction may get another)."""

from __future__ import annotations

import pytest

from packwork.runtime.db import make_engine

REPEATS = 8  # psycopg 3 prepares a query once it has run it 5 times (its prepare_threshold)


def _prepared_after_repeats(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for n in range(REPEATS):
                conn.exec_driver_sql("SELECT %(n)s::int + 1", {"n": n}).scalar()
            return conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
    finally:
        engine.dispose()


def test_behind_pgbouncer_nothing_is_prepared(pg_server):
    assert _prepared_after_repeats(pg_server) >= 1, "psycopg's auto-prepare should be on by default"
    assert _prepared_after_repeats(pg_server + "?pgbouncer=transaction") == 0


@pytest.mark.parametrize("url", ["sqlite:///x.db?pgbouncer=transaction",
                                 "postgresql://127.0.0.1/test?pgbouncer=session"])
def test_the_pooler_option_is_checked(url):
    with pytest.raises(ValueError, match="pgbouncer= takes `transaction`"):
        make_engine(url)
