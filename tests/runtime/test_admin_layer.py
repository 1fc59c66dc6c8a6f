"""The admin layer on SQLite and PostgreSQL: a customisation stored in the database as the pack
`admin_layer`, resolved after the packs by the same resolver, applied as a metadata version
that every process picks up, reverted as a new version, exported as a pack that installs to the
same metadata."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.conftest import install, signed_in
from conftest import TEST_PACKS, fresh_database
from packwork.errors import MigrationRefused, PackError
from packwork.runtime import admin_layer, packstore
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.web.app import create_app
from packwork.web.services import services

MINI = TEST_PACKS / "mini"
HIDE_NOTES = "extends:\n  widget:\n    hide_fields: [notes]\n"
ADD_SERIAL = "extends:\n  widget:\n    add_fields:\n      serial: {type: text, max_length: 40}\n"


@pytest.fixture
def world(db_url):
    engine = install(db_url, MINI)
    headers = {"Authorization": f"Bearer {signed_in(engine, 'ann', ['keeper'])}"}
    apps = [create_app(db_url), create_app(db_url)]
    yield engine, headers, apps
    for app in apps:
        services(app).engine.dispose()
    engine.dispose()


def _version(engine) -> str:
    with engine.connect() as conn:
        return packstore.current_version(conn).version


def _seen(app, headers, record_id: int) -> tuple[set, set, set]:
    """The widget fields the record, the entity description and the OpenAPI schema show."""
    client = app.test_client()
    record = client.get(f"/api/v1/widget/{record_id}", headers=headers)
    meta = client.get("/api/v1/meta/widget", headers=headers)
    openapi = client.get("/api/v1/openapi.json", headers=headers)
    assert record.status_code == meta.status_code == openapi.status_code == 200
    schemas = openapi.json["components"]["schemas"]
    shown = set().union(*(s.get("properties", {}) for name, s in schemas.items() if name.lower().startswith("widget")))
    return set(record.json), {f["name"] for f in meta.json["fields"]}, shown


def test_hiding_a_field_keeps_its_data_and_unhiding_brings_it_back(world):
    engine, headers, (first, second) = world
    made = first.test_client().post("/api/v1/widget", json={"name": "w1", "notes": "keep me"}, headers=headers)
    assert made.status_code == 201 and made.json["notes"] == "keep me"
    assert all("notes" in seen for seen in _seen(second, headers, made.json["id"]))  # second caches its catalog

    plan = admin_layer.plan_layer(engine, HIDE_NOTES)
    assert not any(plan.statements.values())  # hiding changes metadata only
    assert "hidden" in plan.render()
    version = admin_layer.apply_layer(engine, HIDE_NOTES, "alice")
    assert version.author == "alice" and version.text == HIDE_NOTES

    for app in (first, second):  # the other app notices on its next request
        assert not any("notes" in seen for seen in _seen(app, headers, made.json["id"]))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT notes FROM widget")).scalar() == "keep me"
        assert admin_layer.current_layer(conn).text == HIDE_NOTES

    admin_layer.apply_layer(engine, "# nothing hidden\n", "alice")
    assert all("notes" in seen for seen in _seen(second, headers, made.json["id"]))
    assert second.test_client().get(f"/api/v1/widget/{made.json['id']}", headers=headers).json["notes"] == "keep me"


def test_a_removed_layer_field_is_orphaned_with_its_data(world):
    engine, headers, (app, _) = world
    admin_layer.apply_layer(engine, ADD_SERIAL, "alice")
    made = app.test_client().post("/api/v1/widget", json={"name": "w", "serial": "S-1"}, headers=headers)
    assert made.status_code == 201 and made.json["serial"] == "S-1"
    plan = admin_layer.plan_layer(engine, HIDE_NOTES)
    assert "orphan" in plan.render().lower()
    admin_layer.apply_layer(engine, HIDE_NOTES, "alice", plan=plan)
    assert "serial" not in app.test_client().get(f"/api/v1/widget/{made.json['id']}", headers=headers).json
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT serial FROM widget")).scalar() == "S-1"


def test_a_type_change_that_would_lose_data_is_refused(world):
    engine, _, _ = world
    admin_layer.apply_layer(engine, ADD_SERIAL, "alice")
    before = _version(engine)
    with pytest.raises(MigrationRefused):
        admin_layer.apply_layer(engine, ADD_SERIAL.replace("max_length: 40", "max_length: 10"), "alice")
    assert _version(engine) == before


def test_revert_restores_the_earlier_metadata_as_a_new_version(world):
    engine, _, _ = world
    base = _version(engine)
    first = admin_layer.apply_layer(engine, HIDE_NOTES, "alice")
    hidden = _version(engine)
    admin_layer.apply_layer(engine, ADD_SERIAL, "bob")
    assert _version(engine) not in (base, hidden)

    reverted = admin_layer.revert_layer(engine, first.id, "carol")
    assert _version(engine) == hidden and reverted.restores == first.id and reverted.text == HIDE_NOTES
    admin_layer.revert_layer(engine, 0, "carol")
    assert _version(engine) == base
    with engine.connect() as conn:
        assert [(v.author, v.restores) for v in admin_layer.history(conn)] == [
            ("alice", None), ("bob", None), ("carol", first.id), ("carol", 0)]
        assert admin_layer.current_layer(conn).empty
        assert "admin_layer" not in packstore.installed_packs(conn)


def test_export_installs_to_the_same_metadata_on_an_empty_database(world, tmp_path, request):
    engine, _, _ = world
    admin_layer.apply_layer(engine, HIDE_NOTES + "    add_fields:\n      serial: {type: text}\n", "alice")
    folder = admin_layer.export_layer(engine, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["layer.yaml", "pack.yaml"]
    kind = "sqlite" if engine.dialect.name == "sqlite" else "postgresql"
    (tmp_path / "fresh").mkdir()
    with fresh_database(kind, tmp_path / "fresh", request) as url:
        other = make_engine(url)
        apply(other, plan_packs(other, [MINI, folder], "install"))
        assert _version(other) == _version(engine)
        with other.connect() as conn:
            assert admin_layer.current_layer(conn).text == admin_layer.read_layer_folder(folder)
        other.dispose()


BAD_LAYERS = {
    "duplicate field": ("extends:\n  widget:\n    add_fields:\n      name: {type: text}\n", "name"),
    "SQL keyword": ("extends:\n  widget:\n    add_fields:\n      order: {type: text}\n", "order"),
    "reserved name": ("extends:\n  widget:\n    add_fields:\n      created_at: {type: text}\n", "created_at"),
    "missing formula field": ("extends:\n  widget:\n    add_fields:\n"
                              "      doubled: {type: computed, formula: \"count * nope\", result: integer}\n", "nope"),
}


@pytest.mark.parametrize("case", BAD_LAYERS)
def test_a_bad_layer_is_refused_with_the_resolvers_problem_and_nothing_applied(world, case):
    engine, _, _ = world
    text, named = BAD_LAYERS[case]
    before = _version(engine)
    with pytest.raises(PackError) as refused:
        admin_layer.apply_layer(engine, text, "alice")
    shown = [p.format() for p in refused.value.problems]
    assert any(line.startswith("admin_layer/layer.yaml:") and named in line for line in shown), shown
    assert _version(engine) == before
    with engine.connect() as conn:
        assert admin_layer.current_layer(conn).empty and admin_layer.history(conn) == []


def test_a_pack_installed_later_comes_before_the_layer(world):
    engine, _, _ = world
    admin_layer.apply_layer(engine, HIDE_NOTES, "alice")
    apply(engine, plan_packs(engine, [TEST_PACKS / "chores"], "install"))
    with engine.connect() as conn:
        assert admin_layer.current_layer(conn).depends == ("chores", "mini")
    assert admin_layer.plan_layer(engine, HIDE_NOTES).empty  # as if the layer were applied now
    layered = HIDE_NOTES + "  chore:\n    hide_fields: [due_on]\n"
    admin_layer.apply_layer(engine, layered, "alice")
    with engine.connect() as conn:
        chore = load_catalog(conn).metadata.entities["chore"]
    assert next(f for f in chore.fields if f.name == "due_on").hidden
