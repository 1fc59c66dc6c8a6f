"""The recycle bin through the API (GET /api/v1/ENTITY/deleted), on SQLite and PostgreSQL: it
lists exactly the deleted records the caller could restore (their read scope and the delete
grant's reach: own, team, a row rule; nothing but a 403 for a role without the delete grant),
newest deletion first in keyset pages, with who deleted each and when; deleted records never
appear in lists, counts or exports, and a restored one is back in them and out of the bin.

The world is the `mini` test pack: `keeper` may delete every record, `foreman` the bins they own
and the widgets of their team (or whose `maker` they are), `maker` none."""

from __future__ import annotations

import csv
import io
import itertools

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services

PEOPLE = {"kim": ("keeper", None), "max": ("maker", None), "fay": ("foreman", "north"),
          "gus": ("foreman", "north"), "hal": ("foreman", "south")}


class World:
    def __init__(self, app, engine: sa.Engine, ids: dict[str, int], tokens: dict[str, str]):
        self.client, self.engine, self.ids, self.tokens = app.test_client(), engine, ids, tokens
        self._serial = itertools.count(1)

    def call(self, who: str, method: str, path: str, **kwargs):
        return self.client.open(f"/api/v1/{path}", method=method,
                                headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kwargs)

    def made(self, entity: str, owner: str, prefix: str, **values) -> int:
        """A record owned by `owner`, made by kim (the keeper may give it to anyone)."""
        title = "label_text" if entity == "bin" else "name"
        body = {title: f"{prefix} {owner} {next(self._serial)}", "owner_id": self.ids[owner]} | values
        answer = self.call("kim", "POST", entity, json=body)
        assert answer.status_code == 201, answer.json
        return answer.json["id"]

    def delete(self, entity: str, record_id: int, who: str = "kim") -> None:
        assert self.call(who, "DELETE", f"{entity}/{record_id}").status_code == 204

    def bin(self, who: str, entity: str, prefix: str, **params) -> list[int]:
        """The ids in `who`'s bin, of the records this test made (names starting with `prefix`)."""
        title = "label_text" if entity == "bin" else "name"
        answer = self.call(who, "GET", f"{entity}/deleted", query_string={
            "filter": f"{title} startswith '{prefix} '", "limit": "500"} | params)
        assert answer.status_code == 200, answer.json
        return [item["record"]["id"] for item in answer.json["data"]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            create_team(conn, "north")
            create_team(conn, "south")
            ids = {name: create_user(conn, name, [role], [role], team=team) for name, (role, team) in PEOPLE.items()}
            tokens = {name: create_token(conn, user_id, "tests")[1] for name, user_id in ids.items()}
        app = create_app(url, PACKWORK_API_RATE="off")
        yield World(app, engine, ids, tokens)
        services(app).engine.dispose()
        engine.dispose()


def test_the_bin_lists_exactly_what_each_person_may_restore(world):
    bins = {owner: world.made("bin", owner, "Scope") for owner in ("fay", "gus", "hal")}
    widgets = {owner: world.made("widget", owner, "Scope") for owner in ("fay", "gus", "hal")}
    widgets["hal, made by fay"] = world.made("widget", "hal", "Scope", maker=world.ids["fay"])
    for entity, made in (("bin", bins), ("widget", widgets)):
        for record_id in made.values():
            world.delete(entity, record_id)

    assert sorted(world.bin("kim", "bin", "Scope")) == sorted(bins.values())  # delete: all
    assert world.bin("fay", "bin", "Scope") == [bins["fay"]]  # delete: own (though she reads the team's)
    assert sorted(world.bin("fay", "widget", "Scope")) == sorted(  # delete: team, or maker = $me
        [widgets["fay"], widgets["gus"], widgets["hal, made by fay"]])
    assert world.bin("hal", "widget", "Scope") == [widgets["hal, made by fay"], widgets["hal"]]
    for entity in ("bin", "widget"):  # no delete grant: refused, as restoring would be
        refused = world.call("max", "GET", f"{entity}/deleted")
        assert refused.status_code == 403 and refused.mimetype == "application/problem+json"

    # what the bin leaves out, restore refuses, and changes nothing
    assert world.call("fay", "POST", f"bin/{bins['gus']}/restore").status_code == 403  # read, not delete
    assert world.call("fay", "POST", f"widget/{widgets['hal']}/restore").status_code == 404  # out of sight
    assert world.call("max", "POST", f"widget/{widgets['fay']}/restore").status_code == 403
    # and what it lists, restore brings back
    assert world.call("fay", "POST", f"bin/{bins['fay']}/restore").status_code == 200
    assert world.bin("fay", "bin", "Scope") == [] and bins["fay"] not in world.bin("kim", "bin", "Scope")


def test_newest_deletion_first_in_keyset_pages_with_who_and_when(world):
    made = [world.made("widget", "fay", "Order") for _ in range(5)]
    for record_id in (made[2], made[0], made[4]):
        world.delete("widget", record_id, who="kim")
    world.delete("widget", made[1], who="fay")  # the foreman may delete her own
    newest_first = [made[1], made[4], made[0], made[2]]

    seen, after, pages = [], None, 0
    while True:
        params = {"filter": "name startswith 'Order '", "limit": "3", "count": "true"}
        params |= {"after": after} if after else {}
        answer = world.call("kim", "GET", "widget/deleted", query_string=params)
        assert answer.status_code == 200, answer.json
        assert answer.json["count"] == 4
        seen += answer.json["data"]
        after, pages = answer.json["next"], pages + 1
        if after is None:
            break
    assert pages == 2 and [item["record"]["id"] for item in seen] == newest_first
    by_id = {item["record"]["id"]: item for item in seen}
    assert by_id[made[1]]["deleted_by"] == {"id": world.ids["fay"], "username": "fay", "display_name": "fay"}
    assert by_id[made[4]]["deleted_by"]["username"] == "kim"
    assert all(item["deleted_at"] == item["record"]["deleted_at"] and item["deleted_at"].endswith("Z")
               for item in seen)
    moments = [item["deleted_at"] for item in seen]
    assert moments == sorted(moments, reverse=True)


def test_deleted_records_never_appear_in_lists_counts_or_exports_until_restored(world):
    gone, kept = world.made("widget", "kim", "Gone"), world.made("widget", "kim", "Gone")
    world.delete("widget", gone)
    params = {"filter": "name startswith 'Gone '", "count": "true"}
    listed = world.call("kim", "GET", "widget", query_string=params).json
    assert [r["id"] for r in listed["data"]] == [kept] and listed["count"] == 1
    exported = world.call("kim", "GET", "widget/export", query_string={"filter": params["filter"]})
    assert [int(row["id"]) for row in csv.DictReader(io.StringIO(exported.text))] == [kept]
    assert world.call("kim", "GET", f"widget/{gone}").status_code == 404
    assert world.bin("kim", "widget", "Gone") == [gone]

    restored = world.call("kim", "POST", f"widget/{gone}/restore")
    assert restored.status_code == 200 and restored.json["deleted_at"] is None
    assert sorted(r["id"] for r in world.call("kim", "GET", "widget", query_string=params).json["data"]) == \
        sorted([gone, kept])
    assert world.bin("kim", "widget", "Gone") == []
    history = world.call("kim", "GET", f"widget/{gone}/history").json["data"]
    assert [entry["action"] for entry in history[:2]] == ["restore", "delete"] and history[0]["actor"] == "kim"


def test_the_bin_takes_a_list_filter_and_fields_but_not_a_sort(world):
    first = world.made("widget", "kim", "Shape", code="SHAPE-1", count=7)
    second = world.made("widget", "kim", "Shape", code="SHAPE-2")
    for record_id in (first, second):
        world.delete("widget", record_id)
    answer = world.call("kim", "GET", "widget/deleted", query_string={"code": "SHAPE-1", "fields": "name,count"})
    assert answer.status_code == 200, answer.json
    [item] = answer.json["data"]
    assert set(item["record"]) == {"id", "version", "name", "count"} and item["record"]["count"] == 7
    assert item["deleted_by"]["username"] == "kim" and item["deleted_at"]
    for params in ({"sort": "name"}, {"filter": "name ="}, {"fields": "nonsense"}, {"after": "not-a-cursor"}):
        refused = world.call("kim", "GET", "widget/deleted", query_string=params)
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json", params
    assert world.call("kim", "GET", "nothing/deleted").status_code == 404


def test_the_bin_is_in_the_openapi_document(world):
    document = world.client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/widget/deleted"]["get"]
    assert operation["operationId"] == "deleted_widget"
    assert {"403", "400"} <= operation["responses"].keys()
