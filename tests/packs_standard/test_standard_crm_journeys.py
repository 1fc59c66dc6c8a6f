"""The standard CRM's main journeys, scripted over the HTTP API as the people who do them, on
SQLite and PostgreSQL (issue 8's first Done-when line):

- a lead from creation through conversion into an account, a contact and an opportunity, with
  a duplicate account refused (nothing created) and then an existing account chosen;
- an opportunity from its first stage to won, refused on the way by a stage's required fields
  and by the won gate; a lost one refused without a loss reason;
- a service ticket through create, assign, handle, feedback and archive, each step refused
  until its required fields are filled, and refused to a rep who may not move tickets;
- an expense claim through the manager's and then finance's approval (refused out of order,
  to its own claimant, and to a role without the stage grant), and one sent back to draft;
- an account returned to the pool by the scheduled rule, then claimed from the pool by another
  rep up to the pool limit, a pack setting."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import PACKS, fresh_database
from journeys import Person, refused
from packwork.runtime import jobs
from packwork.runtime.catalog import load_catalog
from packwork.runtime.settings import set_setting
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services

PEOPLE = {  # username: (role, team)
    "admin": ("system_admin", None),
    "mona": ("sales_manager", "east"),
    "ravi": ("account_manager", "east"),
    "rita": ("account_manager", "east"),
    "sam": ("service_agent", None),
    "fay": ("finance", None),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crm(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")
        app = create_app(url)
        people = {}
        with engine.begin() as conn:
            roles = load_catalog(conn).metadata.roles
            create_team(conn, "east")
            for name, (role, team) in PEOPLE.items():
                user_id = create_user(conn, name, [role], roles, team=team)
                people[name] = Person(app.test_client(), {"Authorization": f"Bearer {create_token(conn, user_id, 'tests')[1]}"},
                                      user_id)
        yield engine, people
        services(app).engine.dispose()
        engine.dispose()


def rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE deleted_at IS NULL")).scalar()


def test_a_lead_is_converted_into_an_account_a_contact_and_an_opportunity(crm):
    engine, people = crm
    ravi = people["ravi"]
    lead = ravi.make("lead", full_name="Wang Fang", company="Hill Foods Ltd", mobile="+86 139 0000 0001",
                     email="wang.fang@hill.example", source="trade_show", industry="retail",
                     estimated_amount="250000.00", assigned_to=ravi.id, status="working")
    assert lead["conversion_status"] == "not_converted"
    offered = ravi.call("GET", f"lead/{lead['id']}/actions")
    assert offered.status_code == 200 and "convert" in [a["name"] for a in offered.json["data"]]

    converted = ravi.act("lead", lead, "convert", {"close_date": "2027-03-31"})
    assert converted.status_code == 200, converted.json
    after = converted.json["record"]
    assert after["conversion_status"] == "converted" and after["status"] == "qualified"
    assert after["converted_at"] is not None
    account = ravi.read("account", after["converted_account"])
    contact = ravi.read("contact", after["converted_contact"])
    deal = ravi.read("opportunity", after["converted_opportunity"])
    assert account["name"] == "Hill Foods Ltd" and account["owner_id"] == ravi.id and account["industry"] == "retail"
    assert (contact["full_name"], contact["account"], contact["mobile"]) == ("Wang Fang", account["id"], "+86 139 0000 0001")
    assert (deal["account"], deal["primary_contact"], deal["source_lead"]) == (account["id"], contact["id"], lead["id"])
    assert (deal["stage"], deal["probability"], deal["amount"], deal["close_date"]) == ("qualify", "10.00", "250000.00", "2027-03-31")
    assert sorted(c["entity"] for c in converted.json["created"]) == ["account", "contact", "opportunity"]

    again = ravi.act("lead", after, "convert")
    assert again.status_code == 409, again.json  # the condition: converted leads are not offered it

    # A second lead from the same company: its account would be a duplicate, so nothing is made.
    twin = ravi.make("lead", full_name="Li Lei", company="Hill Foods Ltd", email="li.lei@hill.example",
                     assigned_to=ravi.id)
    before = {t: rows(engine, t) for t in ("account", "contact", "opportunity")}
    refused(ravi.act("lead", twin, "convert"), 422, "company")
    assert {t: rows(engine, t) for t in before} == before
    assert ravi.read("lead", twin["id"])["conversion_status"] == "not_converted"
    # ... and a contact with the same e-mail is a duplicate too, even with the account chosen.
    clash = ravi.make("lead", full_name="W. Fang", company="Hill Foods Ltd", email="wang.fang@hill.example")
    refused(ravi.act("lead", clash, "convert", {"account": account["id"]}), 422, "email")
    assert {t: rows(engine, t) for t in before} == before

    chosen = ravi.act("lead", twin, "convert", {"account": account["id"]})
    assert chosen.status_code == 200, chosen.json
    assert chosen.json["record"]["converted_account"] == account["id"]
    assert {t: rows(engine, t) - before[t] for t in before} == {"account": 0, "contact": 1, "opportunity": 1}

    # The conversion fields are the action's to write: the rep cannot set them by hand.
    refused(ravi.change("lead", ravi.read("lead", clash["id"]), conversion_status="converted"), 403, "conversion_status")


def test_an_opportunity_goes_from_its_first_stage_to_won_past_its_gates(crm):
    engine, people = crm
    ravi = people["ravi"]
    account = ravi.make("account", name="Pine Logistics")
    contact = ravi.make("contact", full_name="Zhou Min", account=account["id"])
    deal = ravi.make("opportunity", name="Pine: fleet tracking", account=account["id"], stage="qualify")
    assert (deal["probability"], deal["forecast_category"]) == ("10.00", "pipeline")

    moved = ravi.change("opportunity", deal, stage="needs_analysis")
    assert moved.status_code == 200, moved.json
    deal = moved.json
    # Proposal needs an amount and a close date: refused, nothing changes.
    refused(ravi.change("opportunity", deal, stage="proposal"), 422, "amount")
    assert ravi.read("opportunity", deal["id"])["stage"] == "needs_analysis"
    deal = ravi.change("opportunity", deal, stage="proposal", amount="0.00", close_date="2027-01-31").json
    assert (deal["stage"], deal["probability"], deal["forecast_category"]) == ("proposal", "50.00", "best_case")
    deal = ravi.change("opportunity", deal, stage="negotiation", primary_contact=contact["id"]).json
    assert deal["expected_revenue"] == "0.00" and deal["forecast_category"] == "commit"
    # The won gate: a won opportunity needs an amount.
    refused(ravi.change("opportunity", deal, stage="won"), 422, "amount")
    assert ravi.read("opportunity", deal["id"])["stage"] == "negotiation"
    deal = ravi.change("opportunity", deal, amount="480000.00").json
    assert deal["expected_revenue"] == "360000.00"  # 75% of it, stored
    won = ravi.change("opportunity", deal, stage="won")
    assert won.status_code == 200, won.json
    assert (won.json["stage"], won.json["probability"], won.json["forecast_category"]) == ("won", "100.00", "closed")
    assert won.json["expected_revenue"] == "480000.00"

    lost = ravi.make("opportunity", name="Pine: spare parts", account=account["id"], stage="qualify")
    refused(ravi.change("opportunity", lost, stage="lost"), 422, "loss_reason")
    lost = ravi.change("opportunity", lost, stage="lost", loss_reason="competitor")
    assert lost.status_code == 200 and (lost.json["probability"], lost.json["forecast_category"]) == ("0.00", "omitted")


def test_a_ticket_goes_through_its_whole_lifecycle(crm):
    engine, people = crm
    sam, ravi, admin = people["sam"], people["ravi"], people["admin"]
    account = admin.make("account", name="Oak Clinics")
    ticket = sam.make("ticket", subject="Printer jams daily", account=account["id"], channel="phone")
    assert ticket["status"] == "created" and ticket["opened_on"] == date.today().isoformat()

    refused(sam.change("ticket", ticket, status="assigned", assignee=sam.id), 422, "category")
    ticket = sam.change("ticket", ticket, status="assigned", assignee=sam.id, category="fault").json
    assert ticket["assigned_at"] is not None
    refused(sam.change("ticket", ticket, status="handling"), 422, "handling_notes")
    ticket = sam.change("ticket", ticket, status="handling", handling_notes="Replaced the roller").json
    refused(sam.change("ticket", ticket, status="feedback"), 422, "resolution")
    ticket = sam.change("ticket", ticket, status="feedback", resolution="Roller replaced, tested 50 pages").json
    assert ticket["resolved_at"] is not None and ticket["resolved_on"] == date.today().isoformat()
    refused(sam.change("ticket", ticket, status="archived"), 422, "satisfaction")
    ticket = sam.change("ticket", ticket, status="archived", satisfaction="satisfied", feedback="Quick fix").json
    assert ticket["status"] == "archived" and ticket["archived_at"] is not None
    assert ticket["days_to_resolve"] == 0

    # An account manager may raise a ticket but not move it along the service lifecycle.
    own = ravi.make("ticket", subject="Invoice question", category="question", assignee=ravi.id)
    assert ravi.change("ticket", own, status="assigned").status_code == 403
    assert ravi.read("ticket", own["id"])["status"] == "created"


def test_an_expense_claim_goes_through_two_approvals(crm):
    engine, people = crm
    ravi, mona, fay, rita = people["ravi"], people["mona"], people["fay"], people["rita"]
    claim = ravi.make("expense_claim", title="Client visit, Suzhou", category="travel", amount="1280.00",
                      expense_date=date.today().isoformat(), receipts=3)
    assert claim["approval"] == "draft"
    assert ravi.change("expense_claim", claim, approval="manager_approved").status_code == 403  # not the rep's step
    claim = ravi.change("expense_claim", claim, approval="submitted").json
    assert claim["submitted_at"] is not None

    claim = mona.read("expense_claim", claim["id"])  # the rep's manager sees it through her team
    refused(mona.change("expense_claim", claim, approval="finance_approved"), 403, "approval")
    approved = mona.change("expense_claim", claim, approval="manager_approved")
    assert approved.status_code == 200, approved.json
    assert approved.json["manager_approver"] == mona.id and approved.json["manager_approved_at"] is not None
    assert rita.call("GET", f"expense_claim/{claim['id']}").status_code == 404  # another rep's claim

    paid = fay.change("expense_claim", fay.read("expense_claim", claim["id"]), approval="finance_approved")
    assert paid.status_code == 200, paid.json
    assert (paid.json["approval"], paid.json["finance_approver"]) == ("finance_approved", fay.id)
    assert paid.json["paid_on"] == date.today().isoformat()

    # Finance cannot skip the manager; a manager cannot approve her own claim; a claim sent
    # back needs a reason and starts its trail again.
    skipped = ravi.make("expense_claim", title="Taxi", category="transport", amount="86.00",
                        expense_date=date.today().isoformat(), approval="submitted")
    refused(fay.change("expense_claim", fay.read("expense_claim", skipped["id"]), approval="finance_approved"), 422, "approval")
    hers = mona.make("expense_claim", title="Team dinner", category="meals", amount="640.00",
                     expense_date=date.today().isoformat(), approval="submitted")
    refused(mona.change("expense_claim", hers, approval="manager_approved"), 422, "approval")
    skipped = mona.read("expense_claim", skipped["id"])
    refused(mona.change("expense_claim", skipped, approval="draft"), 422, "reject_reason")
    back = mona.change("expense_claim", skipped, approval="draft", reject_reason="Attach the receipt")
    assert back.status_code == 200 and back.json["submitted_at"] is None


def test_an_idle_account_returns_to_the_pool_and_is_claimed_from_it(crm):
    engine, people = crm
    ravi, rita, admin = people["ravi"], people["rita"], people["admin"]
    idle_since = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat()
    idle = ravi.make("account", name="Quiet Harbour Co", last_follow_up_at=idle_since)
    visited = ravi.make("account", name="Busy Port Co", last_follow_up_at=idle_since)
    recent = (datetime.now(timezone.utc) - timedelta(days=5)).replace(microsecond=0)
    ravi.make("follow_up", subject="Quarterly review", account=visited["id"], visited_at=recent.isoformat())
    assert rita.call("GET", f"account/{idle['id']}").status_code == 404  # ravi's, not in the pool

    with engine.connect() as conn:
        catalog = load_catalog(conn)
    rule = next(r for r in catalog.metadata.rules if r.name == "return_idle_accounts_to_pool")
    report = jobs.run_rule(engine, catalog, rule, datetime.now(timezone.utc))
    assert report.error is None and report.refused == 0

    pooled = admin.read("account", idle["id"])
    assert pooled["owner_id"] is None and pooled["pool_reason"] == "no_follow_up"
    assert pooled["returned_to_pool_at"] is not None
    kept = admin.read("account", visited["id"])
    assert kept["owner_id"] == ravi.id and kept["last_follow_up_at"].startswith(recent.date().isoformat())

    listed = rita.call("GET", "account", query={"filter": "owner_id is null", "count": "true"})
    assert idle["id"] in [r["id"] for r in listed.json["data"]]
    assert rita.call("PATCH", f"account/{idle['id']}", {"owner_id": ravi.id},
                     version=pooled["version"]).status_code == 403  # reps claim for themselves only

    # The pool limit is a setting: at rita's current holding, a claim is refused.
    held = rita.call("GET", "account", query={"filter": f"owner_id = {rita.id}", "count": "true"}).json["count"]
    with engine.begin() as conn:
        set_setting(conn, catalog.metadata, "pool_claim_limit", str(held), datetime.now(timezone.utc))
    refused(rita.act("account", pooled, "claim"), 422, "owner_id")
    assert admin.read("account", idle["id"])["owner_id"] is None
    with engine.begin() as conn:
        set_setting(conn, catalog.metadata, "pool_claim_limit", str(held + 1), datetime.now(timezone.utc))
    claimed = rita.act("account", pooled, "claim")
    assert claimed.status_code == 200, claimed.json
    assert claimed.json["record"]["owner_id"] == rita.id and claimed.json["record"]["pool_reason"] is None
    assert rita.act("account", claimed.json["record"], "claim").status_code == 409  # no longer in the pool

    released = rita.act("account", claimed.json["record"], "release")
    assert released.status_code == 200 and released.json["record"]["owner_id"] is None
    assert released.json["record"]["pool_reason"] == "released"
