"""Fields a pack keeps for its rules: a trigger sets `read_only: true` and `hidden: true` fields
(the pack format says rules may), while a client writing them is refused; and stored datetimes
reach rule code with their UTC offset; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from api.conftest import install, signed_in
from conftest import TEST_PACKS, fresh_database
from packwork.web.app import create_app
from packwork.web.services import services


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "stamps")
        headers = {"Authorization": f"Bearer {signed_in(engine, 'pat', ['admin'])}"}
        app = create_app(url)
        yield app.test_client(), headers, engine
        services(app).engine.dispose()
        engine.dispose()


def test_a_trigger_sets_fields_no_user_may_write(api):
    client, headers, engine = api
    made = client.post("/api/v1/parcel", json={"name": "crate", "weight": "12.5"}, headers=headers)
    assert made.status_code == 201, made.json
    assert (made.json["stamped_on"], made.json["stamp_code"], made.json["heavy"]) == (
        date.today().isoformat(), "P-CRATE", True)
    assert "sorting_key" not in made.json  # hidden: stored, never shown
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sorting_key FROM parcel WHERE id = :i"), {"i": made.json["id"]}).scalar() == 5
    changed = client.patch(f"/api/v1/parcel/{made.json['id']}", json={"name": "box", "weight": "2"},
                           headers=headers | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.json
    assert (changed.json["stamp_code"], changed.json["heavy"]) == ("P-BOX", False)


@pytest.mark.parametrize("field, value", [("stamp_code", "FORGED"), ("heavy", True), ("sorting_key", 1)])
def test_a_client_may_not_write_them(api, field, value):
    client, headers, _ = api
    refused = client.post("/api/v1/parcel", json={"name": "forged", field: value}, headers=headers)
    assert refused.status_code == 400, refused.json
    assert field in refused.json["errors"]


def test_a_stored_datetime_compares_with_now_in_rule_code(api):
    """SQLite stores datetimes without their offset: rule code still gets them in UTC, so an
    update that leaves the stored one alone can compare it with now()."""
    client, headers, _ = api
    made = client.post("/api/v1/parcel", json={"name": "late", "due_at": "2020-01-01T09:00:00Z"}, headers=headers)
    assert made.status_code == 201, made.json
    changed = client.patch(f"/api/v1/parcel/{made.json['id']}", json={"weight": "1"},
                           headers=headers | {"If-Match": '"1"'})
    assert changed.status_code == 200, changed.json
    assert changed.json["overdue"] is True


def test_a_rule_may_not_blank_a_required_field(api):
    client, headers, engine = api
    made = client.post("/api/v1/parcel", json={"name": "keep"}, headers=headers)
    refused = client.patch(f"/api/v1/parcel/{made.json['id']}", json={"weight": "-1"},
                           headers=headers | {"If-Match": '"1"'})
    assert refused.status_code == 422 and refused.json["errors"] == {"name": ["is required"]}, refused.json
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name, version FROM parcel WHERE id = :i"),
                            {"i": made.json["id"]}).one() == ("keep", 1)
