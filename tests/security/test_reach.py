"""What widens or limits a user's reach beyond the plain matrix: the team tree, row rules,
sharing, restricted stage moves and transferring a leaver's records. In the mini pack a
`foreman` reaches widgets of their team (and sub-teams) plus those whose `maker` they are."""

from __future__ import annotations

import pytest

from security.conftest import worlds

pytestmark = pytest.mark.parametrize(**worlds("mini"))


@pytest.fixture(scope="module")
def people(world):
    """Foremen in north (from the world), in north_east below it, and in south."""
    metadata = world.metadata
    world.add_user("ne_foreman", ["foreman"], "north_east", metadata)
    world.add_user("s_foreman", ["foreman"], "south", metadata)
    return world


def test_a_team_reaches_down_the_tree_never_up(people):
    world = people
    north = world.create("widget", world.users["foreman"], name="north's")
    below = world.create("widget", world.users["ne_foreman"], name="north_east's")
    assert {north["id"], below["id"]} <= set(world.clients["foreman"].listed_ids("widget", limit=500))
    seen_below = world.clients["ne_foreman"].listed_ids("widget", limit=500)
    assert below["id"] in seen_below and north["id"] not in seen_below
    assert world.clients["ne_foreman"].call("GET", f"widget/{north['id']}").status_code == 404


def test_a_row_rule_adds_records_for_reading_and_writing(people):
    world = people
    outside = world.create("widget", world.users["stranger"], name="made by foreman",
                           maker=world.users["foreman"])
    other = world.create("widget", world.users["stranger"], name="made by someone else")
    foreman = world.clients["foreman"]
    seen = foreman.listed_ids("widget", limit=500)
    assert outside["id"] in seen and other["id"] not in seen
    changed = foreman.call("PATCH", f"widget/{outside['id']}", json={"count": 7}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json["count"] == 7
    assert foreman.call("PATCH", f"widget/{other['id']}", json={"count": 7},
                        headers={"If-Match": '"1"'}).status_code == 404


def test_filters_and_expand_through_a_reference_stay_in_reach(people):
    """A maker reads every widget but only their own bins: a filter on a bin's fields matches
    only bins they may read, and expanding an unreadable bin leaves its id."""
    world = people
    hidden_bin = world.create("bin", world.users["stranger"], label_text="Secret shelf")
    widget = world.create("widget", world.users["stranger"], name="on a secret shelf", bin=hidden_bin["id"])
    maker = world.clients["maker"]
    assert maker.listed_ids("widget", filter="bin.label_text = 'Secret shelf'") == []
    assert world.clients["keeper"].listed_ids("widget", filter="bin.label_text = 'Secret shelf'") == [widget["id"]]
    expanded = maker.call("GET", f"widget/{widget['id']}", query_string={"expand": "bin"})
    assert expanded.status_code == 200 and expanded.json["bin"] == hidden_bin["id"]
    assert "Secret shelf" not in expanded.get_data(as_text=True)
    refused = maker.call("POST", "widget", json={"name": "mine", "bin": hidden_bin["id"]})
    assert refused.status_code == 422 and refused.json["errors"] == {"bin": [f"there is no bin {hidden_bin['id']}"]}


def test_sharing_with_a_user_then_a_team(people):
    world = people
    owner, reader = world.clients["s_foreman"], world.clients["foreman"]
    record = world.create("widget", world.users["s_foreman"], name="shared one")
    path = f"widget/{record['id']}"
    assert reader.call("GET", path).status_code == 404

    share = owner.call("POST", f"{path}/shares", json={"user": reader.user_id, "access": "read"})
    assert share.status_code == 201, share.json
    assert reader.call("GET", path).status_code == 200
    assert record["id"] in reader.listed_ids("widget", limit=500)
    assert reader.call("PATCH", path, json={"count": 2}, headers={"If-Match": '"1"'}).status_code == 403
    assert reader.call("POST", f"{path}/shares", json={"user": reader.user_id}).status_code == 403

    assert owner.call("POST", f"{path}/shares", json={"user": reader.user_id, "access": "edit"}).status_code == 201
    assert len(owner.call("GET", f"{path}/shares").json["data"]) == 1  # re-sharing changes the access
    assert reader.call("PATCH", path, json={"count": 2}, headers={"If-Match": '"1"'}).status_code == 200
    assert reader.call("DELETE", path, headers={"If-Match": '"2"'}).status_code == 403  # edit is not delete

    owner.call("DELETE", f"{path}/shares/{share.json['id']}")
    assert reader.call("GET", path).status_code == 404
    below = world.clients["ne_foreman"]
    assert below.call("GET", path).status_code == 404
    team = owner.call("POST", f"{path}/shares", json={"team": _team_id(world, "north"), "access": "read"})
    assert team.status_code == 201
    assert reader.call("GET", path).status_code == 200 and below.call("GET", path).status_code == 200
    actions = [entry["action"] for entry in owner.call("GET", f"{path}/history").json["data"]]
    assert actions[:4] == ["share", "unshare", "update", "share"]


def test_sharing_refuses_bad_recipients(people):
    world = people
    owner = world.clients["s_foreman"]
    record = world.create("widget", world.users["s_foreman"], name="to share")
    path = f"widget/{record['id']}/shares"
    assert owner.call("POST", path, json={"user": 999999}).status_code == 422
    assert owner.call("POST", path, json={"user": 1, "team": 1}).status_code == 422
    assert owner.call("POST", path, json={"user": 1, "access": "own"}).status_code == 422
    assert world.clients["foreman"].call("POST", path, json={"user": 1}).status_code == 404  # cannot see it


def test_a_restricted_stage_move_is_refused(people):
    world = people
    maker = world.clients["maker"]
    record = world.create("widget", world.users["maker"], name="staged", price="1.00", weight="2.0")
    path = f"widget/{record['id']}"
    refused = maker.call("PATCH", path, json={"phase": "shipped"}, headers={"If-Match": '"1"'})
    assert refused.status_code == 403 and "phase" in refused.json["errors"]
    assert world.row("widget", record["id"])["phase"] is None
    assert maker.call("PATCH", path, json={"phase": "ready"}, headers={"If-Match": '"1"'}).status_code == 200
    keeper = world.clients["keeper"]
    assert keeper.call("PATCH", path, json={"phase": "shipped"}, headers={"If-Match": '"2"'}).status_code == 200


def test_transferring_a_leavers_records(people):
    world = people
    leaver = world.add_user("leaver", [], "north_east", world.metadata).user_id
    mine = [world.create("widget", leaver, name=f"leaver {n}")["id"] for n in range(3)]
    world.create("bin", leaver, label_text="leaver's bin")
    heir = world.users["heir"]

    south = world.clients["s_foreman"].call("POST", "transfers", json={"from": leaver, "to": heir})
    assert south.status_code == 200 and south.json == {}  # out of their team: nothing, and no counts leak
    foreman = world.clients["foreman"].call("POST", "transfers", json={"from": leaver, "to": heir})
    assert foreman.status_code == 200, foreman.json
    # foreman may read the team's bins but not transfer them: reported as left behind
    assert foreman.json == {"widget": 3, "_left": {"bin": 1}}
    assert all(world.row("widget", i)["owner_id"] == heir for i in mine)
    entry = world.clients["keeper"].call("GET", f"widget/{mine[0]}/history").json["data"][0]
    assert entry["action"] == "transfer" and entry["changes"] == {"owner_id": [leaver, heir]}
    assert world.row("widget", mine[0])["version"] == 2
    refused = world.clients["foreman"].call("POST", "transfers", json={"from": leaver, "to": 999999})
    assert refused.status_code == 422


def _team_id(world, name: str) -> int:
    import sqlalchemy as sa
    with world.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM pw_team WHERE name = :n"), {"n": name}).scalar()
