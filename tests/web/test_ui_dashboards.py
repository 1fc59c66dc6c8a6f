"""Dashboards in the UI, over SQLite and PostgreSQL with the `tally` test pack: the navigation
lists the reader's dashboards, a dashboard page carries each chart's data for charts.js and the
same figures as a table, as far as the reader may read, in their language."""

from __future__ import annotations

import html
import json
import re
from collections import Counter

import pytest

from conftest import TEST_PACKS, fresh_database
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

DEALS = [("A1", "ann", "prospect", 100), ("A2", "ann", "prospect", 300), ("A3", "ann", "signed", 1250),
         ("B1", "bob", "offer", 40), ("B2", "bob", "signed", 60), ("C1", "cy", "prospect", 5)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = make_engine(url)
        apply(engine, plan_packs(engine, [TEST_PACKS / "tally"], "install"))
        with engine.begin() as conn:
            ids = {}
            for name, role in (("ann", "seller"), ("bob", "seller"), ("cy", "chief")):
                ids[name] = create_user(conn, name, [role], ["seller", "chief"])
                set_password(conn, ids[name], PASSWORD)
            ctx = records.Context.start(conn, load_catalog(conn), Actor(None))
            for name, owner, phase, amount in DEALS:
                records.create_record(ctx, "deal", {"name": name, "owner_id": ids[owner], "phase": phase,
                                                    "amount": amount, "region": "north"})
        app = create_app(url)
        yield {name: Visitor(app).sign_in(name) for name in ("ann", "bob", "cy")}
        services(app).engine.dispose()
        engine.dispose()


def _section(page: str, report: str) -> str:
    start = page.index(f'data-report="{report}"')
    return page[start:page.index("</section>", start)]


def _rows(section: str) -> dict[str, list[str]]:
    """The figures table: {row label: [cell texts]}."""
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', section, re.S)
    return {html.unescape(label): [html.unescape(c) for c in re.findall(r'<td class="num">([^<]*)</td>', cells)]
            for label, cells in rows}


def _chart(section: str) -> dict:
    block = re.search(r'<script type="application/json" id="chart-[a-z_]+">(.*?)</script>', section, re.S).group(1)
    return json.loads(block)


def test_the_navigation_lists_the_readers_dashboards(site):
    ann, cy = site["ann"].client.get("/").text, site["cy"].client.get("/").text
    assert '<p class="group">Dashboards</p>' in ann
    assert 'href="/dashboards/selling"' in ann and 'href="/dashboards/chiefs"' not in ann
    assert 'href="/dashboards/selling"' in cy and 'href="/dashboards/chiefs"' in cy


def test_the_dashboard_page_shows_the_readers_figures_as_a_table_and_as_chart_data(site):
    page = site["ann"].client.get("/dashboards/selling")
    assert page.status_code == 200
    funnel = _section(page.text, "funnel")
    mine = Counter(phase for _, owner, phase, _ in DEALS if owner == "ann")
    # reached: prospect or beyond 3, offer or beyond 1, signed 1
    assert _rows(funnel) == {"Prospect": [str(mine["prospect"]), "400.00", "33.3%"],
                             "Offer": ["0", "—", "100.0%"], "Signed": ["1", "1,250.00", "—"]}
    chart = _chart(funnel)
    assert chart["type"] == "bar" and chart["horizontal"] is True
    assert chart["labels"] == ["Prospect", "Offer", "Signed"]
    # a count beside a sum has an axis of its own (charts.js draws it opposite the sums')
    assert chart["datasets"][0] == {"label": "Deals", "data": [2, 0, 1], "axis": "count"}
    assert chart["datasets"][1]["axis"] == "amount"
    assert '<canvas data-chart="chart-funnel" role="img" aria-label="Funnel">' in funnel
    assert 'src="/static/chartjs/chart.umd.min.js"' in page.text and 'src="/static/ui/charts.js"' in page.text


def test_a_second_series_shows_beside_the_first(site):
    quota = _section(site["cy"].client.get("/dashboards/selling").text, "against_quota")
    assert _rows(quota) == {"ann": ["1,250.00", "—"], "bob": ["60.00", "—"]}
    assert [d["label"] for d in _chart(quota)["datasets"]] == ["Signed", "Quota"]
    assert all("axis" not in d for d in _chart(quota)["datasets"])  # two sums share one axis


def test_the_dashboard_follows_the_readers_language(site):
    bob = site["bob"]
    assert bob.post("/me", {"language": "zh", "time_zone": "UTC"}).status_code in (200, 303)
    page = bob.client.get("/dashboards/selling").text
    assert "<h1>销售看板</h1>" in page and "数据表" in page
    assert _rows(_section(page, "funnel")) == {"潜在": ["0", "—", "100.0%"], "报价": ["1", "40.00", "50.0%"],
                                               "签约": ["1", "60.00", "—"]}


def test_a_dashboard_the_reader_may_not_see_is_not_found(site):
    assert site["ann"].client.get("/dashboards/chiefs").status_code == 404
    assert site["ann"].client.get("/dashboards/nothing").status_code == 404
    assert site["cy"].client.get("/dashboards/chiefs").status_code == 200
