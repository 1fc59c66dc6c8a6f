"""Pack actions on the detail page, through the test client over SQLite and PostgreSQL: a button
(a POST form with the CSRF token and the version) only where the action's condition holds and
the reader may run it, a POST without the token refused, a refusal shown at the top of the page
with nothing created, input errors next to the inputs with what was typed kept."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "actions")
        with engine.begin() as conn:
            for name, role in (("ria", "rep"), ("wes", "watcher"), ("bea", "boss")):
                set_password(conn, create_user(conn, name, [role], [role]), PASSWORD)
        app = create_app(url)
        yield app, engine
        services(app).engine.dispose()
        engine.dispose()


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def new_prospect(visitor: Visitor, engine, **form) -> int:
    assert visitor.post("/r/prospect/new", form).status_code == 303
    return scalar(engine, "SELECT max(id) FROM prospect")


def forms(html: str) -> dict[str, str]:
    """Each action's form on a detail page, by action name."""
    return {name: body for body, name in
            re.findall(r'(<form method="post" class="record-action" data-action="(\w+)".*?</form>)', html, re.DOTALL)}


def test_buttons_show_only_where_the_condition_holds_and_the_reader_may_run_them(site):
    app, engine = site
    ria, bea, wes = Visitor(app).sign_in("ria"), Visitor(app).sign_in("bea"), Visitor(app).sign_in("wes")
    mine = new_prospect(ria, engine, name="Mine", company="Mine Co")
    page = forms(ria.client.get(f"/r/prospect/{mine}").text)
    assert {"convert", "release", "hand_over", "rate"} <= page.keys()
    assert "claim" not in page and "escalate" not in page  # not in the pool; the boss's only
    convert = page["convert"]
    assert 'name="csrf_token"' in convert and 'name="version" value="1"' in convert
    assert 'data-confirm="Create a customer, a person and a deal from this prospect?"' in convert
    assert 'name="deal_name"' in convert and 'name="amount"' in convert
    assert forms(wes.client.get(f"/r/prospect/{mine}").text) == {}  # may read, may not update
    not_hers = bea.post(f"/r/prospect/{mine}/actions/release", {"version": "1"})  # its condition: owner_id = $me
    assert not_hers.status_code == 409 and "&#39;release&#39; is not available" in not_hers.text
    pooled = new_prospect(bea, engine, name="Pooled", company="Pool Co")
    with engine.begin() as conn:  # into the pool, as a scheduled rule or an import would put it
        conn.execute(sa.text("UPDATE prospect SET owner_id = NULL WHERE id = :i"), {"i": pooled})
    assert "claim" in forms(ria.client.get(f"/r/prospect/{pooled}").text)
    claimed = ria.post(f"/r/prospect/{pooled}/actions/claim", {"version": "1"})
    assert claimed.status_code == 303 and claimed.headers["Location"].endswith(f"/r/prospect/{pooled}")
    assert scalar(engine, "SELECT owner_id FROM prospect WHERE id = :i", i=pooled) is not None
    assert "claim" not in forms(ria.client.get(f"/r/prospect/{pooled}").text)


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(site):
    app, engine = site
    ria = Visitor(app).sign_in("ria")
    mine = new_prospect(ria, engine, name="Token", company="Token Co")
    refused = ria.post(f"/r/prospect/{mine}/actions/convert", {"version": "1"}, token=False)
    assert refused.status_code == 403
    assert scalar(engine, "SELECT status FROM prospect WHERE id = :i", i=mine) == "new"
    assert scalar(engine, "SELECT count(*) FROM customer WHERE name = 'Token Co'") == 0
    done = ria.post(f"/r/prospect/{mine}/actions/convert", {"version": "1", "deal_name": "Token deal"})
    assert done.status_code == 303
    assert scalar(engine, "SELECT status FROM prospect WHERE id = :i", i=mine) == "converted"
    assert scalar(engine, "SELECT count(*) FROM deal WHERE name = 'Token deal'") == 1
    assert "convert" not in forms(ria.client.get(f"/r/prospect/{mine}").text)


def test_a_refused_action_is_shown_at_the_top_and_creates_nothing(site):
    app, engine = site
    ria = Visitor(app).sign_in("ria")
    assert ria.post("/r/customer/new", {"name": "Taken Co"}).status_code == 303
    taken = scalar(engine, "SELECT id FROM customer WHERE name = 'Taken Co'")
    mine = new_prospect(ria, engine, name="Dup", company="Taken Co")
    customers = scalar(engine, "SELECT count(*) FROM customer")
    refused = ria.post(f"/r/prospect/{mine}/actions/convert", {"version": "1"})
    assert refused.status_code == 422
    alert = re.search(r'<div class="error" role="alert" data-action-refused="convert">(.*?)</div>', refused.text,
                      re.DOTALL).group(1)
    assert f"Company: customer {taken} is already named Taken Co" in alert
    assert scalar(engine, "SELECT count(*) FROM customer") == customers
    assert scalar(engine, "SELECT count(*) FROM person WHERE name = 'Dup'") == 0
    stale = ria.post(f"/r/prospect/{mine}/actions/convert", {"version": "7"})
    assert stale.status_code == 409 and "changed by someone else" in stale.text


def test_input_errors_are_shown_next_to_the_inputs_with_what_was_typed(site):
    app, engine = site
    ria = Visitor(app).sign_in("ria")
    mine = new_prospect(ria, engine, name="Typo", company="Typo Co")
    refused = ria.post(f"/r/prospect/{mine}/actions/convert", {"version": "1", "amount": "lots", "deal_name": "Kept"})
    assert refused.status_code == 422
    convert = forms(refused.text)["convert"]
    assert re.search(r'data-field="amount">[^<]+', convert)
    assert 'value="Kept"' in convert and 'value="lots"' in convert
    assert scalar(engine, "SELECT status FROM prospect WHERE id = :i", i=mine) == "new"
