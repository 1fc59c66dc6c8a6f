"""Each process caches the catalog per metadata version and notices a newer one recorded by
another process: two app instances on one database, one upgrade between requests."""

from __future__ import annotations

from api.conftest import install, signed_in
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.web.app import create_app
from packwork.web.services import services


def _fields(app, headers) -> set[str]:
    response = app.test_client().get("/api/v1/meta/widget", headers=headers)
    assert response.status_code == 200, response.json
    return {f["name"] for f in response.json["fields"]}


def test_two_apps_pick_up_an_upgrade_and_otherwise_reuse_their_catalog(db_url, pack_copy):
    pack = pack_copy("mini")
    engine = install(db_url, pack)
    headers = {"Authorization": f"Bearer {signed_in(engine, 'ann', ['keeper'])}"}
    first, second = create_app(db_url), create_app(db_url)
    assert "serial" not in _fields(first, headers) | _fields(second, headers)
    cached = services(first).catalogs.current_catalog
    _fields(first, headers)
    assert services(first).catalogs.current_catalog is cached  # same version: nothing rebuilt

    entities = pack / "entities.yaml"
    entities.write_text(entities.read_text().replace(
        "      notes: {type: long_text}\n", "      notes: {type: long_text}\n      serial: {type: text}\n"))
    apply(engine, plan_packs(engine, [pack], "upgrade"))

    assert "serial" in _fields(first, headers) and "serial" in _fields(second, headers)
    assert services(first).catalogs.current_catalog is not cached
    created = second.test_client().post("/api/v1/widget", json={"name": "w", "serial": "S-1"}, headers=headers)
    assert created.status_code == 201 and created.json["serial"] == "S-1"
    for app in (first, second):
        services(app).engine.dispose()
    engine.dispose()
