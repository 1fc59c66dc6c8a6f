"""Reports and dashboards over the API, on SQLite and PostgreSQL, with the `tally` test pack:
each token's user gets the reports available to them, figures of the records they may read
only, and problem+json 404s for names that are unknown to them; the OpenAPI document has it all."""

from __future__ import annotations

from collections import Counter

import pytest

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services

ROLES = ["seller", "chief"]
DEALS = [  # name, owner, phase, amount, region
    ("A1", "ann", "prospect", "100", "north"), ("A2", "ann", "offer", "250.50", "south"),
    ("A3", "ann", "signed", "1000", "north"), ("B1", "bob", "prospect", "40", None),
    ("B2", "bob", "signed", "60", "south"), ("B3", "bob", "dropped", "70", "south"),
    ("C1", "cy", "prospect", "5", "north"),
]


class World:
    def __init__(self, app, users: dict[str, tuple[int, str]]):
        self.client, self.users = app.test_client(), users

    def get(self, who: str, path: str, language: str | None = None):
        return self.client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {self.users[who][1]}"})

    def id_of(self, who: str) -> int:
        return self.users[who][0]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "tally")
        users = {}
        with engine.begin() as conn:
            for name, role in (("ann", "seller"), ("bob", "seller"), ("cy", "chief")):
                user_id = create_user(conn, name, [role], ROLES)
                users[name] = (user_id, create_token(conn, user_id, "tests")[1])
        app = create_app(url)
        client = app.test_client()
        chief = {"Authorization": f"Bearer {users['cy'][1]}"}
        for name, owner, phase, amount, region in DEALS:
            made = client.post("/api/v1/deal", headers=chief, json={
                "name": name, "owner_id": users[owner][0], "phase": phase, "amount": amount, "region": region,
                "chance": "50", "closes_on": "2026-02-10"})
            assert made.status_code == 201, made.json
        yield World(app, users)
        services(app).engine.dispose()
        engine.dispose()


def _groups(body: dict, measure: str) -> dict:
    return {tuple(k["value"] for k in g["keys"]): g["figures"][measure] for g in body["groups"]}


def test_the_report_list_is_the_reports_available_to_the_caller(world):
    listed = world.get("ann", "/reports")
    assert listed.status_code == 200
    names = [r["name"] for r in listed.json["data"]]
    assert names[:3] == ["funnel", "forecast_by_month", "forecast_by_owner"]
    assert {"name": "funnel", "label": "Funnel", "entity": "deal", "chart": "funnel"} in listed.json["data"]


def test_a_report_counts_only_what_the_caller_may_read(world):
    for who in ("ann", "bob", "cy"):
        body = world.get(who, "/reports/funnel").json
        seen = [d for d in DEALS if who == "cy" or d[1] == who]
        counts = Counter(d[2] for d in seen)
        # every stage of the funnel shows, a lost one only when it holds records
        assert _groups(body, "deals") == {(p,): counts[p] for p in ("prospect", "offer", "dropped", "signed")
                                          if p != "dropped" or counts[p]}
    ann = world.get("ann", "/reports/funnel").json
    assert _groups(ann, "value") == {("prospect",): 100.0, ("offer",): 250.5, ("signed",): 1000.0}
    assert ann["conversion"][0] == {"from": "prospect", "to": "offer", "reached_from": 3, "reached_to": 2,
                                    "rate": 0.6667}


def test_group_values_carry_their_labels(world):
    body = world.get("cy", "/reports/margin_by_region").json
    labels = {g["keys"][0]["value"]: g["keys"][0]["label"] for g in body["groups"]}
    assert labels == {"north": "North", "south": "South", None: "(none)"}
    assert body["keys"] == [{"field": "region", "bucket": None, "label": "Region"}]


def test_a_measure_over_a_field_hidden_from_the_caller_is_left_out(world):
    chief = world.get("cy", "/reports/margin_by_region").json
    seller = world.get("ann", "/reports/margin_by_region").json
    assert [m["name"] for m in chief["measures"]] == ["deals", "margin"]
    assert [m["name"] for m in seller["measures"]] == ["deals"]
    assert "margin" not in str(seller["groups"])


def test_dashboards_list_and_run_as_the_caller(world):
    assert [d["name"] for d in world.get("ann", "/dashboards").json["data"]] == ["selling"]
    assert [d["name"] for d in world.get("cy", "/dashboards").json["data"]] == ["selling", "chiefs"]
    board = world.get("bob", "/dashboards/selling").json
    assert board["label"] == "Selling"
    assert [(r["name"], r["width"]) for r in board["reports"]][:2] == [("funnel", "full"), ("forecast_by_month", "half")]
    funnel = board["reports"][0]
    assert sum(g["count"] for g in funnel["groups"]) == sum(1 for d in DEALS if d[1] == "bob")


@pytest.mark.parametrize(("who", "path"), [
    ("ann", "/reports/nope"), ("ann", "/dashboards/nope"), ("ann", "/dashboards/chiefs"),
    ("cy", "/reports/%3Cscript%3E"), ("cy", "/dashboards/FUNNEL"),
])
def test_unknown_names_answer_a_problem_404(world, who, path):
    response = world.get(who, path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json" and response.json["status"] == 404


def test_without_a_token_reports_answer_401(world):
    assert world.client.get("/api/v1/reports/funnel").status_code == 401


def test_the_openapi_document_describes_reports_and_dashboards(world):
    spec = world.client.get("/api/v1/openapi.json").json
    for path in ("/api/v1/reports", "/api/v1/reports/{name}", "/api/v1/dashboards", "/api/v1/dashboards/{name}"):
        assert "404" in spec["paths"][path]["get"]["responses"], path
    assert spec["components"]["schemas"]["Report"]["properties"]["groups"]["type"] == "array"
