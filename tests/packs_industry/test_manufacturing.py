"""The manufacturing industry pack (packs/industry/manufacturing) installed on top of the
standard CRM, on SQLite and PostgreSQL, and its main journeys scripted over the HTTP API as the
people who do them:

- the pack installs on a database that already holds standard_crm (new tables, `mfg_` columns
  added to standard tables) and every one of its rule tests passes on the installed metadata;
- the standard fields it hides are gone from the API's metadata and records, their columns stay;
- a dealer is an account of its own record type, refused without a dealer level; a customer
  may only name a dealer account as the one serving it;
- a tender from announced to won: refused by a stage's required fields, by the submitted gate
  (deadline passed, above the ceiling price), and to a rep confirming the win; the tender
  manager confirms it; a tender left past its deadline is lost by the daily rule;
- equipment registered for a customer (serial numbers unique, warranty worked out), a ticket
  raised against it and refused against another customer's machine, and a spare-part order
  from draft to delivered past its gates and stage grants;
- the dashboards of the pack answer as their readers; the pages show each record type's layout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import PACKS, fresh_database
from journeys import Person, refused
from packwork.rules.testing import run_pack_tests
from packwork.runtime import jobs
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.sessions import set_password
from packwork.runtime.settings import set_setting
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

MANUFACTURING = PACKS / "industry" / "manufacturing"

PEOPLE = {  # username: (roles, team)
    "admin": (["system_admin"], None),
    "ravi": (["account_manager"], "east"),
    "tina": (["mfg_tender_manager"], None),
    "dan": (["mfg_dealer_manager"], None),
    "sue": (["mfg_service_manager"], None),
    "sam": (["mfg_service_engineer"], None),
}

TODAY = date.today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@dataclass
class World:
    kind: str
    engine: sa.Engine
    app: object
    people: dict[str, Person]
    catalogs: CatalogCache

    def catalog(self):
        with self.engine.connect() as conn:
            return self.catalogs.current(conn)

    def run_scheduled(self, name: str) -> None:
        catalog = self.catalog()
        rule = next(r for r in catalog.metadata.rules if r.name == name)
        report = jobs.run_rule(self.engine, catalog, rule, datetime.now(timezone.utc))
        assert report.error is None and report.refused == 0, report


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")  # the standard CRM first, as a customer has it
        apply(engine, plan_packs(engine, [MANUFACTURING], "install"))
        app = create_app(url)
        catalogs, people = CatalogCache(), {}
        with engine.begin() as conn:
            roles = catalogs.current(conn).metadata.roles
            create_team(conn, "east")
            for name, (person_roles, team) in PEOPLE.items():
                user_id = create_user(conn, name, person_roles, roles, team=team)
                if name == "admin":
                    set_password(conn, user_id, PASSWORD)
                people[name] = Person(app.test_client(), {"Authorization": f"Bearer {create_token(conn, user_id, 'tests')[1]}"},
                                      user_id)
        yield World(request.param, engine, app, people, catalogs)
        services(app).engine.dispose()
        engine.dispose()


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_the_pack_installs_on_the_standard_crm_and_its_rule_tests_pass(world):
    metadata = world.catalog().metadata
    assert [p.name for p in metadata.packs] == ["standard_crm", "manufacturing"]
    assert {"tender", "equipment", "spare_part_order", "spare_part_line"} <= set(metadata.entities)
    assert {"mfg_dealer_level", "mfg_dealer", "mfg_plant_count"} <= columns(world.engine, "account")
    assert {"mfg_equipment", "mfg_under_warranty"} <= columns(world.engine, "ticket")

    outcomes = run_pack_tests(metadata)
    failed = [o.describe() for o in outcomes if o.problem is not None]
    assert not failed, "\n".join(failed)
    ours = [r for r in metadata.rules if "manufacturing" in r.origin.file]
    assert len(ours) >= 15 and all(r.tests for r in ours), [r.name for r in ours if not r.tests]
    tested = {o.rule.name for o in outcomes}
    assert {r.name for r in ours} <= tested


def test_hidden_standard_fields_are_gone_from_the_api_but_keep_their_columns(world):
    admin, ravi = world.people["admin"], world.people["ravi"]
    for entity, hidden in (("account", "employees"), ("lead", "interests")):
        for person in (admin, ravi):
            meta = person.call("GET", f"meta/{entity}")
            assert meta.status_code == 200, meta.json
            assert hidden not in [f["name"] for f in meta.json["fields"]]
        assert hidden in columns(world.engine, entity)
    meta = admin.call("GET", "meta/account").json
    assert {"mfg_dealer_level", "mfg_dealer"} <= {f["name"] for f in meta["fields"]}
    assert "dealer" in [r["name"] for r in meta["record_types"]]

    account = ravi.make("account", name="Jinan Forging Co", record_type="company", mfg_plant_count=3)
    assert "employees" not in account and account["mfg_plant_count"] == 3
    assert ravi.call("POST", "account", {"name": "Head Count Ltd", "employees": 40}).status_code == 400
    lead = ravi.make("lead", full_name="Gao Yan", company="Weifang Pumps")
    assert "interests" not in lead


def test_a_dealer_is_an_account_of_its_own_type(world):
    dan, ravi = world.people["dan"], world.people["ravi"]
    refused(dan.call("POST", "account", {"name": "Qilu Machinery Trading", "record_type": "dealer"}), 422,
            "mfg_dealer_level")
    dealer = dan.make("account", name="Qilu Machinery Trading", record_type="dealer", mfg_dealer_level="regional",
                      mfg_dealer_territory="Shandong", mfg_dealer_contract_start=day(-30),
                      mfg_dealer_contract_end=day(60), mfg_dealer_discount="18.00")
    assert dealer["mfg_dealer_status"] == "active"
    listed = dan.call("GET", "account", query={"filter": "record_type = 'dealer'"}).json["data"]
    assert dealer["id"] in [a["id"] for a in listed]

    customer = ravi.make("account", name="Linyi Ceramics", record_type="company")
    refused(ravi.change("account", customer, mfg_dealer=customer["id"]), 422, "mfg_dealer")
    other = ravi.make("account", name="Not A Dealer Ltd")
    refused(ravi.change("account", customer, mfg_dealer=other["id"]), 422, "mfg_dealer")
    served = ravi.changed("account", customer, mfg_dealer=dealer["id"])
    assert served["mfg_dealer"] == dealer["id"]
    # The dealer manager reaches the customers dealers serve, not the rep's other accounts.
    assert dan.call("GET", f"account/{customer['id']}").status_code == 200
    assert dan.call("GET", f"account/{other['id']}").status_code == 404


def test_a_tender_goes_from_announced_to_won_past_its_gates(world):
    ravi, tina, admin = world.people["ravi"], world.people["tina"], world.people["admin"]
    account = ravi.make("account", name="Taiyuan Heavy Industry", record_type="company")
    tender = ravi.make("tender", title="Line 4 hydraulic presses", tender_no="TY-2026-017", account=account["id"],
                       tender_type="open", announced_on=day(-3), budget="1200000.00")
    assert (tender["stage"], tender["probability"]) == ("announced", "10.00")

    refused(ravi.change("tender", tender, stage="registered"), 422, "bid_deadline")
    tender = ravi.changed("tender", tender, stage="registered", bid_deadline=day(20), opening_date=day(21))
    refused(ravi.change("tender", tender, stage="bid_prepared"), 422, "bid_amount")
    tender = ravi.changed("tender", tender, stage="bid_prepared", bid_amount="1150000.00", bid_bond="20000.00")
    assert (tender["probability"], tender["expected_value"]) == ("40.00", "460000.00")

    # The rep opens an opportunity for the tender: linked back, for the purchaser.
    acted = ravi.act("tender", tender, "mfg_tender_to_opportunity")
    assert acted.status_code == 200, acted.json
    tender = acted.json["record"]
    deal = ravi.read("opportunity", tender["opportunity"])
    assert (deal["account"], deal["amount"], deal["close_date"]) == (account["id"], "1150000.00", day(21))
    assert ravi.act("tender", tender, "mfg_tender_to_opportunity").status_code == 409  # linked already

    # The submitted gate: not after the deadline, not above the ceiling price.
    refused(ravi.change("tender", tender, stage="submitted", bid_deadline=day(-1), opening_date=day(1)), 422,
            "bid_deadline")
    refused(ravi.change("tender", tender, stage="submitted", bid_amount="1250000.00"), 422, "bid_amount")
    assert ravi.read("tender", tender["id"])["stage"] == "bid_prepared"
    tender = ravi.changed("tender", tender, stage="submitted")
    assert tender["probability"] == "60.00" and tender["submitted_at"] is not None
    refused(ravi.change("tender", tender, probability="95.00"), 403, "probability")  # the stage's to set

    # Only the tender manager confirms the win.
    assert ravi.change("tender", tender, stage="won").status_code == 403
    tender = tina.read("tender", tender["id"])
    won = tina.changed("tender", tender, stage="won", winning_bidder="Us")
    assert (won["probability"], won["winning_amount"], won["decided_on"]) == ("100.00", "1150000.00", TODAY.isoformat())

    # A tender cannot skip the bid, and one left past its deadline is lost by the daily rule.
    early = ravi.make("tender", title="Crane rails", account=account["id"])
    refused(tina.change("tender", tina.read("tender", early["id"]), stage="won"), 422, "stage")
    stale = ravi.make("tender", title="Boiler retrofit", account=account["id"], stage="registered", bid_deadline=day(-2))
    world.run_scheduled("mfg_tender_deadline_missed")
    after = admin.read("tender", stale["id"])
    assert (after["stage"], after["loss_reason"], after["probability"]) == ("lost", "not_submitted", "0.00")
    assert admin.read("tender", early["id"])["stage"] == "announced"  # no deadline, left alone

    funnel = tina.call("GET", "reports/mfg_tenders_by_stage")
    assert funnel.status_code == 200, funnel.json
    counts = {g["keys"][0]["value"]: g["count"] for g in funnel.json["groups"]}
    assert counts["won"] >= 1 and counts["announced"] >= 1 and "conversion" in funnel.json


def test_equipment_tickets_and_spare_parts(world):
    admin, ravi, sam, sue = (world.people[n] for n in ("admin", "ravi", "sam", "sue"))
    press = admin.make("sales_product", name="HP-800 hydraulic press", sku="HP-800", category="hardware")
    seal = admin.make("sales_product", name="HP-800 seal kit", sku="HP-800-SK", category="consumables", price="850.00")
    ours = ravi.make("account", name="Baotou Steel Works", record_type="company")
    theirs = admin.make("account", name="Datong Foundry", record_type="company")

    # The engineer registers a machine: the warranty follows from the install date.
    machine = sam.make("equipment", serial_no="HP800-2026-0001", account=ours["id"], product=press["id"],
                       site_name="Plant 2, hall B", site_region="north", install_date=day(-100), installed_by=sam.id)
    assert machine["warranty_end"] == day(265) and machine["warranty_status"] == "in_warranty"
    assert machine["warranty_days_left"] == 265
    assert sam.change("equipment", machine, warranty_end=day(900)).status_code == 403  # not the engineer's to extend
    duplicate = sam.call("POST", "equipment", {"serial_no": "HP800-2026-0001", "account": ours["id"], "product": press["id"]})
    assert duplicate.status_code in (409, 422) and "serial_no" in duplicate.json.get("errors", {}), duplicate.json
    refused(sam.call("POST", "equipment", {"serial_no": "HP800-X", "account": ours["id"], "product": press["id"],
                                           "install_date": day(3)}), 422, "install_date")
    old = admin.make("equipment", serial_no="HP800-2019-0042", account=theirs["id"], product=press["id"],
                     install_date=day(-900), warranty_end=day(-535))
    assert old["warranty_status"] == "expired"
    # The rep sees the machines at his accounts only.
    assert ravi.call("GET", f"equipment/{machine['id']}").status_code == 200
    assert ravi.call("GET", f"equipment/{old['id']}").status_code == 404

    # A ticket against another customer's machine is refused; against ours it takes the machine's data.
    refused(sam.call("POST", "ticket", {"subject": "Oil leak", "account": ours["id"], "mfg_equipment": old["id"],
                                        "assignee": sam.id}), 422, "mfg_equipment")
    ticket = sam.make("ticket", subject="Oil leak at the main cylinder", account=ours["id"], mfg_equipment=machine["id"],
                      assignee=sam.id, category="fault", mfg_downtime_hours="6.5")
    assert (ticket["product"], ticket["mfg_under_warranty"], ticket["record_type"]) == \
        (press["id"], True, "mfg_equipment_service")
    no_account = sue.make("ticket", subject="Noise on start-up", mfg_equipment=old["id"], assignee=sam.id)
    assert (no_account["account"], no_account["mfg_under_warranty"]) == (theirs["id"], False)
    refused(sue.change("ticket", no_account, account=ours["id"]), 422, "mfg_equipment")  # moved to the wrong customer
    ticket = sam.changed("ticket", ticket, status="assigned")
    assert ticket["mfg_under_warranty"] is True
    refused(sue.change("ticket", sue.read("ticket", ticket["id"]), mfg_under_warranty=False), 422, "mfg_under_warranty")
    plain = sam.make("ticket", subject="Where is my invoice?", account=ours["id"], assignee=sam.id)
    assert (plain["record_type"], plain["mfg_under_warranty"]) == ("mfg_general_service", None)

    # A spare-part order: submitted only with lines, confirmed and shipped by the service manager.
    refused(sam.call("POST", "spare_part_order", {"order_no": "SP-0001", "account": ours["id"], "equipment": old["id"]}),
            422, "equipment")
    order = sam.make("spare_part_order", order_no="SP-0001", account=ours["id"], equipment=machine["id"],
                     ticket=ticket["id"])
    assert (order["status"], order["under_warranty"], order["charge"], order["total_amount"]) == \
        ("draft", True, "warranty", "0.00")
    refused(sam.change("spare_part_order", order, status="submitted"), 422, "status")
    sam.make("spare_part_line", spare_part_order=order["id"], product=seal["id"], quantity=2, unit_price="850.00")
    refused(sam.call("POST", "spare_part_line", {"spare_part_order": order["id"], "product": seal["id"], "quantity": 0}),
            422, "quantity")
    order = sam.changed("spare_part_order", sam.read("spare_part_order", order["id"]), status="submitted")
    assert (order["total_amount"], order["submitted_on"]) == ("1700.00", TODAY.isoformat())
    assert sam.change("spare_part_order", order, status="confirmed").status_code == 403

    order = sue.changed("spare_part_order", sue.read("spare_part_order", order["id"]), status="confirmed")
    refused(sue.change("spare_part_order", order, status="shipped"), 422, "tracking_no")
    order = sue.changed("spare_part_order", order, status="shipped", carrier="SF Express", tracking_no="SF1234567890")
    assert order["shipped_on"] == TODAY.isoformat()
    refused(sam.call("POST", "spare_part_line", {"spare_part_order": order["id"], "product": seal["id"], "quantity": 1}),
            422, "spare_part_order")
    order = sam.changed("spare_part_order", sam.read("spare_part_order", order["id"]), status="delivered")
    assert (order["delivered_on"], order["total_amount"]) == (TODAY.isoformat(), "1700.00")

    # The installed-base dashboard as the service manager.
    board = sue.call("GET", "dashboards/mfg_installed_base")
    assert board.status_code == 200, board.json
    reports = {r["name"]: r for r in board.json["reports"]}
    by_warranty = {g["keys"][0]["value"]: g["count"] for g in reports["mfg_equipment_by_warranty"]["groups"]}
    assert by_warranty.get("in_warranty", 0) >= 1 and by_warranty.get("expired", 0) >= 1
    by_model = {g["keys"][0]["value"]: g["count"] for g in reports["mfg_tickets_by_equipment_model"]["groups"]}
    assert by_model[press["id"]] >= 2
    assert "mfg_tenders" not in [d["name"] for d in sue.call("GET", "dashboards").json["data"]]


def test_warranties_age_with_the_daily_rule_and_the_notice_setting(world):
    admin = world.people["admin"]
    account = admin.make("account", name="Handan Gear Works", record_type="company")
    product = admin.make("sales_product", name="GX-20 gear hobber", sku="GX-20")
    machine = admin.make("equipment", serial_no="GX20-0007", account=account["id"], product=product["id"],
                         install_date=day(-200), warranty_end=day(100))
    assert machine["warranty_status"] == "in_warranty"
    catalog = world.catalog()
    with world.engine.begin() as conn:
        set_setting(conn, catalog.metadata, "mfg_warranty_notice_days", "120", datetime.now(timezone.utc))
    world.run_scheduled("mfg_equipment_warranty_ages")
    assert admin.read("equipment", machine["id"])["warranty_status"] == "expiring"
    with world.engine.begin() as conn:
        set_setting(conn, catalog.metadata, "mfg_warranty_notice_days", "60", datetime.now(timezone.utc))


def test_pages_show_the_layout_of_each_record_type(world):
    admin = world.people["admin"]
    dealer = admin.make("account", name="Yantai Equipment Sales", record_type="dealer", mfg_dealer_level="city")
    company = admin.make("account", name="Weihai Textiles", record_type="company", mfg_dealer=dealer["id"])
    product = admin.make("sales_product", name="LX-5 loom", sku="LX-5")
    machine = admin.make("equipment", serial_no="LX5-0001", account=company["id"], product=product["id"],
                         install_date=day(-10))
    ticket = admin.make("ticket", subject="Loom stops", mfg_equipment=machine["id"])
    plain = admin.make("ticket", subject="Invoice copy", account=company["id"])
    browser = Visitor(world.app).sign_in("admin")

    page = browser.client.get(f"/r/account/{dealer['id']}")
    assert page.status_code == 200
    assert "Dealer agreement" in page.text and "Dealer level" in page.text and "Plants" not in page.text
    page = browser.client.get(f"/r/account/{company['id']}").text
    assert "Plants" in page and "Served by dealer" in page and "Dealer agreement" not in page
    assert "Employees" not in page  # hidden by the pack
    page = browser.client.get(f"/r/ticket/{ticket['id']}").text
    assert "Under warranty" in page and "LX5-0001" in page
    assert "Under warranty" not in browser.client.get(f"/r/ticket/{plain['id']}").text  # the standard layout
    for path in ("/r/tender/new", "/r/equipment/new", "/r/spare_part_order/new", f"/r/equipment/{machine['id']}"):
        assert browser.client.get(path).status_code == 200, path
