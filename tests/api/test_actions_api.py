"""Pack actions and settings through the API, on SQLite and PostgreSQL, on the `actions` test
pack: converting a prospect into a customer, a person and a deal in one transaction (duplicates
refused with nothing created, or an existing customer chosen), claiming from the pool up to a
limit that is a pack setting (changed in the database, it takes effect at once), the narrow
elevation an action declares (`writes`) and what it does not allow, permission refusals,
version checks, and a scheduled rule whose filter reads a setting."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime import jobs
from packwork.runtime.catalog import load_catalog
from packwork.runtime.settings import set_setting, unset_setting
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services

PACK = TEST_PACKS / "actions"
USERS = {"ria": "rep", "rob": "rep", "wes": "watcher", "bea": "boss"}


class Client:
    def __init__(self, app, secret: str, user_id: int):
        self.client, self.headers, self.id = app.test_client(), {"Authorization": f"Bearer {secret}"}, user_id

    def post(self, path: str, body: dict | None = None, headers: dict | None = None):
        return self.client.post(f"/api/v1/{path}", json=body, headers=self.headers | (headers or {}))

    def get(self, path: str):
        return self.client.get(f"/api/v1/{path}", headers=self.headers)

    def make(self, entity: str, **values) -> dict:
        made = self.post(entity, values)
        assert made.status_code == 201, made.json
        return made.json

    def act(self, record: dict, action: str, inputs: dict | None = None, version: int | None = None):
        body = {"version": record["version"] if version is None else version}
        if inputs is not None:
            body["inputs"] = inputs
        return self.post(f"prospect/{record['id']}/actions/{action}", body)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACK)
        app = create_app(url)
        clients = {}
        with engine.begin() as conn:
            for name, role in USERS.items():
                user_id = create_user(conn, name, [role], [role])
                clients[name] = Client(app, create_token(conn, user_id, "tests")[1], user_id)
        yield engine, clients
        services(app).engine.dispose()
        engine.dispose()


def count(engine, table: str, where: str = "1 = 1", **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar()


def setting(engine, name: str, value: str | None) -> None:
    with engine.begin() as conn:
        metadata = load_catalog(conn).metadata
        if value is None:
            unset_setting(conn, metadata, name)
        else:
            set_setting(conn, metadata, name, value, datetime.now(timezone.utc))


def test_converting_creates_three_linked_records_in_one_go(world):
    engine, users = world
    ria = users["ria"]
    prospect = ria.make("prospect", name="Ann Lee", company="Lee Tools", email="ann@lee.example", phone="+1 555")
    done = ria.act(prospect, "convert", {"amount": "2500.00"})
    assert done.status_code == 200, done.json
    record, created = done.json["record"], done.json["created"]
    assert [c["entity"] for c in created] == ["customer", "person", "deal"]
    ids = {c["entity"]: c["id"] for c in created}
    assert record["status"] == "converted" and record["version"] == prospect["version"] + 1
    assert (record["converted_customer"], record["converted_person"], record["converted_deal"]) == \
        (ids["customer"], ids["person"], ids["deal"])
    assert done.headers["ETag"] == f'"{record["version"]}"'
    person = ria.get(f"person/{ids['person']}").json
    assert (person["name"], person["email"], person["customer"]) == ("Ann Lee", "ann@lee.example", ids["customer"])
    deal = ria.get(f"deal/{ids['deal']}").json
    assert (deal["name"], deal["amount"], deal["customer"], deal["owner_id"]) == \
        ("Lee Tools deal", "2500.00", ids["customer"], ria.id)
    history = ria.get(f"prospect/{prospect['id']}/history").json["data"]
    assert history[0]["action"] == "update" and history[0]["actor_id"] == ria.id
    assert history[0]["changes"]["converted_deal"] == [None, ids["deal"]]
    assert ria.get(f"customer/{ids['customer']}/history").json["data"][0]["action"] == "create"
    # converted: the action is no longer offered, and running it anyway is refused
    assert "convert" not in [a["name"] for a in ria.get(f"prospect/{prospect['id']}/actions").json["data"]]
    again = ria.act(record, "convert")
    assert again.status_code == 409 and again.json["errors"]["_action"]


def test_a_duplicate_customer_is_refused_naming_it_and_nothing_is_created(world):
    engine, users = world
    ria = users["ria"]
    twin = ria.make("customer", name="Twin Co")
    prospect = ria.make("prospect", name="Tom", company="Twin Co")
    before = [count(engine, t) for t in ("customer", "person", "deal")]
    refused = ria.act(prospect, "convert")
    assert refused.status_code == 422
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json["errors"] == {"company": [f"customer {twin['id']} is already named Twin Co; "
                                                  "choose it as the existing customer"]}
    assert [count(engine, t) for t in ("customer", "person", "deal")] == before
    assert ria.get(f"prospect/{prospect['id']}").json["version"] == prospect["version"]
    # the user chooses the existing customer instead
    done = ria.act(prospect, "convert", {"customer": twin["id"], "deal_name": "Twin renewal"})
    assert done.status_code == 200, done.json
    assert [c["entity"] for c in done.json["created"]] == ["person", "deal"]
    assert done.json["record"]["converted_customer"] == twin["id"]
    assert count(engine, "customer") == before[0]


def test_a_refusal_after_records_were_created_rolls_them_back(world):
    engine, users = world
    ria = users["ria"]
    ria.make("person", name="Pat", email="pat@twin.example")
    prospect = ria.make("prospect", name="Pat Again", company="Fresh Co", email="pat@twin.example")
    refused = ria.act(prospect, "convert")
    assert refused.status_code == 422 and list(refused.json["errors"]) == ["email"]
    assert "already has this e-mail" in refused.json["errors"]["email"][0]
    assert count(engine, "customer", "name = :n", n="Fresh Co") == 0  # created by the action, then rolled back
    # a validation of a created record (reading a setting) refuses the whole action too
    setting(engine, "max_deal_amount", "100")
    try:
        other = ria.make("prospect", name="Big", company="Big Co")
        refused = ria.act(other, "convert", {"amount": "500"})
        assert refused.status_code == 422 and refused.json["errors"] == {"amount": ["must be at most 100"]}
        assert count(engine, "customer", "name = :n", n="Big Co") == 0
    finally:
        setting(engine, "max_deal_amount", None)


def test_version_is_required_and_checked(world):
    engine, users = world
    ria = users["ria"]
    prospect = ria.make("prospect", name="Vera")
    missing = ria.post(f"prospect/{prospect['id']}/actions/convert", {})
    assert missing.status_code == 428
    stale = ria.act(prospect, "convert", version=prospect["version"] + 5)
    assert stale.status_code == 409 and "version" in stale.json["errors"]
    by_header = ria.post(f"prospect/{prospect['id']}/actions/convert", None,
                         headers={"If-Match": f'"{prospect["version"]}"'})
    assert by_header.status_code == 200, by_header.json
    assert count(engine, "prospect", "id = :i AND status = 'converted'", i=prospect["id"]) == 1


def test_bad_requests_are_named(world):
    engine, users = world
    ria = users["ria"]
    prospect = ria.make("prospect", name="Bad")
    assert ria.act(prospect, "nonsense").status_code == 404
    unknown = ria.act(prospect, "convert", {"colour": "red"})
    assert unknown.status_code == 400 and "colour" in unknown.json["errors"]
    wrong = ria.act(prospect, "convert", {"amount": "lots"})
    assert wrong.status_code == 422 and "amount" in wrong.json["errors"]
    nothing = ria.act(prospect, "convert", {"customer": 999999})
    assert nothing.status_code == 422 and nothing.json["errors"] == {"customer": ["there is no customer 999999"]}
    assert ria.post(f"prospect/{prospect['id']}/actions/convert", ["x"]).status_code == 400
    assert count(engine, "prospect", "id = :i AND status = 'new'", i=prospect["id"]) == 1


def test_claiming_from_the_pool_up_to_the_limit_the_setting_gives(world):
    engine, users = world
    bea, rob, ria = users["bea"], users["rob"], users["ria"]
    pool = [bea.make("prospect", name=f"Pooled {n}", owner_id=None) for n in range(4)]
    assert all(p["owner_id"] is None for p in pool)
    offered = [a["name"] for a in rob.get(f"prospect/{pool[0]['id']}/actions").json["data"]]
    assert "claim" in offered and "release" not in offered
    for record in pool[:2]:
        claimed = rob.act(record, "claim")
        assert claimed.status_code == 200, claimed.json
        assert claimed.json["record"]["owner_id"] == rob.id and claimed.json["created"] == []
    refused = rob.act(pool[2], "claim")
    assert refused.status_code == 422
    assert refused.json["errors"] == {"owner_id": [
        "you already hold 2 prospects, the most one may claim from the pool (2)"]}
    assert count(engine, "prospect", "id = :i AND owner_id IS NULL", i=pool[2]["id"]) == 1
    setting(engine, "pool_claim_limit", "3")  # an administrator raises the limit: it holds at once
    try:
        assert rob.act(pool[2], "claim").status_code == 200
        assert rob.act(pool[3], "claim").status_code == 422
    finally:
        setting(engine, "pool_claim_limit", None)
    history = rob.get(f"prospect/{pool[0]['id']}/history").json["data"]
    assert history[0]["changes"]["owner_id"] == [None, rob.id] and history[0]["actor_id"] == rob.id
    # a claimed record has left the pool: another rep no longer sees it, its owner cannot claim it again
    assert ria.act(pool[0] | {"version": 2}, "claim").status_code == 404
    again = rob.act(pool[0] | {"version": 2}, "claim")
    assert again.status_code == 409 and again.json["errors"]["_action"] == ["needs owner_id is null"]
    # releasing returns it to the pool (owner_id may become nobody, as declared)
    released = rob.act(pool[0] | {"version": 2}, "release")
    assert released.status_code == 200 and released.json["record"]["owner_id"] is None


def test_a_record_outside_the_pool_cannot_be_claimed(world):
    engine, users = world
    ria, rob = users["ria"], users["rob"]
    mine = ria.make("prospect", name="Ria's own")
    assert rob.act(mine, "claim").status_code == 404  # rob may not read it: as if it did not exist
    refused = ria.act(mine, "claim")
    assert refused.status_code == 409 and "claim" not in [
        a["name"] for a in ria.get(f"prospect/{mine['id']}/actions").json["data"]]


def test_an_action_writes_only_what_it_declares(world):
    engine, users = world
    ria, bea, rob = users["ria"], users["bea"], users["rob"]
    mine = ria.make("prospect", name="Guarded")
    # `rate` sets rating, read-only for a rep, without declaring it: refused, nothing changed
    refused = ria.act(mine, "rate")
    assert refused.status_code == 403 and "rating" in refused.json["errors"]
    assert count(engine, "prospect", "id = :i AND rating IS NULL", i=mine["id"]) == 1
    # `hand_over` declares owner_id, which lets it claim or release, not give the record away
    given = ria.act(mine, "hand_over", {"new_owner": rob.id})
    assert given.status_code == 403
    assert count(engine, "prospect", "id = :i AND owner_id = :o", i=mine["id"], o=ria.id) == 1
    # the boss may write both: the role's own grants (update rating, transfer) are enough
    boss_copy = bea.get(f"prospect/{mine['id']}").json
    rated = bea.act(boss_copy, "rate")
    assert rated.status_code == 200 and rated.json["record"]["rating"] == 5
    handed = bea.act(rated.json["record"], "hand_over", {"new_owner": rob.id})
    assert handed.status_code == 200 and handed.json["record"]["owner_id"] == rob.id


def test_permissions_decide_who_may_run_an_action(world):
    engine, users = world
    ria, wes, bea = users["ria"], users["wes"], users["bea"]
    mine = ria.make("prospect", name="Watched")
    assert wes.get(f"prospect/{mine['id']}").status_code == 200
    assert wes.get(f"prospect/{mine['id']}/actions").json["data"] == []
    assert wes.act(mine, "convert").status_code == 403  # may read, may not update
    assert wes.get("meta/prospect").json["actions"] == []
    # `escalate` is for the boss role only (grant read)
    assert ria.act(mine, "escalate").status_code == 403
    escalated = bea.act(mine, "escalate")
    assert escalated.status_code == 200 and escalated.json["record"]["rating"] == 9
    described = {a["name"]: a for a in ria.get("meta/prospect").json["actions"]}
    assert "escalate" not in described and described["convert"]["label"] == {"en": "Convert", "zh": "转换"}
    assert [i["name"] for i in described["convert"]["inputs"]] == ["customer", "deal_name", "amount"]
    assert described["claim"]["condition"] == "owner_id is null"


def test_the_openapi_document_describes_actions(world):
    engine, users = world
    spec = users["ria"].client.get("/api/v1/openapi.json").json
    post = spec["paths"]["/api/v1/prospect/{id}/actions/convert"]["post"]
    inputs = post["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    assert set(inputs["properties"]) == {"customer", "deal_name", "amount"}
    assert {"200", "409", "422", "428"} <= set(post["responses"])
    assert "get" in spec["paths"]["/api/v1/prospect/{id}/actions"]


def test_a_scheduled_rule_filter_reads_a_setting(world):
    engine, users = world
    ria = users["ria"]
    stale_day = (date.today() - timedelta(days=40)).isoformat()
    old = ria.make("prospect", name="Forgotten", last_contact_on=stale_day)
    with engine.connect() as conn:
        catalog = load_catalog(conn)
    rule = next(r for r in catalog.metadata.rules if r.name == "return_to_pool")
    setting(engine, "pool_return_days", "60")  # 40 days is not yet too long
    try:
        jobs.run_rule(engine, catalog, rule, datetime.now(timezone.utc))
        assert count(engine, "prospect", "id = :i AND owner_id = :o", i=old["id"], o=ria.id) == 1
    finally:
        setting(engine, "pool_return_days", None)  # back to 30: now it is
    report = jobs.run_rule(engine, catalog, rule, datetime.now(timezone.utc))
    assert report.error is None and report.changed >= 1
    assert count(engine, "prospect", "id = :i AND owner_id IS NULL", i=old["id"]) == 1
