"""The demo as a new user first sees it: the standard CRM with its full demo data set (what
`packwork demo` creates), in a real browser. The sales dashboard draws every chart, the
opportunity pipeline kanban shows every open stage with cards and sums, and an account's page
shows its related records. The `page` fixture fails a test on a console error, a CSP violation
or a request off the server.

The tests take the README's screenshots of these pages (docs/screenshots/demo-*.png)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from browser.conftest import serving
from browser.test_ui import PASSWORD, screenshot, sign_in
from conftest import PACKS
from packwork.runtime import demo_data, users
from packwork.runtime.catalog import load_catalog
from packwork.runtime.sessions import set_password

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

CRM = PACKS / "standard_crm"


def _demo(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        users.ensure_demo_users(conn, load_catalog(conn).metadata.roles)
        for name in ("sales_manager", "system_admin"):
            user_id = conn.execute(sa.text("SELECT id FROM pw_user WHERE username = :u"), {"u": name}).scalar_one()
            set_password(conn, user_id, PASSWORD)
    report = demo_data.generate(engine, demo_data.load_spec(demo_data.spec_path(CRM)))
    assert report.refusals == 0, report.refused


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo server for the module: the data set takes some seconds to make."""
    folder = tmp_path_factory.mktemp("demo")
    with serving(folder) as start:
        base = start(CRM, prepare=_demo)
        engine = sa.create_engine(f"sqlite:///{folder / 'live0.db'}")
        yield base, engine
        engine.dispose()


def test_the_sales_dashboard_draws_every_chart(demo, page):
    demo, _ = demo
    sign_in(page, demo, "system_admin", "System admin")
    page.get_by_role("link", name="Sales", exact=True).click()
    expect(page.locator("h1")).to_have_text("Sales")
    canvases = page.locator("canvas[data-chart]")
    count = canvases.count()
    assert count >= 6
    expect(page.locator('canvas[data-drawn="true"]')).to_have_count(count)
    funnel = page.locator('[data-report="sales_funnel"]')
    funnel.get_by_text("Figures").click()
    expect(funnel.get_by_role("row", name=re.compile("^Qualify"))).to_be_visible()
    funnel.get_by_text("Figures").click()
    screenshot(page, "demo-dashboard.png")


def test_the_pipeline_kanban_shows_the_open_stages(demo, page):
    demo, _ = demo
    sign_in(page, demo, "system_admin", "System admin")
    page.goto(demo + "/r/opportunity/kanban/pipeline")
    lanes = page.locator("ol[data-lane]")
    expect(lanes.first).to_be_visible()
    stages = lanes.evaluate_all("ls => ls.map(l => l.dataset.lane)")
    assert stages[:4] == ["qualify", "needs_analysis", "proposal", "negotiation"]
    for stage in stages[:4]:
        lane = page.locator(f'section.lane:has(ol[data-lane="{stage}"])')
        assert lane.locator(".kanban-card").count() > 0, stage
        assert int(lane.locator("[data-count]").inner_text()) >= lane.locator(".kanban-card").count()
        assert lane.locator("[data-sum]").inner_text().strip() not in ("", "0.00")
    screenshot(page, "demo-kanban.png")


def test_an_account_page_shows_its_related_records(demo, page):
    base, engine = demo
    with engine.connect() as conn:  # the owned account with the most follow-ups, and its activities
        account_id, name = conn.execute(sa.text(
            "SELECT a.id, a.name FROM account a JOIN follow_up f ON f.account = a.id WHERE a.owner_id IS NOT NULL"
            " GROUP BY a.id, a.name ORDER BY count(f.id) DESC, a.id LIMIT 1")).one()
        activities = sum(conn.execute(sa.text(
            f"SELECT count(*) FROM {t} WHERE account = :a AND deleted_at IS NULL"), {"a": account_id}).scalar()
            for t in ("follow_up", "crm_task", "schedule_entry", "crm_note"))
    sign_in(page, base, "system_admin", "System admin")
    page.goto(f"{base}/r/account/{account_id}")
    expect(page.locator("h1")).to_have_text(name)
    expect(page.get_by_role("tab", name=re.compile("Activity"))).to_have_text(f"Activity ({activities})")
    screenshot(page, "demo-account.png")
    page.get_by_role("tab", name=re.compile("Activity")).click()
    expect(page.locator("#panel-timeline ol.timeline li")).to_have_count(activities)
    page.get_by_role("tab", name=re.compile("Related")).click()
    expect(page.locator('[data-related="contact"] tbody tr').first).to_be_visible()
