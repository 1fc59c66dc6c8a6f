"""UI pages that only read run under PACKWORK_QUERY_TIMEOUT, as API reads do (see
tests/api/test_query_timeout.py), on SQLite and PostgreSQL: a list whose filter or search scans
too much says so above the list with a 400, its filter kept to narrow; a kanban board, the
global search and an export that take too long are a 400 page saying so, never a 500 or a
half file; writes are not limited, and the same pages answer within a roomier limit."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

ROWS = 200_000
NOWHERE = "notes contains 'no such words'"  # matches nothing: a scan of every row
MESSAGE = "The query took too long; narrow the filter or the search."
SLOW_PAGES = {
    "kanban": "/r/widget/kanban/by_phase",
    "search": "/search?q=no+such+words",
    "export": f"/r/widget/export.csv?filter={NOWHERE}",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crowded(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        with engine.begin() as conn:
            set_password(conn, create_user(conn, "kim", ["keeper"], ["keeper"]), PASSWORD)
            conn.execute(sa.text("INSERT INTO widget (name, notes, count, active, version, created_at, updated_at) "
                                 "VALUES (:name, :notes, 0, true, 1, :now, :now)"),
                         [{"name": f"w{n}", "notes": f"a note about widget {n}", "now": now} for n in range(ROWS)])
        yield url
        engine.dispose()


def _visitor(url: str, limit: str) -> tuple[Visitor, object]:
    app = create_app(url, PACKWORK_QUERY_TIMEOUT=limit)
    return Visitor(app).sign_in("kim"), app


def test_a_slow_list_says_so_above_the_list_with_its_filter_kept(crowded):
    kim, app = _visitor(crowded, "0.001")
    try:
        slow = kim.client.get("/r/widget", query_string={"filter": NOWHERE})
        assert slow.status_code == 400, slow.text[:300]
        assert 'id="filter-error"' in slow.text and MESSAGE in slow.text
        assert 'id="list-query"' in slow.text and "no such words" in slow.text  # the filter, to narrow
        fragment = kim.client.get("/r/widget", query_string={"q": "no such words"}, headers={"HX-Request": "true"})
        assert fragment.status_code == 400 and MESSAGE in fragment.text and "<html" not in fragment.text
        binned = kim.client.get("/r/widget/deleted", query_string={"q": "no such words"})
        assert binned.status_code == 400 and MESSAGE in binned.text and 'id="quick"' in binned.text
        assert kim.post("/r/widget/new", {"name": "written meanwhile"}).status_code == 303, \
            "writes are not limited, and the stopped reads left the connections usable"
    finally:
        services(app).engine.dispose()


@pytest.mark.parametrize("page", SLOW_PAGES)
def test_other_slow_pages_are_a_400_page_saying_so(crowded, page):
    kim, app = _visitor(crowded, "0.001")
    try:
        slow = kim.client.get(SLOW_PAGES[page])
        assert slow.status_code == 400 and slow.mimetype == "text/html", slow.data[:300]
        assert "<h1>The query took too long</h1>" in slow.text and MESSAGE in slow.text
    finally:
        services(app).engine.dispose()


def test_within_the_limit_the_same_pages_answer(crowded):
    kim, app = _visitor(crowded, "60")
    try:
        for _ in range(2):  # again on the pooled connection: no clock is left behind
            listed = kim.client.get("/r/widget", query_string={"filter": NOWHERE})
            assert listed.status_code == 200 and "No records." in listed.text
        for path in SLOW_PAGES.values():
            assert kim.client.get(path).status_code == 200, path
    finally:
        services(app).engine.dispose()
