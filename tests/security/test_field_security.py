"""A field hidden from a role cannot be read through any door: output, sparse fields, filter
(directly, by shorthand, through a reference), sort, expand, export, history or metadata; and
the refusals look exactly like those for a field that does not exist. A read-only field cannot
be written. In the mini pack the `maker` role hides widget.notes and bin.location and may not
change widget.weight."""

from __future__ import annotations

import pytest

from security.conftest import worlds

SECRET = "the secret formula"

pytestmark = pytest.mark.parametrize(**worlds("mini"))


@pytest.fixture(scope="module")
def widget(world):
    maker = world.users["maker"]
    shelf = world.create("bin", maker, label_text="Shelf", location=SECRET)
    record = world.create("widget", maker, name="Gizmo", notes=SECRET, weight="2.5", bin=shelf["id"])
    keeper = world.clients["keeper"]  # writes an update, so the secret is in the history too
    changed = keeper.call("PATCH", f"widget/{record['id']}", json={"notes": SECRET + " v2"},
                          headers={"If-Match": '"1"'})
    assert changed.status_code == 200, changed.json
    return changed.json


def test_output_and_sparse_fields_leave_it_out(world, widget):
    maker = world.clients["maker"]
    one = maker.call("GET", f"widget/{widget['id']}")
    assert one.status_code == 200 and "notes" not in one.json and one.json["name"] == "Gizmo"
    listed = maker.call("GET", "widget", query_string={"filter": f"id = {widget['id']}"})
    assert listed.json["data"] and all("notes" not in row for row in listed.json["data"])
    sparse = maker.call("GET", "widget", query_string={"fields": "name,notes"})
    unknown = maker.call("GET", "widget", query_string={"fields": "name,no_such_field"})
    assert sparse.status_code == unknown.status_code == 400
    assert sparse.json["detail"] == unknown.json["detail"].replace("no_such_field", "notes")
    assert world.clients["keeper"].call("GET", f"widget/{widget['id']}").json["notes"] == SECRET + " v2"


@pytest.mark.parametrize("how", ["filter", "shorthand", "sort"])
def test_filters_and_sorts_refuse_it_as_unknown(world, widget, how):
    maker = world.clients["maker"]

    def ask(name: str):
        params = {"filter": f"{name} contains 'secret'"} if how == "filter" else \
            {name: SECRET} if how == "shorthand" else {"sort": name}
        return maker.call("GET", "widget", query_string=params)

    hidden, unknown = ask("notes"), ask("no_such_field")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json["detail"] == unknown.json["detail"].replace("no_such_field", "notes")
    assert SECRET not in hidden.get_data(as_text=True)


def test_a_filter_through_a_reference_cannot_probe_it(world, widget):
    maker = world.clients["maker"]
    hidden = maker.call("GET", "widget", query_string={"filter": f"bin.location = '{SECRET}'"})
    unknown = maker.call("GET", "widget", query_string={"filter": f"bin.no_such_field = '{SECRET}'"})
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json["detail"] == unknown.json["detail"].replace("no_such_field", "location")
    keeper = world.clients["keeper"].listed_ids("widget", filter=f"bin.location = '{SECRET}'")
    assert keeper == [widget["id"]]  # the same filter works for a role that sees the field


def test_expand_leaves_it_out_of_the_linked_record(world, widget):
    expanded = world.clients["maker"].call("GET", f"widget/{widget['id']}", query_string={"expand": "bin"})
    assert expanded.status_code == 200
    assert expanded.json["bin"]["label_text"] == "Shelf" and "location" not in expanded.json["bin"]
    assert SECRET not in expanded.get_data(as_text=True)


def test_export_leaves_it_out(world, widget):
    rows = world.clients["maker"].exported("widget", filter=f"id = {widget['id']}")
    assert len(rows) == 1 and "notes" not in rows[0] and rows[0]["name"] == "Gizmo"
    asked = world.clients["maker"].call("GET", "widget/export", query_string={"fields": "name,notes"})
    assert asked.status_code == 400
    assert world.clients["keeper"].exported("widget", filter=f"id = {widget['id']}")[0]["notes"] == SECRET + " v2"


def test_history_leaves_it_out(world, widget):
    history = world.clients["maker"].call("GET", f"widget/{widget['id']}/history")
    assert history.status_code == 200 and len(history.json["data"]) == 2
    assert all("notes" not in entry["changes"] for entry in history.json["data"])
    assert SECRET not in history.get_data(as_text=True)
    full = world.clients["keeper"].call("GET", f"widget/{widget['id']}/history").json["data"]
    assert full[0]["changes"]["notes"] == [SECRET, SECRET + " v2"]


def test_metadata_leaves_it_out_and_marks_read_only(world, widget):
    meta = world.clients["maker"].call("GET", "meta/widget").json
    fields = {f["name"]: f for f in meta["fields"]}
    assert "notes" not in fields and fields["weight"]["read_only"] and not fields["name"]["read_only"]
    assert meta["access"] == {"read": "all", "create": "own", "update": "own", "export": "own", "import": "own"}


def test_writing_it_is_refused_and_changes_nothing(world, widget):
    maker = world.clients["maker"]
    mine = world.create("widget", world.users["maker"], name="Mine", weight="1.0")
    path, version = f"widget/{mine['id']}", {"If-Match": '"1"'}
    hidden = maker.call("PATCH", path, json={"notes": "overwritten"}, headers=version)
    unknown = maker.call("PATCH", path, json={"no_such_field": "overwritten"}, headers=version)
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.json["errors"] == {"notes": ["is not a field of 'widget'"]}
    read_only = maker.call("PATCH", path, json={"weight": "9.9"}, headers=version)
    assert read_only.status_code == 403 and read_only.json["errors"] == {"weight": ["is read-only for your role"]}
    created = maker.call("POST", "widget", json={"name": "New", "notes": "sneaky"})
    assert created.status_code == 400 and "notes" in created.json["errors"]
    row = world.row("widget", mine["id"])
    assert row["version"] == 1 and row["notes"] is None and float(row["weight"]) == 1.0
    fine = maker.call("PATCH", path, json={"name": "Renamed"}, headers=version)
    assert fine.status_code == 200 and "notes" not in fine.json
