"""A dashboard in a real browser: every chart of the `tally` pack's dashboard is drawn by the
vendored Chart.js from the page's JSON, with no console error, CSP violation or request off the
server (the `page` fixture fails the test on any), and the figures table opens."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from browser.test_ui import add_user, sign_in
from conftest import TEST_PACKS
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.permissions import Actor
from packwork.runtime.records import Context

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

ROLES = ["seller", "chief"]


def _deals(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        chief = add_user(conn, "cy", ["chief"], ROLES)
        ctx = Context.start(conn, load_catalog(conn), Actor(None))
        client = records.create_record(ctx, "client", {"title": "Acme"})["id"]
        for n, phase in enumerate(["prospect", "prospect", "offer", "signed", "dropped"]):
            records.create_record(ctx, "deal", {
                "name": f"D{n}", "owner_id": chief, "phase": phase, "amount": 100 * (n + 1), "chance": 50,
                "region": "north" if n % 2 else "south", "reason": "price", "client": client,
                "closes_on": f"2026-0{n + 1}-15", "closed_at": f"2026-0{n + 1}-15T10:00:00Z"})
        records.create_record(ctx, "quota", {"owner_id": chief, "year": 2026, "amount": 900})


def test_every_chart_of_a_dashboard_is_drawn_without_errors(live_server, page):
    base = live_server(TEST_PACKS / "tally", prepare=_deals)
    sign_in(page, base, "cy")
    page.get_by_role("link", name="Selling").click()
    expect(page.locator("h1")).to_have_text("Selling")
    canvases = page.locator("canvas[data-chart]")
    expect(canvases).to_have_count(6)
    expect(page.locator('canvas[data-drawn="true"]')).to_have_count(6)
    drawn = page.evaluate("""() => [...document.querySelectorAll('canvas[data-chart]')].map(c => {
        const chart = Chart.getChart(c);
        return [chart.config.type, chart.data.labels.length, c.width > 0 && c.height > 0];
    })""")
    assert drawn[0] == ["bar", 4, True]  # the funnel: prospect, offer, dropped (it holds one), signed
    axes = page.evaluate("""() => Object.keys(Chart.getChart(
        document.querySelector('[data-report="funnel"] canvas')).scales).sort()""")
    assert axes == ["count", "x", "y"]  # the deals' count on an axis of its own beside the amounts
    assert all(size and count > 0 for _, count, size in drawn)
    funnel = page.locator('[data-report="funnel"]')
    funnel.get_by_text("Figures").click()
    expect(funnel.get_by_role("row", name="Prospect")).to_contain_text("300.00")
