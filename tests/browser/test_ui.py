"""The generated web UI in a real browser (Playwright driving Chromium against `packwork serve`):
sign in, create an account and a contact from its related list, move opportunities on the
kanban (accepted, and refused by the stage gate), filter a list and save the view, switch to
Chinese, and work a custom entity of the mini test pack. The `page` fixture fails a test on a
console error, a CSP violation or a request to another host.

The tests also take the screenshots the README shows (docs/screenshots/, 1280x800), anew each run."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import PACKS, ROOT, TEST_PACKS
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.permissions import Actor
from packwork.runtime.records import Context
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_team, create_user

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "correct horse battery"
CRM = PACKS / "standard_crm"
CRM_ROLES = ["system_admin", "sales_manager", "account_manager", "executive", "service_agent"]
PLATFORM = Actor(None)


def add_user(conn: sa.Connection, username: str, roles: list[str], known: list[str], team: str | None = None) -> int:
    user_id = create_user(conn, username, roles, known, display_name=username.title(), team=team)
    set_password(conn, user_id, PASSWORD)
    return user_id


def with_records(*makers):
    """A `prepare` hook: a sales team with an admin (`sara`) and a manager, then each maker's
    records, created by the platform and owned by sara."""
    def prepare(engine: sa.Engine) -> None:
        with engine.begin() as conn:
            create_team(conn, "sales", label="Sales")
            owner = add_user(conn, "sara", ["system_admin"], CRM_ROLES, team="sales")
            add_user(conn, "mike", ["sales_manager"], CRM_ROLES, team="sales")
            ctx = Context.start(conn, load_catalog(conn), PLATFORM)
            for make in makers:
                make(ctx, owner)
    return prepare


def create(ctx: Context, entity: str, owner: int, **values) -> dict:
    return records.create_record(ctx, entity, values | {"owner_id": owner})


def sign_in(page, base: str, username: str = "sara", shown: str | None = None) -> None:
    """Sign in as `username`, whose name the top bar then shows (`shown`, by default the user
    name in title case, as `add_user` names them)."""
    page.set_default_timeout(10_000)
    page.set_viewport_size(VIEWPORT)
    page.goto(base + "/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".topbar .me a")).to_have_text(shown or username.title())


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(VIEWPORT)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


def row(engine: sa.Engine, entity: str, record_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT * FROM {entity} WHERE id = :id"), {"id": record_id}).mappings().one())


def database(base: str, tmp_path: Path) -> sa.Engine:
    """The live server's database (live_server numbers them live0.db, live1.db, …)."""
    return sa.create_engine(f"sqlite:///{tmp_path / 'live0.db'}")


# --- sign in, account, contact from the related list ----------------------------------------------

def test_sign_in_create_an_account_and_a_contact_from_its_related_list(live_server, page, tmp_path):
    base = live_server(CRM, prepare=with_records())
    page.set_default_timeout(10_000)
    page.goto(base + "/r/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/r/account"))
    page.set_viewport_size(VIEWPORT)
    page.get_by_label("User name").fill("sara")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(base + "/r/account")

    page.get_by_role("button", name="New", exact=True).click()
    expect(page.locator("#f-level")).to_have_value("potential")  # the field's default, prefilled
    page.locator("#f-name").fill("Acme Robotics")
    page.locator("#f-industry").select_option("manufacturing")
    page.locator("#f-employees").fill("120")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/r/account/\d+$"))
    expect(page.locator("h1")).to_have_text("Acme Robotics")
    expect(page.locator(".key-fields")).to_contain_text("Potential")
    account_id = int(page.url.rsplit("/", 1)[1])

    page.get_by_role("tab", name=re.compile("Related")).click()
    related = page.locator('[data-related="contact"]')
    expect(related).to_contain_text("No records.")
    related.get_by_role("button", name="New Contact").click()
    expect(page).to_have_url(re.compile(rf"/r/contact/new\?account={account_id}$"))
    expect(page.locator("#f-account")).to_have_value("Acme Robotics")
    page.locator("#f-full_name").fill("Li Wei")
    page.locator("#f-job_title").fill("Head of purchasing")
    page.locator("#f-email").fill("li.wei@acme.example")
    screenshot(page, "form.png")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/r/contact/\d+$"))
    expect(page.locator("#panel-details")).to_contain_text("Acme Robotics")
    contact_id = int(page.url.rsplit("/", 1)[1])
    engine = database(base, tmp_path)
    assert row(engine, "contact", contact_id)["account"] == account_id
    engine.dispose()

    page.locator("#panel-details").get_by_role("link", name="Acme Robotics").click()
    expect(page).to_have_url(f"{base}/r/account/{account_id}")
    page.get_by_role("tab", name=re.compile("Related")).click()
    expect(page.locator("#panel-related")).to_be_visible()
    expect(related.locator("tbody tr")).to_have_count(1)
    expect(related.get_by_role("link", name="Li Wei")).to_be_visible()
    expect(related).to_contain_text("Head of purchasing")
    expect(related.locator("thead th")).to_have_text(["Contact", "Job title", "Mobile", "Email"])
    screenshot(page, "detail.png")


# --- kanban -----------------------------------------------------------------------------------------

def _pipeline(ctx: Context, owner: int) -> None:
    soon = (date.today() + timedelta(days=20)).isoformat()
    acme = create(ctx, "account", owner, name="Acme Robotics", industry="manufacturing")["id"]
    blue = create(ctx, "account", owner, name="Blue River Foods", industry="retail")["id"]
    create(ctx, "opportunity", owner, name="Robot arms", account=acme, stage="qualify", amount="250000",
           close_date=soon)
    create(ctx, "opportunity", owner, name="No budget yet", account=blue, stage="needs_analysis")
    create(ctx, "opportunity", owner, name="Cold chain", account=blue, stage="proposal", amount="80000",
           close_date=soon)
    create(ctx, "opportunity", owner, name="Spare parts", account=acme, stage="qualify", amount="12000")


def drag(page, card, lane) -> None:
    """A real pointer drag, as a person does it: SortableJS follows pointer and drag events, so a
    click or a DOM change would prove nothing. Like a person, it hovers over the target lane
    until Sortable has put the card there (Sortable skips events while it animates), then lets go."""
    card_id, target = card.get_attribute("data-id"), lane.get_attribute("data-lane")
    card.scroll_into_view_if_needed()
    start, end = card.bounding_box(), lane.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 10, y + 10, steps=5)
    x, y = end["x"] + end["width"] / 2, end["y"] + 20
    page.mouse.move(x, y, steps=40)
    arrived = f"!!document.querySelector(\"[data-lane='{target}'] [data-id='{card_id}']\")"
    for step in range(40):
        if page.evaluate(arrived):
            break
        page.wait_for_timeout(50)
        page.mouse.move(x + (step % 2) * 8, y + (step % 3) * 4, steps=2)
    assert page.evaluate(arrived), f"Sortable did not take card {card_id} to lane {target}"
    page.mouse.up()


def test_kanban_moves_a_card_and_the_stage_gate_sends_one_back(live_server, page, tmp_path, console_errors):
    base = live_server(CRM, prepare=with_records(_pipeline))
    engine = database(base, tmp_path)
    sign_in(page, base)
    page.goto(base + "/r/opportunity/kanban/pipeline")
    lane = lambda stage: page.locator(f'ol[data-lane="{stage}"]')  # noqa: E731
    count = lambda stage: page.locator(f'section.lane:has(ol[data-lane="{stage}"]) [data-count]')  # noqa: E731
    card = lambda title: page.locator(".kanban-card", has_text=title)  # noqa: E731
    expect(lane("qualify").locator(".kanban-card")).to_have_count(2)

    robot_arms = card("Robot arms")
    record_id = int(robot_arms.get_attribute("data-id"))
    drag(page, robot_arms, lane("needs_analysis"))
    expect(lane("needs_analysis").locator(".kanban-card", has_text="Robot arms")).to_be_visible()
    expect(count("needs_analysis")).to_have_text("2")
    expect(count("qualify")).to_have_text("1")
    expect(robot_arms).to_have_attribute("data-version", "2")
    total = lambda stage: page.locator(f'section.lane:has(ol[data-lane="{stage}"]) [data-sum]')  # noqa: E731
    expect(total("qualify")).to_have_text("12,000.00")
    expect(total("needs_analysis")).to_have_text("250,000.00")
    expect(page.locator("#board-message")).to_be_hidden()
    saved = row(engine, "opportunity", record_id)
    assert (saved["stage"], saved["version"], saved["probability"]) == ("needs_analysis", 2, 25)
    expect(page.locator(".sortable-chosen, .sortable-ghost, .sortable-drag")).to_have_count(0)
    page.mouse.move(5, 5)
    page.wait_for_timeout(300)  # Sortable's drop animation (120 ms) has ended
    screenshot(page, "kanban.png")

    # Six lanes are wider than 1280 pixels (the board scrolls); widen the window so the card and
    # the "won" lane are both on screen for the drag.
    page.set_viewport_size({"width": 2560, "height": 900})
    no_budget = card("No budget yet")
    refused_id = int(no_budget.get_attribute("data-id"))
    before = row(engine, "opportunity", refused_id)
    with page.expect_response(lambda r: r.url.endswith(f"/{refused_id}/move")) as answer:
        drag(page, no_budget, lane("won"))
    assert answer.value.status == 422
    message = page.locator("#board-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("a won opportunity needs an amount")
    expect(lane("needs_analysis").locator(".kanban-card", has_text="No budget yet")).to_be_visible()
    expect(lane("won").locator(".kanban-card")).to_have_count(0)
    expect(count("won")).to_have_text("0")
    expect(count("needs_analysis")).to_have_text("2")
    assert row(engine, "opportunity", refused_id) == before
    # Chromium logs the refused request's 422 itself; nothing else may have gone wrong.
    assert all("422" in error for error in console_errors.settle()), list(console_errors)
    console_errors.clear()

    page.reload()
    expect(lane("needs_analysis").locator(".kanban-card")).to_have_count(2)
    expect(lane("won").locator(".kanban-card")).to_have_count(0)
    engine.dispose()


def test_a_card_moves_by_keyboard_from_its_move_to_list(live_server, page, tmp_path):
    base = live_server(CRM, prepare=with_records(_pipeline))
    engine = database(base, tmp_path)
    sign_in(page, base)
    page.goto(base + "/r/opportunity/kanban/pipeline")
    card = page.locator(".kanban-card", has_text="Robot arms")
    record_id = int(card.get_attribute("data-id"))
    move_to = card.locator("select[data-move-to]")
    move_to.focus()
    with page.expect_response(lambda r: r.url.endswith(f"/{record_id}/move")) as answer:
        move_to.select_option("proposal")  # what arrow keys and Enter do on a focused list
    assert answer.value.status == 200
    expect(page.locator('ol[data-lane="proposal"] .kanban-card', has_text="Robot arms")).to_be_visible()
    expect(move_to).to_be_focused()
    assert row(engine, "opportunity", record_id)["stage"] == "proposal"
    engine.dispose()


# --- filter and saved view ------------------------------------------------------------------------

def _accounts(ctx: Context, owner: int) -> None:
    for name, industry, level in [("Acme Robotics", "manufacturing", "key"), ("Blue River Foods", "retail", "normal"),
                                  ("City Grocers", "retail", "key"), ("Delta Freight", "technology", "potential"),
                                  ("Evergreen Market", "retail", "potential"), ("Fjord Energy", "finance", "normal")]:
        create(ctx, "account", owner, name=name, industry=industry, level=level, phone="+86 21 5555 0100")


def test_filter_a_list_save_the_view_and_open_it_again(live_server, page):
    base = live_server(CRM, prepare=with_records(_accounts))
    sign_in(page, base)
    page.goto(base + "/r/account")
    names = page.locator("#results table.records tbody tr td:nth-child(2) a")
    expect(names).to_have_count(6)

    page.locator("details.filter-builder summary").click()
    page.locator("#filter-text").fill("industry = 'retail'")
    page.locator("details.filter-builder").get_by_role("button", name="Apply").click()
    expect(names).to_have_count(3)
    expect(names).to_have_text(["Blue River Foods", "City Grocers", "Evergreen Market"])
    expect(page).to_have_url(re.compile(r"filter=industry"))

    page.get_by_placeholder("View name").fill("Retail accounts")
    page.locator("form.save-view").get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"view=saved-\d+$"))
    expect(names).to_have_text(["Blue River Foods", "City Grocers", "Evergreen Market"])

    page.goto(base + "/r/account")
    expect(names).to_have_count(6)
    page.locator("nav.views").get_by_role("link", name="★ Retail accounts").click()
    expect(page).to_have_url(re.compile(r"view=saved-\d+$"))
    expect(page.locator('nav.views a[aria-current="page"]')).to_have_text("★ Retail accounts")
    expect(names).to_have_text(["Blue River Foods", "City Grocers", "Evergreen Market"])

    page.goto(base + "/r/account")
    page.locator("#quick").fill("Grocers")
    expect(names).to_have_text(["City Grocers"])
    page.locator("#quick").fill("")
    expect(names).to_have_count(6)
    screenshot(page, "list.png")


# --- Chinese --------------------------------------------------------------------------------------

def test_switching_to_chinese_shows_pack_labels_and_ui_words_in_chinese(live_server, page):
    base = live_server(CRM, prepare=with_records(_accounts))
    sign_in(page, base)
    page.goto(base + "/me")
    page.get_by_label("Language").select_option("zh")
    page.get_by_label("Time zone").select_option("Asia/Shanghai")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("设置已保存。")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    nav = page.locator("nav.sidebar")
    for label in ("首页", "客户", "联系人", "商机", "线索"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="退出")).to_be_visible()

    nav.get_by_role("link", name="客户", exact=True).click()
    expect(page.locator("h1")).to_have_text("客户")
    expect(page.get_by_role("button", name="新建", exact=True)).to_be_visible()
    expect(page.locator("table.records thead")).to_contain_text("客户名称")
    expect(page.locator("nav.views")).to_contain_text("全部客户")
    expect(page.locator("table.records tbody")).to_contain_text("零售")  # a choice label from the dictionary
    page.get_by_role("link", name="Acme Robotics").click()
    expect(page.get_by_role("tab", name="详情")).to_be_visible()
    expect(page.get_by_role("button", name="编辑")).to_be_visible()
    page.get_by_role("tab", name="历史").click()
    expect(page.locator("#panel-history tbody")).to_contain_text("创建")


# --- a custom entity ------------------------------------------------------------------------------

def _keeper(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_user(conn, "kim", ["keeper"], ["keeper", "maker", "foreman"])


def test_a_custom_entity_is_created_listed_and_edited(live_server, page, tmp_path):
    base = live_server(TEST_PACKS / "mini", prepare=_keeper)
    sign_in(page, base, "kim")
    page.locator("nav.sidebar").get_by_role("link", name="Widgets").click()
    expect(page.locator("h1")).to_have_text("Widgets")
    expect(page.locator("table.records tbody")).to_contain_text("No records.")

    page.get_by_role("button", name="New", exact=True).click()
    page.locator("#f-name").fill("Sprocket")
    page.locator("#f-code").fill("SPR-1")
    page.locator("#f-colour").select_option("blue")
    page.locator("#f-size").select_option("m")
    page.get_by_role("tab", name="more").click()
    page.locator("#f-count").fill("7")
    page.locator("#f-price").fill("12.50")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/r/widget/\d+$"))
    widget_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1")).to_have_text("Sprocket")
    expect(page.locator("#panel-details")).to_contain_text("Blue")

    page.locator("nav.sidebar").get_by_role("link", name="Widgets").click()
    first = page.locator("table.records tbody tr").first
    expect(first).to_contain_text("Sprocket")
    expect(first).to_contain_text("SPR-1")
    expect(first).to_contain_text("12.50 EUR")

    first.get_by_role("link", name="Sprocket").click()
    page.get_by_role("button", name="Edit").click()
    expect(page.locator("#f-name")).to_have_value("Sprocket")
    page.locator("#f-name").fill("Sprocket, large")
    page.locator("#f-size").select_option("l")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{base}/r/widget/{widget_id}")
    expect(page.locator("h1")).to_have_text("Sprocket, large")
    page.get_by_role("tab", name="History").click()
    expect(page.locator("#panel-history")).to_contain_text("updated")
    expect(page.locator("#panel-history")).to_contain_text("Sprocket → Sprocket, large")

    engine = database(base, tmp_path)
    saved = row(engine, "widget", widget_id)
    engine.dispose()
    assert (saved["name"], saved["size"], saved["count"], saved["version"]) == ("Sprocket, large", "l", 7, 2)
    page.locator("nav.sidebar").get_by_role("link", name="Widgets").click()
    expect(page.locator("table.records tbody tr")).to_have_count(1)
    expect(page.locator("table.records tbody tr").first).to_contain_text("Sprocket, large")
