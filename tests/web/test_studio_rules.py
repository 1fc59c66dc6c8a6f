"""The studio's rule and dictionary pages through Flask's test client, on SQLite and PostgreSQL:
only administrators get in; rule code the sandbox would refuse is refused next to the code,
with its line, and a rule about a missing entity next to the entity, nothing applied; a new
rule, once applied, runs on real writes through the API; "test on a record" shows what an
unsaved rule would do and writes nothing; dictionaries are listed, created and refused next to
their name when a pack already has one of that name."""

from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from api.conftest import signed_in
from conftest import TEST_PACKS
from web.studio_world import StudioWorld, field_errors, studio_world
from web.test_ui_security import Visitor

MINI = TEST_PACKS / "mini"
NO_BAD_NAMES = "if record.name == 'bad':\n    error('name', 'is not a name we allow')\n"


def rule_form(**values) -> dict:
    return {"name": "no_bad_names", "entity": "widget", "kind": "validation", "code": NO_BAD_NAMES} | values


class World(StudioWorld):
    def __init__(self, app, engine):
        super().__init__(app, engine)
        self.api = {"Authorization": f"Bearer {signed_in(engine, 'ann', ['keeper'])}"}

    def post(self, path: str, data: dict, status: int):
        response = self.admin.post(path, data)
        assert response.status_code == status, response.text[:3000]
        return response.text

    def snapshot(self) -> dict:
        with self.engine.connect() as conn:
            return {table: conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).all()
                    for table in ("widget", "bin", "pw_audit")}

    def widget(self, **values) -> dict:
        made = self.app.test_client().post("/api/v1/widget", json={"name": "w"} | values, headers=self.api)
        assert made.status_code == 201, made.text
        return made.json


@pytest.fixture
def world(db_url):
    with studio_world(db_url, MINI, {"kim": ["keeper"]}, ["keeper"], World) as world:
        yield world


def test_only_administrators_see_rules_and_dictionaries(world):
    kim = Visitor(world.app).sign_in("kim")
    for path in ("/admin/rules", "/admin/new-rule", "/admin/rules/count_not_negative", "/admin/dictionaries",
                 "/admin/new-dictionary", "/admin/dictionaries/colour"):
        assert kim.client.get(path).status_code == 403, path
    for path, data in (("/admin/new-rule", rule_form()), ("/admin/test-rule", rule_form(record_id="1")),
                       ("/admin/new-dictionary", {"name": "finish", "options": "matt"})):
        assert kim.post(path, data).status_code == 403, path
    assert world.admin.post("/admin/new-rule", rule_form(), token=False).status_code == 403  # CSRF
    assert world.layer() == ("", 0)


def test_the_list_shows_pack_rules_read_only(world):
    listing = world.admin.client.get("/admin/rules")
    assert listing.status_code == 200
    for name in ("count_not_negative", "weigh_before_shipping", "kits_get_a_bin", "idle_widgets_count_nothing"):
        assert f'data-rule="{name}"' in listing.text
    assert 'id="new-rule"' in listing.text and "entities.yaml" in listing.text
    page = world.admin.client.get("/admin/rules/count_not_negative")
    assert page.status_code == 200 and 'id="pack-rule"' in page.text and 'id="rule-form"' not in page.text
    assert "error('count', 'must not be negative')" in html.unescape(page.text)
    assert world.admin.post("/admin/rules/count_not_negative", rule_form()).status_code == 409
    assert world.admin.client.get("/admin/rules/no_such_rule").status_code == 404


@pytest.mark.parametrize("code, message", [
    ("x = 1\nif record.count > 1\n    error('count', 'no')\n", "line 2: expected ':'"),
    ("import os\n", "line 1: import is not available to rules"),
])
def test_code_the_sandbox_refuses_is_shown_next_to_the_code(world, code, message):
    page = world.post("/admin/new-rule", rule_form(code=code), 422)
    assert field_errors(page, "code") == [message]
    assert code.splitlines()[0] in html.unescape(page)  # the form keeps what was typed
    assert world.layer() == ("", 0)


def test_a_rule_for_a_missing_entity_is_refused_next_to_the_entity(world):
    page = world.post("/admin/new-rule", rule_form(entity="gizmo"), 422)
    assert field_errors(page, "entity") == ["rule for entity 'gizmo', which no pack declares"]
    page = world.post("/admin/new-rule", rule_form(kind="trigger"), 422)
    assert field_errors(page, "on") == ["choose when the trigger runs"]
    page = world.post("/admin/new-rule", rule_form(name="count_not_negative"), 422)
    assert "already exists" in field_errors(page, "name")[0]
    assert world.layer() == ("", 0)


def test_a_new_rule_applied_runs_on_real_writes(world):
    plan = world.post("/admin/new-rule", rule_form(), 200)
    assert 'id="plan"' in plan and "no_bad_names" in plan
    assert world.layer() == ("", 0)  # nothing applied before Apply
    world.apply(plan)
    text, versions = world.layer()
    assert versions == 1 and "no_bad_names" in text

    api = world.app.test_client()
    refused = api.post("/api/v1/widget", json={"name": "bad"}, headers=world.api)
    assert refused.status_code == 422 and refused.json["errors"] == {"name": ["is not a name we allow"]}
    assert api.post("/api/v1/widget", json={"name": "good"}, headers=world.api).status_code == 201

    listing = world.admin.client.get("/admin/rules").text
    row = listing.split('data-rule="no_bad_names"', 1)[1].split("</tr>", 1)[0]
    assert "the admin layer" in row
    editor = world.admin.client.get("/admin/rules/no_bad_names").text
    assert 'id="rule-form"' in editor and "error('name', 'is not a name we allow')" in html.unescape(editor)

    world.apply(world.post("/admin/rules/no_bad_names", rule_form(code="pass\n", name=""), 200))
    assert api.post("/api/v1/widget", json={"name": "bad"}, headers=world.api).status_code == 201
    world.apply(world.post("/admin/rules/no_bad_names", {"remove": "1"}, 200))
    assert "no_bad_names" not in world.layer()[0]


def test_testing_on_a_record_shows_what_the_rule_does_and_saves_nothing(world):
    made = world.widget(count=5, price="10.50")
    before, layer = world.snapshot(), world.layer()
    trigger = rule_form(kind="trigger", on=["update"], record_id=str(made["id"]),
                        code="record.count = record.count + count('widget')\nrecord.price = record.price * 2\n")
    page = world.post("/admin/test-rule", trigger, 200)
    changes = page.split('id="outcome-changes"', 1)[1].split("</ul>", 1)[0]
    assert "<code>count</code> → 6" in changes and "<code>price</code> → 21.00" in changes
    assert "record.count + count('widget')" in html.unescape(page)  # the form keeps the unsaved rule

    refusing = rule_form(code="if record.count > 3:\n    error('count', 'is over 3')\n", record_id=str(made["id"]))
    page = world.post("/admin/test-rule", refusing, 200)
    assert "refused:" in page and "is over 3" in page and 'id="outcome-refused"' in page

    creating = rule_form(kind="trigger", on=["create"], run_as="create", record_id=str(made["id"]),
                         code="made = create('bin', {'label_text': 'for ' + record.name})\nrecord.bin = made['id']\n")
    page = world.post("/admin/test-rule", creating, 200)
    assert 'id="outcome-created"' in page and "for w" in page

    broken = rule_form(code="x = 1\nx = record.name + 1\n", record_id=str(made["id"]))
    assert 'id="outcome-broke"' in world.post("/admin/test-rule", broken, 200)
    page = world.post("/admin/test-rule", rule_form(code="x = (", record_id=str(made["id"])), 422)
    assert field_errors(page, "code") == ["line 1: '(' was never closed"]
    page = world.post("/admin/test-rule", rule_form(record_id="999"), 422)
    assert field_errors(page, "record_id")
    assert world.snapshot() == before and world.layer() == layer  # same version, no audit entry, no bin


def test_a_new_dictionary_is_applied_and_listed(world):
    form = {"name": "finish", "label_en": "Finish", "label_zh": "表面", "options": "matt, Matt, 哑光\ngloss, Gloss"}
    plan = world.post("/admin/new-dictionary", form, 200)
    assert world.layer() == ("", 0)
    world.apply(plan)
    listing = world.admin.client.get("/admin/dictionaries").text
    row = listing.split('data-dictionary="finish"', 1)[1].split("</tr>", 1)[0]
    assert 'data-value="matt"' in row and 'data-value="gloss"' in row and "the admin layer" in row
    assert 'data-dictionary="colour"' in listing
    editor = world.admin.client.get("/admin/dictionaries/finish").text
    assert "matt, Matt, 哑光" in editor and 'value="表面"' in editor
    pack = world.admin.client.get("/admin/dictionaries/colour").text
    assert 'id="pack-dictionary"' in pack and 'id="dictionary-form"' not in pack


def test_a_dictionary_named_like_a_packs_is_refused_next_to_the_name(world):
    page = world.post("/admin/new-dictionary", {"name": "colour", "options": "green"}, 422)
    assert field_errors(page, "name") and "declared twice" in field_errors(page, "name")[0]
    page = world.post("/admin/new-dictionary", {"name": "finish", "options": ""}, 422)
    assert field_errors(page, "options") == ["give at least one option, one per line"]
    assert world.layer() == ("", 0)


def test_a_packs_dictionary_takes_more_options_and_keeps_its_own(world):
    refused = world.post("/admin/dictionaries/colour", {"options": "red, Scarlet"}, 422)
    assert "already has the option 'red'" in " ".join(field_errors(refused, "options"))
    assert world.layer() == ("", 0)
    world.apply(world.post("/admin/dictionaries/colour", {"options": "green, Green, 绿"}, 200))
    widget = world.widget(colour="green")
    assert widget["colour"] == "green"
    page = world.admin.client.get("/admin/dictionaries/colour").text
    assert [v for v in ("red", "blue", "green") if f"<code>{v}</code>" in page] == ["red", "blue", "green"]
