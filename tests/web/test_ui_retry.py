"""A UI form post that loses a race the database settles by rolling it back runs again, whole,
as an API write does (tests/runtime/test_retrying.py), and its write lands exactly once: the
person sees the page they would have seen, not a 500, and there is one record, one version
step and one audit entry, not two.

Each database loses the way it really does: SQLite at BEGIN IMMEDIATE (another writer holds the
write lock past the busy timeout, released once the retry is under way); PostgreSQL in the middle
of the write (the server answers the audit insert, after the record is written, with a deadlock,
once), so the retry must not add to what the lost attempt wrote."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.db import make_engine
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

DEADLOCK = "DO $$ BEGIN RAISE EXCEPTION 'a simulated deadlock' USING ERRCODE = '40P01'; END $$"


class Site:
    def __init__(self, kind: str, url: str, app, engine: sa.Engine, ids: dict[str, int]):
        self.kind, self.url, self.app, self.engine, self.ids = kind, url, app, engine, ids
        self.kim = Visitor(app).sign_in("kim")

    def one(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).one()

    def made(self, name: str) -> int:
        made = self.kim.post("/r/widget/new", {"name": name})
        assert made.status_code == 303, made.text
        return int(made.headers["Location"].rsplit("/", 1)[1])

    def entries(self, record_id: int, action: str) -> int:
        return self.one("SELECT count(*) FROM pw_audit WHERE entity = 'widget' AND record_id = :i AND action = :a",
                        i=record_id, a=action)[0]

    @contextmanager
    def losing_one_race(self) -> Iterator[list[str]]:
        """Within: the next UI write loses one race; yields the retries `db.retrying` logs."""
        retries: list[str] = []
        on_retry: list = []

        class Seen(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                retries.append(record.getMessage())
                for callback in on_retry:
                    callback()

        handler, log = Seen(), logging.getLogger("packwork.db")
        log.addHandler(handler)
        try:
            with (self._busy_once(on_retry) if self.kind == "sqlite" else self._deadlock_once()):
                yield retries
        finally:
            log.removeHandler(handler)

    @contextmanager
    def _busy_once(self, on_retry: list) -> Iterator[None]:
        app_engine = services(self.app).engine

        def short_wait(dbapi_connection, _record, _proxy) -> None:  # not 10 s before SQLITE_BUSY
            dbapi_connection.execute("PRAGMA busy_timeout=20")

        holder_engine = make_engine(self.url)
        holder = holder_engine.connect()
        holder.begin()  # BEGIN IMMEDIATE: the write lock, until the first attempt has lost
        on_retry.append(lambda: holder.rollback() if holder.in_transaction() else None)
        sa.event.listen(app_engine, "checkout", short_wait)
        try:
            yield
        finally:
            sa.event.remove(app_engine, "checkout", short_wait)
            holder.close()
            holder_engine.dispose()

    @contextmanager
    def _deadlock_once(self) -> Iterator[None]:
        app_engine, armed = services(self.app).engine, [True]

        def lose(_conn, _cursor, statement, parameters, _context, _many):
            if armed and statement.startswith("INSERT INTO pw_audit"):
                armed.clear()
                return DEADLOCK, {}
            return statement, parameters

        sa.event.listen(app_engine, "before_cursor_execute", lose, retval=True)
        try:
            yield
        finally:
            sa.event.remove(app_engine, "before_cursor_execute", lose)
        assert not armed, "the post never reached its audit insert"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            ids = {name: create_user(conn, name, ["keeper"], ["keeper"]) for name in ("kim", "lee")}
            for user_id in ids.values():
                set_password(conn, user_id, PASSWORD)
        app = create_app(url)
        yield Site(request.param, url, app, engine, ids)
        services(app).engine.dispose()
        engine.dispose()


def test_a_create_that_loses_a_race_is_written_once(site):
    with site.losing_one_race() as retries:
        answer = site.kim.post("/r/widget/new", {"name": "Raced create", "count": "3"})
    assert answer.status_code == 303, answer.text
    assert retries, "the post should have lost one race and run again"
    count, record_id = site.one("SELECT count(*), max(id) FROM widget WHERE name = 'Raced create'")
    assert count == 1 and answer.headers["Location"].endswith(f"/r/widget/{record_id}")
    assert site.entries(record_id, "create") == 1


@pytest.mark.parametrize("post", ["edit", "delete", "restore", "transfer", "kanban move"])
def test_a_change_that_loses_a_race_is_written_once(site, post):
    record_id = site.made(f"Raced {post}")
    if post == "restore":
        assert site.kim.post(f"/r/widget/{record_id}/delete", {"version": "1"}).status_code == 303
    version = site.one("SELECT version FROM widget WHERE id = :i", i=record_id)[0]
    path, form, action, status = {
        "edit": (f"/r/widget/{record_id}/edit", {"name": "Raced edit!", "version": str(version)}, "update", 303),
        "delete": (f"/r/widget/{record_id}/delete", {"version": str(version)}, "delete", 303),
        "restore": (f"/r/widget/{record_id}/restore", {}, "restore", 303),
        "transfer": ("/r/widget/mass", {"action": "transfer", "ids": str(record_id),
                                        "owner_id": str(site.ids["lee"])}, "update", 303),
        "kanban move": (f"/r/widget/{record_id}/move", {"field": "phase", "value": "draft",
                                                       "version": str(version)}, "update", 200),
    }[post]
    before = site.entries(record_id, action)

    with site.losing_one_race() as retries:
        answer = site.kim.post(path, form)

    assert answer.status_code == status, answer.text[:500]
    assert retries, "the post should have lost one race and run again"
    assert site.entries(record_id, action) == before + 1
    assert site.one("SELECT version FROM widget WHERE id = :i", i=record_id)[0] == version + 1
