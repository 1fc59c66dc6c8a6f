"""The admin studio through Flask's test client on SQLite and PostgreSQL: only administrators
get in; every edit shows its plan and applies nothing until Apply; bad input is refused next to
the input it is about, with nothing applied; hiding a field takes it off forms, lists and the
API while its column keeps the data; a removed field keeps its data until a purge; a version
reverts; the layer downloads as a pack archive."""

from __future__ import annotations

import html
import io
import re
import tarfile

import pytest
import sqlalchemy as sa

from conftest import PACKS, TEST_PACKS
from packwork.runtime import admin_layer
from packwork.runtime.tokens import create_token
from packwork.runtime.users import find_user
from web.studio_world import StudioWorld, apply_form, studio_world
from web.test_ui_security import Visitor

MINI = TEST_PACKS / "mini"


class Studio(StudioWorld):
    def propose(self, path: str, data: dict, status: int = 200):
        response = self.admin.post(path, data)
        assert response.status_code == status, response.text[:3000]
        return response

    def change(self, path: str, data: dict) -> None:
        self.apply(self.propose(path, data))

    def field_names(self, entity: str) -> set[str]:
        """The fields the API's description of `entity` lists."""
        with self.engine.begin() as conn:
            token = create_token(conn, find_user(conn, "root"), "tests")[1]
        meta = self.app.test_client().get(f"/api/v1/meta/{entity}", headers={"Authorization": f"Bearer {token}"})
        assert meta.status_code == 200, meta.text
        return {f["name"] for f in meta.json["fields"]}

    def versions(self) -> int:
        return self.layer()[1]

    def scalar(self, sql: str):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()


@pytest.fixture
def studio(db_url):
    with studio_world(db_url, MINI, {"kim": ["keeper"]}, ["keeper"], Studio) as studio:
        yield studio


def field_errors(page_text: str) -> dict[str, list[str]]:
    """Every input's messages."""
    found: dict[str, list[str]] = {}
    for name, message in re.findall(r'<small class="error field-error" data-field="([^"]+)">([^<]*)</small>',
                                    page_text):
        found.setdefault(name, []).append(html.unescape(message))
    return found


def test_only_administrators_get_in(studio):
    keeper = Visitor(studio.app).sign_in("kim")
    for path in ("/admin/", "/admin/entities/widget", "/admin/new-entity", "/admin/history", "/admin/layer",
                 "/admin/entities/widget/layout", "/admin/layer.tar.gz", "/admin/purge"):
        assert keeper.client.get(path).status_code == 403, path
        assert studio.admin.client.get(path).status_code in (200, 404), path  # no layer yet to download: 404
    refused = keeper.post("/admin/new-entity", {"name": "project"})
    assert refused.status_code == 403 and studio.versions() == 0
    assert 'id="studio-link"' in studio.admin.client.get("/").text
    assert 'id="studio-link"' not in keeper.client.get("/").text


def test_a_change_without_the_csrf_token_is_refused(studio):
    response = studio.admin.post("/admin/new-entity", {"name": "project"}, token=False)
    assert response.status_code == 403 and studio.versions() == 0


def test_a_new_entity_is_planned_then_applied_and_served(studio):
    plan = studio.propose("/admin/new-entity", {"name": "project", "label_en": "Project", "label_zh": "项目"})
    assert "create table project" in plan.text.lower() and studio.versions() == 0
    assert studio.admin.client.get("/r/project").status_code == 404  # nothing applied yet
    studio.apply(plan)
    assert studio.versions() == 1
    made = studio.admin.post("/r/project/new", {"name": "Apollo"})
    assert made.status_code == 303, made.text[:2000]
    assert studio.scalar("SELECT name FROM project") == "Apollo"
    assert "Project" in studio.admin.client.get("/r/project").text


@pytest.mark.parametrize("name, message", [
    ("select", "SQL key word"), ("widget", "declared twice"), ("Bad-Name", "not a valid name"),
    ("pw_things", "reserved prefix"), ("meta", "a path of the API"),
])
def test_a_bad_entity_name_is_refused_next_to_the_name(studio, name, message):
    refused = studio.propose("/admin/new-entity", {"name": name}, status=422)
    errors = field_errors(refused.text)
    assert message in " ".join(errors.get("name", [])), errors
    assert studio.versions() == 0


@pytest.mark.parametrize("values, where, message", [
    ({"name": "name", "type": "text"}, "name", "already exists"),
    ({"name": "id", "type": "text"}, "name", "system column"),
    ({"name": "order", "type": "text"}, "name", "SQL key word"),
    ({"name": "twice", "type": "computed", "formula": "missing * 2", "result": "decimal"}, "formula", "missing"),
    ({"name": "owner", "type": "reference", "entity": ""}, "entity", ""),
    ({"name": "tone", "type": "choice", "options": ""}, "options", "at least one option"),
    ({"name": "code2", "type": "text", "max_length": "ten"}, "max_length", "whole number"),
])
def test_a_bad_field_is_refused_next_to_its_input(studio, values, where, message):
    refused = studio.propose("/admin/entities/widget/new-field", values, status=422)
    errors = field_errors(refused.text)
    assert where in errors and message in " ".join(errors[where]), errors
    assert studio.versions() == 0


def test_a_new_field_goes_on_the_form_in_the_chosen_section(studio):
    studio.change("/admin/entities/widget/new-field",
                  {"name": "budget", "type": "money", "label_en": "Budget", "currency": "usd", "place": "more/extra"})
    form = studio.admin.client.get("/r/widget/new").text
    assert 'name="budget"' in form and 'value="USD"' in form
    assert form.index('id="panel-more"') < form.index('name="budget"')


def test_hiding_a_field_keeps_its_data_and_showing_it_brings_it_back(studio):
    keeper = Visitor(studio.app).sign_in("kim")
    assert keeper.post("/r/widget/new", {"name": "w1", "notes": "keep me"}).status_code == 303
    record = studio.scalar("SELECT id FROM widget")
    studio.change("/admin/entities/widget/fields/notes/visibility", {"hidden": "1"})
    assert 'name="notes"' not in keeper.client.get(f"/r/widget/{record}/edit").text
    assert "keep me" not in keeper.client.get("/r/widget?columns=name,notes").text
    assert "keep me" not in keeper.client.get(f"/r/widget/{record}").text
    assert studio.scalar("SELECT notes FROM widget") == "keep me"  # the column keeps the data
    studio.change("/admin/entities/widget/fields/notes/visibility", {"hidden": "0"})
    assert "keep me" in keeper.client.get(f"/r/widget/{record}/edit").text


def test_a_pack_field_changes_only_what_the_pack_format_lets_change(studio):
    studio.change("/admin/entities/widget/fields/code", {"type": "text", "label_en": "Serial", "label_zh": "序列号",
                                                         "required": "1", "max_length": "20"})
    refused = studio.admin.post("/r/widget/new", {"name": "w1"})
    assert refused.status_code == 422 and "Serial" in refused.text
    with studio.engine.connect() as conn:
        layer = admin_layer.current_layer(conn).text
    assert "change_fields" in layer and "type" not in layer.split("change_fields", 1)[1]


def test_removing_a_field_keeps_its_data_until_the_purge(studio):
    studio.change("/admin/entities/widget/new-field", {"name": "serial", "type": "text", "place": "main/basics"})
    keeper = Visitor(studio.app).sign_in("kim")
    assert keeper.post("/r/widget/new", {"name": "w1", "serial": "S-1"}).status_code == 303
    assert "orphan" not in studio.admin.client.get("/admin/entities/widget").text
    confirm = studio.admin.client.get("/admin/entities/widget/fields/serial/remove")
    assert "kept" in confirm.text and studio.versions() == 1
    studio.change("/admin/entities/widget/fields/serial/remove", {})
    page = studio.admin.client.get("/admin/entities/widget").text
    assert 'id="orphans"' in page and "serial" in page.split('id="orphans"', 1)[1]
    assert studio.scalar("SELECT serial FROM widget") == "S-1"
    purge = studio.admin.client.get("/admin/purge")
    base = re.search(r'name="base" value="(\d+)"', purge.text).group(1)
    assert studio.admin.post("/admin/purge", {"base": base}).status_code == 303
    with studio.engine.connect() as conn:
        assert "serial" not in {c["name"] for c in sa.inspect(conn).get_columns("widget")}


def test_a_type_change_that_could_lose_data_is_refused_with_the_reason(studio):
    studio.change("/admin/entities/widget/new-field", {"name": "serial", "type": "text"})
    refused = studio.propose("/admin/entities/widget/fields/serial", {"type": "integer"}, status=422)
    assert "serial" in refused.text and 'id="form-message"' in refused.text and studio.versions() == 1


def test_a_plan_made_before_another_change_is_refused_not_applied_over_it(studio):
    first = studio.propose("/admin/entities/widget/new-field", {"name": "serial", "type": "text"})
    studio.change("/admin/entities/widget/new-field", {"name": "batch", "type": "text"})
    stale = studio.admin.post("/admin/apply", apply_form(first.text))
    assert stale.status_code == 409 and 'id="stale"' in stale.text and studio.versions() == 1
    names = studio.field_names("widget")
    assert "batch" in names and "serial" not in names


def test_reverting_brings_back_the_previous_metadata(studio):
    studio.change("/admin/entities/widget/new-field", {"name": "serial", "type": "text"})
    studio.change("/admin/entities/widget/fields/notes/visibility", {"hidden": "1"})
    history = studio.admin.client.get("/admin/history").text
    assert history.count("data-version=") == 3  # two versions and "no layer"
    first = min(int(v) for v in re.findall(r'data-version="(\d+)"', history) if v != "0")
    studio.apply(studio.propose(f"/admin/history/{first}/revert", {}))
    assert {"serial", "notes"} <= studio.field_names("widget")
    studio.apply(studio.propose("/admin/history/0/revert", {}))
    names = studio.field_names("widget")
    assert "serial" not in names and "notes" in names


def test_the_raw_layer_text_is_checked_with_file_and_path(studio):
    refused = studio.propose("/admin/layer", {"text": "extends:\n  widget:\n    hide_fields: [nothing]\n"}, status=422)
    assert "has no field 'nothing'" in html.unescape(refused.text) and studio.versions() == 0
    studio.change("/admin/layer", {"text": "# kept\nextends:\n  widget:\n    hide_fields: [notes]\n"})
    assert "# kept" in studio.admin.client.get("/admin/layer").text


def test_the_layer_downloads_as_a_pack_archive(studio):
    studio.change("/admin/entities/widget/new-field", {"name": "serial", "type": "text"})
    download = studio.admin.client.get("/admin/layer.tar.gz")
    assert download.status_code == 200 and download.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(download.data)) as archive:
        names = archive.getnames()
        layer = next(m for m in names if m.endswith("layer.yaml"))
        assert b"serial" in archive.extractfile(layer).read()


def test_layout_editor_moves_fields_between_sections(studio):
    page = studio.admin.client.get("/admin/entities/widget/layout").text
    assert 'name="place.notes"' in page and 'name="place.weight"' in page  # weight is off the form
    form = {f"place.{n}": "main/basics" for n in ("name", "code", "colour", "size", "phase")}
    form |= {"place.notes": "more/extra", "place.count": "more/extra", "place.price": "main/basics",
             "order.price": "0", "place.weight": "more/extra", "columns.main/basics": "3"}
    studio.change("/admin/entities/widget/layout", form)
    edit = studio.admin.client.get("/r/widget/new").text
    basics = edit.split('id="panel-main"', 1)[1].split('id="panel-more"', 1)[0]
    assert basics.index('name="price"') < basics.index('name="name"') and "cols-3" in basics
    assert 'name="weight"' in edit.split('id="panel-more"', 1)[1]
    refused = studio.propose("/admin/entities/widget/layout", form | {"place.name": "nowhere/else"}, status=422)
    assert "place.name" in field_errors(refused.text)
    studio.change("/admin/entities/widget/layout", form | {"new_tab_en": "Logistics", "new_section_en": "Sizes",
                                                           "new_section_tab": "more"})
    page = studio.admin.client.get("/admin/entities/widget/layout").text
    assert 'data-section="tab_3/main"' in page and 'data-section="more/section_3"' in page
    studio.change("/admin/entities/widget/layout", form | {"place.weight": "tab_3/main", "place.count": "more/section_3"})
    edit = studio.admin.client.get("/r/widget/new").text
    assert 'name="weight"' in edit.split('id="panel-tab_3"', 1)[1] and ">Logistics<" in edit


@pytest.fixture
def crm(db_url):
    roles = ["account_manager"]
    with studio_world(db_url, PACKS / "standard_crm", {"amy": roles}, roles, Studio) as studio:
        with studio.engine.begin() as conn:
            token = create_token(conn, find_user(conn, "amy"), "tests")[1]
        yield studio, {"Authorization": f"Bearer {token}"}


def test_hiding_a_standard_field_takes_it_off_forms_lists_and_the_api_and_keeps_its_data(crm):
    studio, headers = crm
    api = studio.app.test_client()
    made = api.post("/api/v1/account", json={"name": "Acme", "industry": "manufacturing"}, headers=headers)
    assert made.status_code == 201, made.text
    record = made.json["id"]

    def seen() -> dict[str, bool]:
        amy = Visitor(studio.app).sign_in("amy")
        schema = api.get("/api/v1/openapi.json", headers=headers).json["components"]["schemas"]
        return {"form": 'name="industry"' in amy.client.get(f"/r/account/{record}/edit").text,
                "list": "Manufacturing" in amy.client.get("/r/account").text,
                "api": "industry" in api.get(f"/api/v1/account/{record}", headers=headers).json,
                "openapi": any("industry" in s.get("properties", {}) for n, s in schema.items()
                               if n.lower().startswith("account"))}

    assert seen() == {"form": True, "list": True, "api": True, "openapi": True}
    studio.change("/admin/entities/account/fields/industry/visibility", {"hidden": "1"})
    assert seen() == {"form": False, "list": False, "api": False, "openapi": False}
    assert studio.scalar(f"SELECT industry FROM account WHERE id = {record}") == "manufacturing"
    studio.change("/admin/entities/account/fields/industry/visibility", {"hidden": "0"})
    assert seen() == {"form": True, "list": True, "api": True, "openapi": True}
    assert api.get(f"/api/v1/account/{record}", headers=headers).json["industry"] == "manufacturing"
