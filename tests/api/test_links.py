"""Many-to-many links over the API, on SQLite and PostgreSQL: a relation between two entities
(widget -> bin, with a required field of its own) and a symmetric one (widget <-> widget).
Seeing links needs read access to the record and lists only linked records the caller may read;
linking needs update access to the record it is done from; both records' history tells."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS, fresh_database
from packwork.web.app import create_app
from packwork.web.services import services
from api.conftest import install, signed_in


class World:
    def __init__(self, app, engine, tokens: dict[str, str]):
        self.client, self.engine, self.tokens = app.test_client(), engine, tokens

    def call(self, who: str, method: str, path: str, **kwargs):
        return self.client.open(f"/api/v1{path}", method=method,
                                headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kwargs)

    def make(self, who: str, entity: str, values: dict) -> int:
        response = self.call(who, "POST", f"/{entity}", json=values)
        assert response.status_code == 201, response.json
        return response.json["id"]

    def links_in_db(self, table: str) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f"SELECT source_id, target_id FROM {table} ORDER BY id"))]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        tokens = {name: signed_in(engine, name, roles) for name, roles in
                  (("kim", ["keeper"]), ("max", ["maker"]), ("mia", ["maker"]))}
        app = create_app(url)
        yield World(app, engine, tokens)
        services(app).engine.dispose()
        engine.dispose()


def test_link_list_and_unlink_between_two_entities(world):
    widget = world.make("kim", "widget", {"name": "Bolt", "code": "L-B1"})
    shelf = world.make("kim", "bin", {"label_text": "Shelf A"})
    made = world.call("kim", "POST", f"/widget/{widget}/links/widget_stock", json={"id": shelf, "qty": 12})
    assert made.status_code == 201, made.json
    assert (made.json["record"]["id"], made.json["qty"]) == (shelf, 12)
    from_widget = world.call("kim", "GET", f"/widget/{widget}/links/widget_stock").json
    from_bin = world.call("kim", "GET", f"/bin/{shelf}/links/widget_stock").json
    assert [(l["record"]["id"], l["qty"]) for l in from_widget["data"]] == [(shelf, 12)]
    assert [l["record"]["id"] for l in from_bin["data"]] == [widget] and from_bin["total"] == 1
    again = world.call("kim", "POST", f"/bin/{shelf}/links/widget_stock", json={"id": widget, "qty": 1})
    assert again.status_code == 409 and again.json["errors"] == {"id": ["is already linked"]}
    assert world.links_in_db("widget_stock").count((widget, shelf)) == 1

    histories = [world.call("kim", "GET", path).json["data"][0] for path in
                 (f"/widget/{widget}/history", f"/bin/{shelf}/history")]
    assert [(h["action"], h["changes"]) for h in histories] == [
        ("link", {"widget_stock": [None, shelf]}), ("link", {"widget_stock": [None, widget]})]

    link_id = made.json["id"]
    assert world.call("kim", "DELETE", f"/bin/{shelf}/links/widget_stock/{link_id}").status_code == 204
    assert world.call("kim", "DELETE", f"/bin/{shelf}/links/widget_stock/{link_id}").status_code == 404
    assert (widget, shelf) not in world.links_in_db("widget_stock")


@pytest.mark.parametrize(("body", "field"), [
    ({"id": 10**6}, None), ({"qty": 3}, "id"), ({"id": True, "qty": 1}, "id"), ({"id": "x"}, "id"),
    ("THE_BIN", "qty"), ("THE_BIN+", "qty"), ("THE_BIN-owner", "owner_id"), ("THE_BIN-stray", "colour"),
])
def test_bad_link_requests_are_refused_and_write_nothing(world, body, field):
    widget = world.make("kim", "widget", {"name": "Nut", "code": f"L-N{abs(hash(str(body))) % 10**8}"})
    shelf = world.make("kim", "bin", {"label_text": "Shelf B"})
    body = {"THE_BIN": {"id": shelf}, "THE_BIN+": {"id": shelf, "qty": "many"},
            "THE_BIN-owner": {"id": shelf, "qty": 1, "owner_id": 1},
            "THE_BIN-stray": {"id": shelf, "qty": 1, "colour": "red"}}.get(body, body) \
        if isinstance(body, str) else body
    before = world.links_in_db("widget_stock")
    answer = world.call("kim", "POST", f"/widget/{widget}/links/widget_stock", json=body)
    assert 400 <= answer.status_code < 500 and answer.mimetype == "application/problem+json", answer.json
    if field is None:
        assert answer.status_code == 404
    else:
        assert field in answer.json["errors"], answer.json
    assert world.links_in_db("widget_stock") == before


def test_an_unknown_relation_is_404(world):
    widget = world.make("kim", "widget", {"name": "Gear", "code": "L-G1"})
    assert world.call("kim", "GET", f"/widget/{widget}/links/no_such").status_code == 404
    assert world.call("kim", "GET", f"/bin/1/links/widget_link").status_code in (404,)


def test_a_symmetric_relation_is_one_link_seen_from_both_ends(world):
    first = world.make("kim", "widget", {"name": "Left", "code": "L-S1"})
    second = world.make("kim", "widget", {"name": "Right", "code": "L-S2"})
    made = world.call("kim", "POST", f"/widget/{first}/links/widget_link", json={"id": second, "kind": "peer"})
    assert made.status_code == 201, made.json
    assert world.call("kim", "POST", f"/widget/{second}/links/widget_link", json={"id": first}).status_code == 409
    for one, other in ((first, second), (second, first)):
        data = world.call("kim", "GET", f"/widget/{one}/links/widget_link").json["data"]
        assert [(l["record"]["id"], l["kind"]) for l in data] == [(other, "peer")]
    assert world.call("kim", "DELETE", f"/widget/{second}/links/widget_link/{made.json['id']}").status_code == 204
    assert world.call("kim", "GET", f"/widget/{first}/links/widget_link").json["total"] == 0


def test_links_follow_the_records_permissions(world):
    """max and mia are makers: widgets they may read all but update only their own; bins only their own."""
    mine = world.make("max", "widget", {"name": "Max's", "code": "L-P1"})
    theirs = world.make("mia", "widget", {"name": "Mia's", "code": "L-P2"})
    my_bin = world.make("max", "bin", {"label_text": "Max bin"})
    her_bin = world.make("mia", "bin", {"label_text": "Mia bin"})

    refused = world.call("max", "POST", f"/widget/{theirs}/links/widget_stock", json={"id": my_bin, "qty": 1})
    assert refused.status_code == 403  # may read her widget, may not change it
    hidden = world.call("max", "POST", f"/widget/{mine}/links/widget_stock", json={"id": her_bin, "qty": 1})
    assert hidden.status_code == 404  # her bin is out of his reach: as if it did not exist
    assert world.call("max", "POST", f"/widget/{mine}/links/widget_stock", json={"id": my_bin, "qty": 2}).status_code == 201
    assert world.call("mia", "POST", f"/widget/{theirs}/links/widget_stock", json={"id": her_bin, "qty": 1}).status_code == 201
    # kim links max's widget to mia's bin: max sees the link's widget side without the bin he may not read
    world.call("kim", "POST", f"/widget/{mine}/links/widget_stock", json={"id": her_bin, "qty": 5})
    seen = world.call("max", "GET", f"/widget/{mine}/links/widget_stock").json
    assert [l["record"]["id"] for l in seen["data"]] == [my_bin] and seen["total"] == 1
    assert world.call("max", "GET", f"/bin/{her_bin}/links/widget_stock").status_code == 404
    link = next(l["id"] for l in world.call("kim", "GET", f"/widget/{theirs}/links/widget_stock").json["data"])
    assert world.call("max", "DELETE", f"/widget/{theirs}/links/widget_stock/{link}").status_code == 403
    assert (theirs, her_bin) in world.links_in_db("widget_stock")


def test_openapi_describes_the_links(world):
    paths = world.client.get("/api/v1/openapi.json").json["paths"]
    stock = paths["/api/v1/bin/{id}/links/widget_stock"]
    assert stock["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["id", "qty"]
    assert "/api/v1/widget/{id}/links/widget_link/{link_id}" in paths
