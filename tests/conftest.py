"""Shared fixtures. Database tests run against SQLite and PostgreSQL alike: the `db_url`
fixture is parametrized over both. PostgreSQL tests skip when no server answers, except under
CI (CI=true) or PACKWORK_REQUIRE_PG=1, where a missing server fails the run."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PACKS = ROOT / "packs"
TEST_PACKS = ROOT / "tests" / "data" / "packs"
PG_URL = os.environ.get("PACKWORK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("PACKWORK_REQUIRE_PG") == "1"


def _pg_available() -> str | None:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server() -> str:
    reason = _pg_available()
    if reason:
        if _pg_required():
            pytest.fail(f"PostgreSQL is required (CI) but not reachable at {PG_URL}: {reason}")
        pytest.skip(f"PostgreSQL not reachable: {reason}")
    return PG_URL


@contextmanager
def fresh_database(kind: str, folder: Path, request) -> Iterator[str]:
    """An empty database: an SQLite file in `folder`, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'test.db'}"
        return
    server = request.getfixturevalue("pg_server")
    schema = f"pw_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database for one test, on each database in turn."""
    with fresh_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def engine(db_url):
    from packwork.runtime.db import make_engine
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pack_copy(tmp_path):
    """Copy a test pack into tmp_path so a test can edit it: `pack_copy("mini")`."""
    def copy(name: str, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(TEST_PACKS / name, target)
        return target
    return copy
