"""The three industry packs installed together on one standard CRM, on SQLite and PostgreSQL: they
are installed one after another (as a customer adds verticals over time), every pack's rule
tests still pass over the combined metadata, each pack's entities, fields and roles are there
as that pack declares them, and records of each vertical are created and read through the API
side by side. (Packs that do conflict are refused with both places named:
tests/metadata/test_conflicts.py.)"""

from __future__ import annotations

import pytest

from api.conftest import install, signed_in
from conftest import PACKS, fresh_database
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.rules.testing import run_pack_tests
from packwork.runtime.catalog import load_catalog
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.web.app import create_app
from packwork.web.services import services

VERTICALS = ("manufacturing", "education", "real_estate")


def _alone(name: str):
    """The metadata of standard_crm and one vertical, as if it were the only one installed."""
    sources, problems = read_pack_folders([PACKS / "standard_crm", PACKS / "industry" / name])
    assert not problems, problems
    return resolve_sources(sources)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crm(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")
        for name in VERTICALS:
            apply(engine, plan_packs(engine, [PACKS / "industry" / name], "install"))
        app = create_app(url)
        secret = signed_in(engine, "root", ["system_admin"])
        with engine.connect() as conn:
            metadata = load_catalog(conn).metadata
        yield metadata, app.test_client(), {"Authorization": f"Bearer {secret}"}
        services(app).engine.dispose()
        engine.dispose()


def test_every_pack_is_installed_with_what_it_declares(crm):
    metadata, _, _ = crm
    assert {p.name for p in metadata.packs} == {"standard_crm", *VERTICALS}
    for name in VERTICALS:
        alone = _alone(name)
        assert set(alone.roles) <= set(metadata.roles), name
        assert set(alone.reports) <= set(metadata.reports), name
        for entity in alone.entities.values():  # its own entities, and what it adds to standard ones
            fields = {f.name: f for f in metadata.entities[entity.name].fields}
            for field in entity.fields:
                assert field.name in fields and fields[field.name].type == field.type, (name, entity.name, field.name)


def test_every_packs_rule_tests_pass_over_the_combined_metadata(crm):
    metadata, _, _ = crm
    outcomes = run_pack_tests(metadata)
    failed = [o.describe() for o in outcomes if o.problem is not None]
    assert not failed, "\n".join(failed)
    tested = {o.describe().split(":")[0] for o in outcomes}
    assert all(any(path.startswith(f"{name}/") for path in tested) for name in VERTICALS), sorted(tested)


def _made(client, headers: dict, metadata, entity: str, **values) -> dict:
    """A record with `values` and whatever else is required (texts, choices, and referenced
    records made the same way), created through the API."""
    body = dict(values)
    for field in metadata.entities[entity].fields:
        if not field.required or field.name in body or field.default is not None:
            continue
        if field.value_type == "reference":
            body[field.name] = _made(client, headers, metadata, field.target)["id"]
        elif field.value_type == "text":
            body[field.name] = f"{entity} {field.name} {len(body)}"
        elif field.choices:
            body[field.name] = field.choices[0].value
    made = client.post(f"/api/v1/{entity}", json=body, headers=headers)
    assert made.status_code == 201, (entity, made.json)
    return made.json


@pytest.mark.parametrize("entity, values", [
    ("equipment", {"serial_no": "SN-0001"}),
    ("course", {}),
    ("property_project", {}),
])
def test_records_of_each_vertical_are_made_side_by_side(crm, entity, values):
    metadata, client, headers = crm
    made = _made(client, headers, metadata, entity, **values)
    listed = client.get(f"/api/v1/{entity}", headers=headers).json["data"]
    assert [r["id"] for r in listed] == [made["id"]]
    assert client.get(f"/api/v1/meta/{entity}", headers=headers).status_code == 200
