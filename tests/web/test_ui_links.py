"""Many-to-many lists on the detail page, through the test client over SQLite and PostgreSQL:
link a record with the relation's fields, see it from both ends, a refused link keeps what was
chosen and names the field, remove a link; a reader who may not update sees no forms."""

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
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            for name, role in (("kim", "keeper"), ("max", "maker")):
                set_password(conn, create_user(conn, name, [role], [role]), PASSWORD)
        app = create_app(url)
        kim = Visitor(app).sign_in("kim")
        for path, data in (("/r/widget/new", {"name": "Bolt", "code": "B1"}), ("/r/bin/new", {"label_text": "Shelf A"}),
                           ("/r/bin/new", {"label_text": "Shelf B"}), ("/r/bin/new", {"label_text": "Shelf C"})):
            assert kim.post(path, data).status_code == 303
        yield app, engine, kim
        services(app).engine.dispose()
        engine.dispose()


def _links(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT source_id, target_id, qty FROM widget_stock ORDER BY id"))]


def _related(html: str, relation: str) -> str:
    start = html.index(f'data-relation="{relation}"')
    return html[start:html.index("</form>", html.index('class="link-form"', start))]


def test_link_shows_on_both_ends_and_can_be_removed(site):
    app, engine, kim = site
    linked = kim.post("/r/widget/1/links/widget_stock", {"id": "2", "qty": "7"})
    assert linked.status_code == 303 and linked.headers["Location"].endswith("/r/widget/1?tab=related")
    assert _links(engine) == [(1, 2, 7)]
    page = kim.client.get("/r/widget/1?tab=related").text
    assert 'id="panel-related" aria-labelledby="tab-related" >' in page or 'aria-labelledby="tab-related" hidden' not in page
    section = _related(page, "widget_stock")
    assert ">Shelf B</a>" in section and "<td>7</td>" in section
    assert ">Bolt</a>" in _related(kim.client.get("/r/bin/2").text, "widget_stock")
    history = kim.client.get("/r/bin/2").text
    assert "linked" in history[history.index('id="panel-history"'):] and "Stocked in" in history

    link_id = re.search(r'/r/widget/1/links/widget_stock/(\d+)/delete', page).group(1)
    assert kim.post(f"/r/widget/1/links/widget_stock/{link_id}/delete").status_code == 303
    assert _links(engine) == []


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"id": "3"}, "qty", "is required"),
    ({"id": "3", "qty": "lots"}, "qty", "must be a whole number"),
    ({"qty": "2"}, "id", "choose a record"),
    ({"id": "99", "qty": "2"}, "id", "does not exist"),
])
def test_a_refused_link_names_the_field_and_writes_nothing(site, form, field, message):
    app, engine, kim = site
    before = _links(engine)
    response = kim.post("/r/widget/1/links/widget_stock", form)
    assert 400 <= response.status_code < 500
    section = _related(response.text, "widget_stock")
    assert re.search(rf'data-field="{field}">[^<]*{message}', section), section[-1500:]
    if form.get("qty") == "lots":
        assert 'value="lots"' in section  # what was typed is kept
    assert _links(engine) == before


def test_linking_twice_is_refused_with_the_reason(site):
    app, engine, kim = site
    assert kim.post("/r/widget/1/links/widget_stock", {"id": "3", "qty": "1"}).status_code == 303
    again = kim.post("/r/widget/1/links/widget_stock", {"id": "3", "qty": "1"})
    assert again.status_code == 409 and "is already linked" in _related(again.text, "widget_stock")
    assert _links(engine).count((1, 3, 1)) == 1


def test_a_reader_who_may_not_update_gets_no_link_forms(site):
    app, engine, kim = site
    max_ = Visitor(app).sign_in("max")
    page = max_.client.get("/r/widget/1?tab=related").text  # makers update only their own widgets
    assert 'data-relation="widget_stock"' in page and 'class="link-form"' not in page
    refused = max_.post("/r/widget/1/links/widget_link", {"id": "1"})
    assert refused.status_code == 403


def test_the_list_page_says_how_many_records_match(site):
    app, engine, kim = site
    assert '<p class="muted match-count" aria-live="polite">Records: 3</p>' in kim.client.get("/r/bin").text
    one = kim.client.get("/r/bin?filter=label_text+%3D+%27Shelf+B%27").text
    assert 'aria-live="polite">Records: 1</p>' in one
