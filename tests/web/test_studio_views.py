"""The studio's entity settings, list view, kanban and pipeline editors through Flask's test
client on SQLite and PostgreSQL: each change, once its plan is applied, is what the UI and the
API's description show; each bad value is refused next to its input with nothing applied."""

from __future__ import annotations

import pytest

from conftest import TEST_PACKS
from packwork.runtime.tokens import create_token
from packwork.runtime.users import find_user
from web.studio_world import StudioWorld, field_errors, studio_world
from web.test_ui_security import Visitor


class World(StudioWorld):
    def change(self, path: str, data: dict) -> None:
        plan = self.admin.post(path, data)
        assert 'id="plan"' in plan.text, plan.text[:3000]
        self.apply(plan)

    def refused(self, path: str, data: dict) -> str:
        before = self.layer()
        response = self.admin.post(path, data)
        assert response.status_code == 422, response.text[:3000]
        assert self.layer() == before  # nothing applied
        return response.text

    def meta(self, entity: str) -> dict:
        with self.engine.begin() as conn:
            token = create_token(conn, find_user(conn, "root"), "tests")[1]
        answer = self.app.test_client().get(f"/api/v1/meta/{entity}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return answer.json


@pytest.fixture
def world(db_url):
    with studio_world(db_url, TEST_PACKS / "mini", {"kim": ["keeper"]}, ["keeper"], World) as world:
        yield world


def test_an_entity_is_relabelled_retitled_and_hidden_then_shown(world):
    kim = Visitor(world.app).sign_in("kim")
    settings = {"label_en": "Gadget", "label_zh": "小工具", "plural_en": "Gadgets", "plural_zh": "小工具",
                "icon": "cog", "title_field": "code", "search_fields": "name, code"}
    world.change("/admin/entities/widget", settings)
    meta = world.meta("widget")
    assert meta["label"]["en"] == "Gadget" and meta["icon"] == "cog" and meta["title_field"] == "code"
    assert ">Gadgets<" in kim.client.get("/").text
    world.change("/admin/entities/widget", settings | {"hidden": "1"})
    assert ">Gadgets<" not in kim.client.get("/").text  # off the menu
    unchanged = world.admin.post("/admin/entities/widget", settings | {"hidden": "1"})
    assert 'id="plan-empty"' in unchanged.text  # saving the settings as they are changes nothing
    world.change("/admin/entities/widget", settings)
    assert ">Gadgets<" in kim.client.get("/").text
    errors = field_errors(world.refused("/admin/entities/widget", settings | {"title_field": "nothing"}),
                          "title_field")
    assert errors and "nothing" in errors[0]


def test_a_list_view_is_made_and_bad_columns_or_filters_are_refused_where_typed(world):
    view = {"label_en": "Cheap", "columns": "name, price", "filter": "price < 10", "sort": "-price"}
    world.change("/admin/entities/widget/list-views/cheap", view)
    listed = {v["name"]: v for v in world.meta("widget")["list_views"]}
    assert listed["cheap"]["columns"] == ["name", "price"] and listed["cheap"]["filter"] == "price < 10"
    assert world.admin.client.get("/r/widget?view=cheap").status_code == 200
    assert "nope" in " ".join(field_errors(world.refused("/admin/entities/widget/list-views/cheap",
                                                         view | {"columns": "name, nope"}), "columns"))
    assert field_errors(world.refused("/admin/entities/widget/list-views/cheap", view | {"filter": "nope = 1"}),
                        "filter")


def test_a_kanban_board_is_made_and_a_bad_card_field_refused(world):
    board = {"label_en": "By size", "group_by": "size", "card_fields": "name, code"}
    world.change("/admin/entities/widget/kanbans/by_size", board)
    assert world.admin.client.get("/r/widget/kanban/by_size").status_code == 200
    errors = field_errors(world.refused("/admin/entities/widget/kanbans/by_size", board | {"card_fields": "nope"}),
                          "card_fields")
    assert errors and "nope" in errors[0]


def test_a_pack_pipeline_takes_a_new_stage_after_the_row_above_it(world):
    rows = {f"stage.{n}.{k}": v for n, stage in enumerate(world.meta("widget")["pipeline"]["stages"])
            for k, v in (("name", stage["name"]), ("order", str(10 * (n + 1))),
                         ("probability", str(stage["probability"])))}  # what the page shows, read-only
    new = {"stage.4.name": "review", "stage.4.label_en": "Review", "stage.4.probability": "80",
           "stage.4.order": "25", "stage.4.outcome": "open"}
    refused = world.refused("/admin/entities/widget/pipeline", rows | new | {"stage.4.probability": "lots"})
    assert field_errors(refused, "stage.4.probability")
    world.change("/admin/entities/widget/pipeline", rows | new)
    stages = [s["name"] for s in world.meta("widget")["pipeline"]["stages"]]
    assert stages == ["draft", "ready", "review", "shipped", "scrapped"]
    rows = {k: v for k, v in rows.items() if not k.startswith("stage.4.")}  # "review" is row 2 now
    renamed = {"stage.1.label_en": "Ready to ship", "stage.1.label_zh": "待发", "stage.1.probability": "70",
               "stage.1.required_fields": "price, code"}
    page = world.admin.client.get("/admin/entities/widget/pipeline").text
    assert 'name="stage.1.name" value="ready"' in page
    world.change("/admin/entities/widget/pipeline", rows | {
        "stage.1.name": "ready", "stage.2.name": "review", "stage.2.probability": "80",
        "stage.2.label_en": "Review", "stage.2.order": "25", "stage.1.order": "20"} | renamed)
    ready = next(s for s in world.meta("widget")["pipeline"]["stages"] if s["name"] == "ready")
    assert ready["label"] == {"en": "Ready to ship", "zh": "待发"} and ready["probability"] == 70
    assert ready["required_fields"] == ["price", "code"]


def test_a_layer_pipeline_is_reordered_and_renamed(world):
    world.change("/admin/new-entity", {"name": "project", "label_en": "Project"})
    stages = {"field": "phase", "stage.0.name": "plan", "stage.0.probability": "10", "stage.0.order": "1",
              "stage.1.name": "build", "stage.1.probability": "50", "stage.1.order": "2",
              "stage.2.name": "done", "stage.2.probability": "100", "stage.2.outcome": "won", "stage.2.order": "3"}
    world.change("/admin/entities/project/pipeline", stages)
    assert [s["name"] for s in world.meta("project")["pipeline"]["stages"]] == ["plan", "build", "done"]
    assert {"name": "phase", "type": "stage"}.items() <= next(f for f in world.meta("project")["fields"]
                                                            if f["name"] == "phase").items()
    world.change("/admin/entities/project/pipeline", stages | {"stage.0.order": "2", "stage.1.order": "1",
                                                               "stage.1.label_en": "Construction"})
    described = world.meta("project")["pipeline"]["stages"]
    assert [s["name"] for s in described] == ["build", "plan", "done"] and described[0]["label"]["en"] == "Construction"
