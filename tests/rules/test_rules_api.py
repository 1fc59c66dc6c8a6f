"""Pack rules end to end through the API, on SQLite and PostgreSQL: validation, computed fields,
triggers, stage gates, scheduled rules, the `query` and `create` callbacks, and a broken rule
reported with its file and line. The standard CRM's opportunity rules and the custom `mini` pack's widget rules
run through the same engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from api.conftest import install, signed_in
from conftest import PACKS, TEST_PACKS, fresh_database
from packwork.runtime import jobs
from packwork.web.app import create_app
from packwork.web.services import services


class Client:
    def __init__(self, app, secret: str, engine: sa.Engine | None = None):
        self.client, self.headers = app.test_client(), {"Authorization": f"Bearer {secret}"}
        self.engine = engine

    def post(self, path: str, body: dict):
        return self.client.post(f"/api/v1/{path}", json=body, headers=self.headers)

    def patch(self, path: str, body: dict, version: int):
        return self.client.patch(f"/api/v1/{path}", json=body, headers=self.headers | {"If-Match": f'"{version}"'})

    def get(self, path: str):
        return self.client.get(f"/api/v1/{path}", headers=self.headers)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """Both packs' worlds on one database: {pack: client}."""
    kind = request.param
    clients, engines = {}, []
    for pack, folder, role in (("standard_crm", PACKS / "standard_crm", "system_admin"),
                               ("mini", TEST_PACKS / "mini", "keeper")):
        context = fresh_database(kind, tmp_path_factory.mktemp(f"{kind}-{pack}"), request)
        url = context.__enter__()
        request.addfinalizer(lambda c=context: c.__exit__(None, None, None))
        engine = install(url, folder)
        app = create_app(url)
        clients[pack] = Client(app, signed_in(engine, "ruler", [role]), engine)
        engines += [engine, services(app).engine]
    yield clients
    for engine in engines:
        engine.dispose()


def test_a_validation_rule_refuses_with_the_field_and_its_message(served):
    widgets = served["mini"]
    refused = widgets.post("widget", {"name": "minus", "count": -1})
    assert refused.status_code == 422
    assert refused.json["errors"] == {"count": ["must not be negative"]}
    made = widgets.post("widget", {"name": "plus", "count": 2})
    assert made.status_code == 201
    again = widgets.patch(f"widget/{made.json['id']}", {"count": -5}, made.json["version"])
    assert again.status_code == 422 and again.json["errors"] == {"count": ["must not be negative"]}


def test_a_stored_computed_field_follows_its_inputs(served):
    widgets = served["mini"]
    made = widgets.post("widget", {"name": "priced", "count": 3, "price": "9.99"})
    assert made.status_code == 201 and made.json["total"] == "29.97"
    changed = widgets.patch(f"widget/{made.json['id']}", {"count": 4}, made.json["version"])
    assert changed.status_code == 200 and changed.json["total"] == "39.96"


def test_a_validation_can_query_other_records_with_the_users_permissions(served):
    widgets = served["mini"]
    small = widgets.post("bin", {"label_text": "Small box"}).json["id"]
    big = widgets.post("bin", {"label_text": "Crate"}).json["id"]
    for n in range(2):
        assert widgets.post("widget", {"name": f"in small {n}", "bin": small}).status_code == 201
    full = widgets.post("widget", {"name": "one too many", "bin": small})
    assert full.status_code == 422 and full.json["errors"] == {"bin": ["is full: a small bin holds 2 widgets"]}
    for n in range(3):
        assert widgets.post("widget", {"name": f"in crate {n}", "bin": big}).status_code == 201


def test_triggers_set_fields_and_create_related_records_in_the_same_write(served):
    widgets = served["mini"]
    made = widgets.post("bin", {"label_text": "Loose"})
    assert made.status_code == 201 and made.json["location"] == "unsorted" and made.json["version"] == 1
    kit = widgets.post("widget", {"name": "Camping", "code": "KIT"})
    assert kit.status_code == 201 and kit.json["bin"] is not None
    created = widgets.get(f"bin/{kit.json['bin']}").json
    assert created["label_text"] == "Kit for Camping" and created["location"] == "unsorted"
    history = widgets.get(f"widget/{kit.json['id']}/history").json["data"]
    assert len(history) == 1 and history[0]["changes"]["bin"] == [None, kit.json["bin"]]


def test_stage_gates_and_required_fields_guard_a_stage(served):
    widgets = served["mini"]
    made = widgets.post("widget", {"name": "to ship"}).json
    needs_price = widgets.patch(f"widget/{made['id']}", {"phase": "ready"}, made["version"])
    assert needs_price.status_code == 422
    assert needs_price.json["errors"] == {"price": ["is required to enter stage 'ready'"]}
    refused = widgets.patch(f"widget/{made['id']}", {"phase": "shipped"}, made["version"])
    assert refused.status_code == 422 and refused.json["errors"] == {"weight": ["weigh it before shipping"]}
    shipped = widgets.patch(f"widget/{made['id']}", {"phase": "shipped", "weight": "1.5"}, made["version"])
    assert shipped.status_code == 200 and shipped.json["phase"] == "shipped"


def test_the_standard_crm_opportunity_rules(served):
    crm = served["standard_crm"]
    account = crm.post("account", {"name": "Rules Inc"}).json["id"]
    stages = [s["name"] for s in crm.get("meta/opportunity").json["pipeline"]["stages"]]
    opportunity = crm.post("opportunity", {"name": "Big deal", "account": account, "stage": stages[0]})
    assert opportunity.status_code == 201, opportunity.json
    first = crm.get("meta/opportunity").json["pipeline"]["stages"][0]["probability"]
    assert Decimal(opportunity.json["probability"]) == first  # a trigger on create
    negative = crm.patch(f"opportunity/{opportunity.json['id']}", {"amount": "-1"}, 1)
    assert negative.status_code == 422 and negative.json["errors"] == {"amount": ["must not be negative"]}
    gate = crm.patch(f"opportunity/{opportunity.json['id']}", {"stage": "won"}, 1)
    assert gate.status_code == 422 and gate.json["errors"] == {"amount": ["a won opportunity needs an amount"]}
    won = crm.patch(f"opportunity/{opportunity.json['id']}", {"stage": "won", "amount": "1000"}, 1)
    assert won.status_code == 200, won.json
    assert Decimal(won.json["probability"]) == 100 and Decimal(won.json["expected_revenue"]) == 1000
    assert crm.post("lead", {"full_name": "Rated", "rating": 9}).json["errors"] == {
        "rating": ["must be between 1 and 5"]}


def test_a_computed_field_not_stored_is_evaluated_when_read(served):
    """opportunity.days_to_close = days_between(today(), close_date) has no column: every read
    (one record, a list, an export) evaluates it; it cannot be sorted on."""
    crm = served["standard_crm"]
    account = crm.post("account", {"name": "Soon Ltd"}).json["id"]
    close = (datetime.now(timezone.utc).date() + timedelta(days=10)).isoformat()
    dated = crm.post("opportunity", {"name": "Dated", "account": account, "close_date": close}).json
    undated = crm.post("opportunity", {"name": "Undated", "account": account}).json
    assert dated["days_to_close"] == 10 and undated["days_to_close"] is None
    assert crm.get(f"opportunity/{dated['id']}").json["days_to_close"] == 10
    listed = crm.get(f"opportunity?filter=id%20%3D%20{dated['id']}&fields=name,days_to_close").json["data"]
    assert listed == [{"id": dated["id"], "version": 1, "name": "Dated", "days_to_close": 10}]
    exported = crm.get(f"opportunity/export?filter=id%20%3D%20{dated['id']}").get_data(as_text=True)
    header, row = exported.splitlines()
    assert dict(zip(header.split(","), row.split(",")))["days_to_close"] == "10"
    assert crm.get("opportunity?sort=days_to_close").status_code == 400


def test_scheduled_rules_run_by_the_worker(served):
    """The standard CRM's stale_leads rule and a custom one, run by `jobs.run_due` as the
    worker does: changes go through the record service (audited, validated), a refused record
    is counted and left alone, and a rule is not run again before its interval."""
    crm, widgets = served["standard_crm"], served["mini"]
    month_ago = (datetime.now(timezone.utc) - timedelta(days=60)).isoformat()
    stale = crm.post("lead", {"full_name": "Stale", "status": "working", "last_contacted_at": month_ago}).json
    fresh = crm.post("lead", {"full_name": "Fresh", "status": "working"}).json
    idle = widgets.post("widget", {"name": "idle", "active": False, "count": 5}).json
    stubborn = widgets.post("widget", {"name": "stubborn", "active": False, "count": 5}).json
    busy = widgets.post("widget", {"name": "busy", "active": True, "count": 5}).json

    reports = {r.rule: r for client in (crm, widgets) for r in jobs.run_due(client.engine)}
    assert reports["stale_leads"].changed == 1 and reports["stale_leads"].error is None
    assert crm.get(f"lead/{stale['id']}").json["status"] == "new"
    assert crm.get(f"lead/{fresh['id']}").json["status"] == "working"
    entry = crm.get(f"lead/{stale['id']}/history").json["data"][0]
    assert entry["changes"] == {"status": ["working", "new"]} and entry["actor_id"] is None
    widget_run = reports["idle_widgets_count_nothing"]
    assert (widget_run.visited, widget_run.changed, widget_run.refused) == (2, 1, 1)
    assert "must not be negative" in widget_run.messages[0]
    assert [widgets.get(f"widget/{w['id']}").json["count"] for w in (idle, stubborn, busy)] == [0, 5, 5]
    assert all(not jobs.run_due(client.engine) for client in (crm, widgets))  # daily: not due again
    later = datetime.now(timezone.utc) + timedelta(days=1, minutes=1)
    assert [r.rule for r in jobs.run_due(widgets.engine, later)] == ["idle_widgets_count_nothing"]


def test_a_scheduled_run_that_meets_a_database_error_is_recorded(tmp_path):
    """The worker survives a database error in one rule's run and records it."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = install(url, TEST_PACKS / "mini")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO widget (name, active, count, created_at, updated_at, version) "
                             "VALUES ('idle', 0, 3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)")
        conn.exec_driver_sql("DROP TABLE pw_audit")  # the run's writes will fail
    [report] = jobs.run_due(engine)
    assert report.error.startswith("database error:") and "pw_audit" in report.error
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count FROM widget").scalar() == 3
        assert conn.exec_driver_sql("SELECT error FROM pw_job_run").scalar() == report.error
    engine.dispose()


def test_a_broken_rule_is_a_422_naming_its_file_and_line(request, tmp_path, pack_copy):
    """A rule that divides by zero refuses the write with where it is, and nothing is saved."""
    pack = pack_copy("mini")
    text = (pack / "entities.yaml").read_text()
    text = text.replace("      if record.count is not None and record.count < 0:",
                        "      ratio = 1 / (record.count - record.count)\n"
                        "      if record.count is not None and record.count < 0:")
    (pack / "entities.yaml").write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "ratio = 1 /" in t)
    for kind in ("sqlite", "postgresql"):
        (tmp_path / kind).mkdir()
        with fresh_database(kind, tmp_path / kind, request) as url:
            engine = install(url, pack)
            app = create_app(url)
            client = Client(app, signed_in(engine, "ruler", ["keeper"]))
            broken = client.post("widget", {"name": "boom", "count": 1})
            assert broken.status_code == 422, broken.json
            assert broken.json["code"].startswith("RULE-E") and broken.json["title"] == "A business rule failed"
            assert broken.json["errors"]["_rules"][0].startswith(f"mini/entities.yaml:{line}: count_not_negative:")
            assert "ZeroDivisionError" in broken.json["detail"]
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM widget")).scalar() == 0
            services(app).engine.dispose()
            engine.dispose()
