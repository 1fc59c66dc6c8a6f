"""The activity timeline on the detail page, over SQLite and PostgreSQL: records of an entity
that declares `timeline` and references this record are listed open ones soonest first, then
past ones newest first, as far as the reader may read them, with a "new" button prefilled."""

from __future__ import annotations

import re

import pytest

from conftest import TEST_PACKS, fresh_database
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

CHORES = [  # subject, due, finished, who
    ("Oil it", "2030-01-05", "false", "kim"), ("Count it", "2030-01-02", "false", "kim"),
    ("Someday", "", "false", "kim"), ("Painted", "2026-01-01", "true", "kim"),
    ("Polished", "2026-03-01", "true", "kim"), ("Max's own", "2030-02-01", "false", "max"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = make_engine(url)
        apply(engine, plan_packs(engine, [TEST_PACKS / "mini", TEST_PACKS / "chores"], "install"))
        with engine.begin() as conn:
            for name, role in (("kim", "keeper"), ("max", "maker")):
                set_password(conn, create_user(conn, name, [role], [role]), PASSWORD)
        app = create_app(url)
        people = {name: Visitor(app).sign_in(name) for name in ("kim", "max")}
        assert people["kim"].post("/r/widget/new", {"name": "Bolt", "code": "B1"}).status_code == 303
        for subject, due, finished, who in CHORES:
            made = people[who].post("/r/chore/new", {"subject": subject, "widget": "1", "due_on": due,
                                                     "finished": finished})
            assert made.status_code == 303, made.text[:2000]
        yield people
        services(app).engine.dispose()
        engine.dispose()


def _timeline(html: str) -> list[str]:
    panel = html[html.index('id="panel-timeline"'):html.index('id="panel-related"')]
    return re.findall(r'<a href="/r/chore/\d+">([^<]+)</a>', panel)


def test_open_activities_come_first_soonest_first_then_the_past_newest_first(site):
    html = site["kim"].client.get("/r/widget/1?tab=timeline").text
    assert _timeline(html) == ["Count it", "Oil it", "Max&#39;s own", "Someday", "Polished", "Painted"]
    assert 'aria-controls="panel-timeline" aria-selected="true">Activity (6)' in html  # all six, open and past
    assert 'href="/r/chore/new?widget=1"' in html
    assert 'data-related="chore"' not in html  # activities are on the timeline, not in a related list


def test_the_timeline_shows_only_what_the_reader_may_read(site):
    html = site["max"].client.get("/r/widget/1").text
    assert _timeline(html) == ["Max&#39;s own"]
