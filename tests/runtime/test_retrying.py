"""A unit of work that lost a race the database settled by rolling it back runs again, whole,
and its write lands exactly once: SQLite busy, a PostgreSQL deadlock. Anything else is raised."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from packwork.runtime.db import is_retryable, make_engine, retrying


def _counter(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (1, 0), (2, 0)")


def _values(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [n for (n,) in conn.exec_driver_sql("SELECT n FROM counter ORDER BY id")]


def test_sqlite_busy_is_retried_and_written_once(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    _counter(engine)
    holder = engine.connect()
    holder.begin()  # BEGIN IMMEDIATE: the write lock
    attempts = []

    def work() -> None:
        attempts.append(1)
        with engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA busy_timeout=20")  # not in a transaction
            with conn.begin():
                conn.exec_driver_sql("UPDATE counter SET n = n + 1 WHERE id = 1")
        if len(attempts) == 1:
            raise AssertionError("the first attempt should have found the database busy")

    release = threading.Timer(0.05, holder.rollback)
    release.start()
    try:
        retrying(work, attempts=8)
    finally:
        release.join()
        holder.close()
    assert len(attempts) > 1 and _values(engine) == [1, 0]
    engine.dispose()


def test_other_errors_are_not_retried(db_url):
    engine = make_engine(db_url)
    _counter(engine)
    attempts = []

    def work() -> None:
        attempts.append(1)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO counter VALUES (1, 5)")  # a duplicate key

    with pytest.raises(sa.exc.IntegrityError) as caught:
        retrying(work, attempts=4)
    assert len(attempts) == 1 and not is_retryable(caught.value) and _values(engine) == [0, 0]
    engine.dispose()


def test_a_postgresql_deadlock_victim_runs_again(pg_server, tmp_path, request):
    from conftest import fresh_database
    with fresh_database("postgresql", tmp_path, request) as url:
        engine = make_engine(url)
        _counter(engine)
        both_locked = threading.Barrier(2)
        attempts: list[int] = []
        failures: list[BaseException] = []

        def crossing(first: int, second: int) -> None:
            def work() -> None:
                attempts.append(first)
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"UPDATE counter SET n = n + 1 WHERE id = {first}")
                    if attempts.count(first) == 1:
                        both_locked.wait(timeout=10)  # each holds one row and wants the other's
                    conn.exec_driver_sql(f"UPDATE counter SET n = n + 10 WHERE id = {second}")
            try:
                retrying(work, attempts=4)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        threads = [threading.Thread(target=crossing, args=pair) for pair in ((1, 2), (2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        assert len(attempts) == 3  # one of the two was the deadlock's victim and ran again
        assert _values(engine) == [11, 11]  # each unit of work's two updates, exactly once
        engine.dispose()
