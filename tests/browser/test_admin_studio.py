"""The admin studio in a real browser against `packwork serve`, with a second server process on
the same database standing in for another worker: an administrator creates the entity
"project" (a reference to account, a money field, a choice field), arranges its form by
dragging a field, and grants account managers `own` access; an account manager then creates a
project from an account's related list, and the other worker's API lists it. Nobody restarts
anything."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
import sqlalchemy as sa

from browser.test_ui import CRM, CRM_ROLES, PLATFORM, add_user, create, database, screenshot, sign_in
from packwork.runtime.catalog import load_catalog
from packwork.runtime.records import Context
from packwork.runtime.tokens import create_token
from packwork.runtime.users import find_user

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402


def _people(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_user(conn, "root", ["admin"], CRM_ROLES)
        amy = add_user(conn, "amy", ["account_manager"], CRM_ROLES)
        create(Context.start(conn, load_catalog(conn), PLATFORM), "account", amy, name="Acme Robotics")


def review_and_apply(page) -> None:
    """Every studio change: its plan first, then Apply."""
    page.get_by_role("button", name="Review the change").click()
    expect(page.locator("#plan")).to_be_visible()
    page.locator("#apply").click()
    expect(page.locator("#plan")).to_have_count(0)


def add_field(page, base: str, name: str, kind: str, **inputs: str) -> None:
    page.goto(f"{base}/admin/entities/project/new-field")
    page.locator("#s-name").fill(name)
    page.locator("#s-type").select_option(kind)
    for key, value in inputs.items():
        target = page.locator(f"#s-{key}")
        if target.evaluate("e => e.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    review_and_apply(page)
    expect(page.locator(f'tr[data-field="{name}"]')).to_be_visible()


def drag_field(page, field: str, before: str) -> None:
    """A real pointer drag of a layout field (Sortable follows pointer events), held over the
    target until Sortable has moved it there."""
    item = page.locator(f'li.layout-field[data-field="{field}"]')
    target = page.locator(f'li.layout-field[data-field="{before}"]')
    start, end = item.bounding_box(), target.bounding_box()
    x, y = start["x"] + 12, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 5, y - 5, steps=5)
    ex, ey = end["x"] + 12, end["y"] + 4
    page.mouse.move(ex, ey, steps=30)
    moved = f"""() => {{ const items = [...document.querySelectorAll('li.layout-field')].map(e => e.dataset.field);
                        return items.indexOf('{field}') < items.indexOf('{before}'); }}"""
    for step in range(40):
        if page.evaluate(moved):
            break
        page.wait_for_timeout(50)
        page.mouse.move(ex + (step % 2) * 4, ey + (step % 3) * 2, steps=2)
    page.mouse.up()
    assert page.evaluate(moved), f"Sortable did not move {field} before {before}"


def api_get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_an_admin_builds_an_entity_that_a_rep_uses_at_once_on_every_worker(live_server, page, browser, tmp_path):
    base = live_server(CRM, prepare=_people)
    other_worker = live_server(same_as=base)
    engine = database(base, tmp_path)
    with engine.begin() as conn:
        token = create_token(conn, find_user(conn, "amy"), "tests")[1]

    sign_in(page, base, "root")
    page.locator("#studio-link").click()
    page.locator("#new-entity").click()
    page.locator("#s-name").fill("project")
    page.locator("#s-label_en").fill("Project")
    page.locator("#s-label_zh").fill("项目")
    review_and_apply(page)
    expect(page.locator("h1")).to_contain_text("Project")

    add_field(page, base, "account", "reference", label_en="Account", entity="account")
    add_field(page, base, "budget", "money", label_en="Budget", currency="CNY")
    add_field(page, base, "status", "choice", label_en="Status",
              options="planned, Planned, 计划\nactive, Active, 进行中\ndone, Done, 完成")

    page.goto(f"{base}/admin/entities/project/layout")
    expect(page.locator('li.layout-field[data-field="account"]')).to_be_visible()
    drag_field(page, "account", "name")  # the account first on the form
    expect(page.locator("#order-account")).to_have_value("1")
    screenshot(page, "studio-layout.png")
    review_and_apply(page)

    page.goto(f"{base}/admin/access?role=account_manager")
    for action in ("read", "create", "update", "delete"):
        page.locator(f'select[name="grant.project.{action}"]').select_option("own")
    review_and_apply(page)

    rep = browser.new_context()
    rep_page = rep.new_page()
    sign_in(rep_page, base, "amy")
    rep_page.get_by_role("navigation", name="Menu").get_by_role("link", name="Accounts").click()
    rep_page.get_by_role("link", name="Acme Robotics").click()
    rep_page.get_by_role("tab", name=re.compile("Related")).click()
    related = rep_page.locator('[data-related="project"]')
    related.get_by_role("button", name="New Project").click()
    expect(rep_page.locator("#f-account")).to_have_value("Acme Robotics")
    fields = rep_page.locator(".record-form .field label")
    expect(fields.first).to_have_text("Account")  # where the admin dragged it
    rep_page.locator("#f-name").fill("Warehouse robots")
    rep_page.locator("#f-budget").fill("480000")
    rep_page.locator("#f-status").select_option("planned")
    rep_page.get_by_role("button", name="Save").click()
    expect(rep_page).to_have_url(re.compile(r"/r/project/\d+$"))
    expect(rep_page.locator("h1")).to_have_text("Warehouse robots")
    project_id = int(rep_page.url.rsplit("/", 1)[1])
    rep.close()

    listed = api_get(f"{other_worker}/api/v1/project", token)
    assert [(r["id"], r["name"], r["budget"], r["status"]) for r in listed["data"]] == \
        [(project_id, "Warehouse robots", "480000.00", "planned")]
    with engine.connect() as conn:
        account = conn.execute(sa.text("SELECT account FROM project")).scalar()
        assert account == conn.execute(sa.text("SELECT id FROM account WHERE name = 'Acme Robotics'")).scalar()
    engine.dispose()
    meta = api_get(f"{other_worker}/api/v1/meta/project", token)
    assert {"account", "budget", "status"} <= {f["name"] for f in meta["fields"]}
