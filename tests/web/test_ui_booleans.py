"""A yes/no value is not a user id: pages that look up the names of the users a record shows
once took a boolean field's True for user 1 (Python counts bool as int), and PostgreSQL refused
`bigint = boolean` with a 500. Detail, list and kanban pages of a record with a boolean field,
owned by a user whose id is not 1, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def visitor(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            for name in ("first", "second", "third"):
                set_password(conn, create_user(conn, name, ["keeper"], ["keeper"]), PASSWORD)
        app = create_app(url)
        third = Visitor(app).sign_in("third")
        made = third.post("/r/widget/new", {"name": "Yes widget", "code": "Y1", "active": "on"})
        assert made.status_code == 303, made.text[:2000]
        yield third
        services(app).engine.dispose()
        engine.dispose()


@pytest.mark.parametrize("path", ["/r/widget/1", "/r/widget", "/r/widget?columns=name,active,owner_id"])
def test_a_page_showing_a_true_boolean_and_its_owner_answers(visitor, path):
    response = visitor.client.get(path)
    assert response.status_code == 200, response.text[:2000]
    assert "Yes widget" in response.text and ">third<" in response.text
