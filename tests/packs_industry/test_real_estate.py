"""The real estate pack (packs/industry/real_estate) installed on top of the standard CRM, on
SQLite and PostgreSQL, scripted over the HTTP API as the people of a sales office:

- the pack's own rule tests pass over the resolved metadata of both packs;
- the sales director builds a project, a building and units (price per m² computed, project
  taken from the building); agents may not touch the inventory by hand;
- an agent records a viewing, turns it into a deal and takes it to contract_signed past each
  stage's required fields and gates, reserving and selling the unit through its actions; the
  commission is worked out from the pack setting; another agent cannot reserve the held unit,
  and a second deal on the sold unit is refused at signing;
- when nobody ran the unit's actions, the database still refuses a second signed deal that
  the signing agent could not see, and the scheduled sync marks the unit sold;
- the dashboard's reports count units per project and status, deals by stage and commission
  by agent, each as its reader may see them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest

from api.conftest import install
from conftest import PACKS, fresh_database
from journeys import Person, refused
from packwork.runtime import jobs
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.settings import set_setting
from packwork.rules.testing import run_pack_tests
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services

PACK = PACKS / "industry" / "real_estate"
PEOPLE = {  # username: roles
    "admin": ["system_admin"],
    "dora": ["re_sales_director"],
    "alex": ["re_sales_agent"],
    "bella": ["re_sales_agent"],
    "fay": ["finance"],
}
TODAY = date.today().isoformat()


@dataclass
class Office:
    engine: object
    cache: CatalogCache
    people: dict[str, Person]
    numbers: itertools.count

    def catalog(self):
        with self.engine.connect() as conn:
            return self.cache.current(conn)

    def setting(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            set_setting(conn, self.cache.current(conn).metadata, name, value, datetime.now(timezone.utc))

    def inventory(self, units: int = 2) -> tuple[dict, dict, list[dict]]:
        """A project with one building and `units` units, made by the sales director."""
        dora, n = self.people["dora"], next(self.numbers)
        project = dora.make("property_project", name=f"Harbour View {n}", code=f"HV{n}", city="Shanghai",
                            sales_status="on_sale", launch_date="2026-03-01", delivery_date="2028-06-30")
        building = dora.make("property_building", name="Building 3", project=project["id"], floors=32,
                             units_per_floor=4, building_type="high_rise")
        made = [dora.make("property_unit", unit_no=f"3-1-{12 + i:02d}01", building=building["id"], floor=12 + i,
                          layout_type="three_bed", area="120.00", list_price="3600000.00", orientation="south")
                for i in range(units)]
        return project, building, made


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def office(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")
        apply(engine, plan_packs(engine, [PACK], "install"))  # the vertical, on top of the base
        app = create_app(url)
        cache = CatalogCache()
        people = {}
        with engine.begin() as conn:
            roles = cache.current(conn).metadata.roles
            for name, held in PEOPLE.items():
                user_id = create_user(conn, name, held, roles)
                people[name] = Person(app.test_client(),
                                      {"Authorization": f"Bearer {create_token(conn, user_id, 'tests')[1]}"}, user_id)
        yield Office(engine, cache, people, itertools.count(1))
        services(app).engine.dispose()
        engine.dispose()


def test_the_packs_rule_tests_pass_and_every_rule_has_some(office):
    metadata = office.catalog().metadata
    assert {p.name for p in metadata.packs} >= {"standard_crm", "real_estate"}
    outcomes = run_pack_tests(metadata)
    assert [o.describe() for o in outcomes if o.problem is not None] == []
    ours = [r for r in metadata.rules if "real_estate" in r.origin.file]
    assert len(ours) == 24 and all(r.name.startswith("re_") for r in ours)
    assert [r.name for r in ours if not r.tests] == []  # every rule of the pack carries test cases


def test_the_director_keeps_the_inventory_and_agents_only_read_it(office):
    dora, alex = office.people["dora"], office.people["alex"]
    project, building, (unit, _) = office.inventory()
    assert unit["project"] == project["id"]  # from the building
    assert (unit["status"], unit["unit_price"], unit["current_deal"]) == ("available", "30000.00", None)
    assert unit["status_changed_at"] is not None

    refused(dora.call("POST", "property_unit", {"unit_no": "3-1-3301", "building": building["id"], "floor": 33,
                                               "area": "90.00", "list_price": "2700000.00"}), 422, "floor", "1 to 32")
    refused(dora.call("POST", "property_unit", {"unit_no": unit["unit_no"], "building": building["id"], "floor": 12,
                                               "area": "90.00", "list_price": "2700000.00"}), 422, "unit_no")
    refused(dora.call("POST", "property_unit", {"unit_no": "3-1-0101", "building": building["id"], "floor": 1,
                                               "area": "0", "list_price": "2700000.00"}), 422, "area")
    repriced = dora.changed("property_unit", unit, list_price="3780000.00")
    assert repriced["unit_price"] == "31500.00"

    assert alex.read("property_unit", unit["id"])["list_price"] == "3780000.00"
    assert alex.call("POST", "property_unit", {"unit_no": "3-1-0201", "building": building["id"], "floor": 2,
                                              "area": "90.00", "list_price": "1.00"}).status_code == 403
    refused(alex.change("property_unit", repriced, list_price="1.00"), 403, "list_price")
    refused(alex.change("property_unit", repriced, status="sold"), 403, "status")
    # A director setting a status by hand still has to name a deal that holds the unit.
    refused(dora.change("property_unit", repriced, status="reserved"), 422, "current_deal")


def test_a_viewing_becomes_a_deal_that_is_signed_past_its_gates(office):
    dora, alex, bella, fay = (office.people[n] for n in ("dora", "alex", "bella", "fay"))
    project, _, (unit, other_unit) = office.inventory()
    buyer = alex.make("contact", full_name="Wang Fang", mobile="+86 139 0000 0101", re_intended_project=project["id"],
                      re_budget="4000000.00", re_preferred_layout="three_bed", re_purchase_purpose="upgrade")
    assert buyer["re_intended_project"] == project["id"]

    # The viewing: agent and title filled in; the unit must be in the viewing's project.
    elsewhere = office.inventory(1)[2][0]
    refused(alex.call("POST", "viewing", {"contact": buyer["id"], "project": project["id"], "unit": elsewhere["id"],
                                          "viewed_at": f"{TODAY}T10:00:00Z"}), 422, "unit", "another project")
    viewing = alex.make("viewing", contact=buyer["id"], project=project["id"], unit=unit["id"],
                        viewed_at=f"{TODAY}T10:00:00Z", channel="walk_in", interest="high", concerns=["price", "schools"],
                        feedback="Likes the south light; asks about the school catchment")
    assert viewing["agent"] == alex.id
    assert viewing["title"] == f"Wang Fang · {unit['unit_no']} · {TODAY}"

    started = alex.act("viewing", viewing, "re_start_deal", {"offer_price": "3500000.00", "expected_sign_date": TODAY})
    assert started.status_code == 200, started.json
    assert [c["entity"] for c in started.json["created"]] == ["property_deal"]
    deal = alex.read("property_deal", started.json["record"]["deal"])
    assert (deal["stage"], deal["buyer"], deal["unit"], deal["viewing"]) == ("intention", buyer["id"], unit["id"], viewing["id"])
    assert (deal["agent"], deal["project"], deal["owner_id"]) == (alex.id, project["id"], alex.id)
    assert alex.act("viewing", started.json["record"], "re_start_deal").status_code == 409  # one deal per viewing

    # Reserved: its required fields, then the minimum deposit (a pack setting).
    refused(alex.change("property_deal", deal, stage="reserved"), 422, "deposit_amount")
    assert alex.read("property_deal", deal["id"])["stage"] == "intention"
    refused(alex.change("property_deal", deal, stage="reserved", deposit_amount="5000.00", deposit_paid_on=TODAY,
                        payment_method="mortgage"), 422, "deposit_amount", "at least 20000")
    deal = alex.changed("property_deal", deal, stage="reserved", deposit_amount="50000.00", deposit_paid_on=TODAY,
                      payment_method="mortgage")
    refused(alex.change("property_deal", deal, unit=other_unit["id"]), 422, "unit")  # a reserved deal keeps its unit

    # The agent locks the unit for the deal (the unit's action checks the deal).
    offered = {a["name"] for a in alex.call("GET", f"property_unit/{unit['id']}/actions").json["data"]}
    assert offered == {"re_reserve_unit", "re_mark_unit_sold"}  # release: only for a reserved unit
    refused(alex.act("property_unit", other_unit, "re_reserve_unit", {"deal": deal["id"]}), 422, "deal", "another unit")
    locked = alex.act("property_unit", alex.read("property_unit", unit["id"]), "re_reserve_unit")
    assert locked.status_code == 200, locked.json
    assert (locked.json["record"]["status"], locked.json["record"]["current_deal"]) == ("reserved", deal["id"])

    # Another agent's buyer wants the same unit: intention is fine, a deposit on it is refused.
    rival = bella.make("contact", full_name="Li Lei")
    second = bella.make("property_deal", name="Li Lei · same unit", buyer=rival["id"], unit=unit["id"],
                        offer_price="3550000.00", stage="intention")
    refused(bella.change("property_deal", second, stage="reserved", deposit_amount="100000.00", deposit_paid_on=TODAY,
                         payment_method="full"), 422, "unit", "only an available unit can be reserved")
    # ... nor may she free the unit: the deal holding it is not hers.
    refused(bella.act("property_unit", locked.json["record"], "re_release_unit"), 422, "status", "not yours")

    # Signing: the required contract fields, then the commission from the setting (1%).
    refused(alex.change("property_deal", deal, stage="contract_signed"), 422, "contract_no")
    assert alex.read("property_deal", deal["id"])["stage"] == "reserved"
    signed = alex.changed("property_deal", deal, stage="contract_signed", contract_no=f"HV-{deal['id']}-001",
                        contract_price="3480000.00", signed_on=TODAY)
    assert (signed["stage"], signed["commission_rate"], signed["commission"]) == ("contract_signed", "1.00", "34800.00")
    assert signed["signing_overdue_since"] is None
    refused(alex.change("property_deal", signed, commission="99999.00"), 403, "commission")
    refused(alex.change("property_deal", signed, contract_price="3000000.00"), 422, "contract_price")
    refused(alex.change("property_deal", signed, stage="lost", loss_reason="cancelled"), 422, "stage", "sales director")

    sold = alex.act("property_unit", alex.read("property_unit", unit["id"]), "re_mark_unit_sold")
    assert sold.status_code == 200, sold.json
    assert (sold.json["record"]["status"], sold.json["record"]["current_deal"]) == ("sold", signed["id"])
    assert alex.act("property_unit", sold.json["record"], "re_reserve_unit").status_code == 409  # sold: not offered

    # A second deal on the sold unit, by the same agent (who sees the first): refused at signing.
    again = alex.make("property_deal", name="Wang Fang · second try", buyer=buyer["id"], unit=unit["id"],
                      offer_price="3480000.00", stage="intention")
    refused(alex.change("property_deal", again, stage="contract_signed", contract_no=f"HV-{again['id']}-002",
                        contract_price="3480000.00", signed_on=TODAY, payment_method="full"),
            422, "unit", "already sold")
    # ... and by the other agent, who cannot see the signed deal: the unit's status refuses it.
    refused(bella.change("property_deal", bella.read("property_deal", second["id"]), stage="contract_signed",
                         contract_no=f"HV-{second['id']}-003", contract_price="3550000.00", signed_on=TODAY,
                         payment_method="full"), 422, "unit", "is sold for another deal")
    assert bella.call("GET", f"property_deal/{deal['id']}").status_code == 404
    assert fay.read("property_deal", deal["id"])["commission"] == "34800.00"

    # The director may cancel the contract (退房): the commission goes, the unit is freed by the sync.
    cancelled = dora.changed("property_deal", dora.read("property_deal", signed["id"]), stage="lost", loss_reason="cancelled")
    assert (cancelled["commission"], cancelled["commission_rate"]) == (None, "1.00")


def test_a_sale_the_agent_could_not_see_is_refused_and_the_sync_marks_the_unit(office):
    alex, bella, dora = office.people["alex"], office.people["bella"], office.people["dora"]
    _, _, (unit,) = office.inventory(1)
    office.setting("re_commission_rate", "1.5")
    deals = {}
    for person, price in ((alex, "3500000.00"), (bella, "3520000.00")):  # nobody runs the unit's actions
        buyer = person.make("contact", full_name=f"Buyer of {person.id}")
        deal = person.make("property_deal", name=f"Deal of {person.id}", buyer=buyer["id"], unit=unit["id"],
                           stage="reserved", offer_price=price, deposit_amount="30000.00", deposit_paid_on=TODAY,
                           payment_method="full")
        deals[person.id] = deal
    signed = alex.changed("property_deal", deals[alex.id], stage="contract_signed", contract_no=f"NS-{unit['id']}-1",
                        contract_price="3500000.00", signed_on=TODAY)
    assert (signed["commission_rate"], signed["commission"]) == ("1.50", "52500.00")  # the setting, changed

    # Bella cannot see Alex's deal and the unit still says available: the database refuses it.
    clash = bella.change("property_deal", deals[bella.id], stage="contract_signed", contract_no=f"NS-{unit['id']}-2",
                         contract_price="3520000.00", signed_on=TODAY)
    assert clash.status_code == 409, clash.json
    assert bella.read("property_deal", deals[bella.id]["id"])["stage"] == "reserved"

    rule = next(r for r in office.catalog().metadata.rules if r.name == "re_sync_unit_status")
    report = jobs.run_rule(office.engine, office.catalog(), rule, datetime.now(timezone.utc))
    assert report.error is None and report.refused == 0 and report.changed >= 1
    synced = dora.read("property_unit", unit["id"])
    assert (synced["status"], synced["current_deal"]) == ("sold", signed["id"])
    office.setting("re_commission_rate", "1")


def test_the_dashboard_reports_units_deals_and_commission(office):
    dora, alex, bella = office.people["dora"], office.people["alex"], office.people["bella"]
    project, _, units = office.inventory(3)
    buyer = alex.make("contact", full_name="Zhou Min")
    deal = alex.make("property_deal", name="Zhou Min", buyer=buyer["id"], unit=units[0]["id"], stage="reserved",
                     offer_price="3600000.00", deposit_amount="50000.00", deposit_paid_on=TODAY, payment_method="full")
    reserved = alex.act("property_unit", units[0], "re_reserve_unit", {"deal": deal["id"]})
    assert reserved.status_code == 200, reserved.json
    deal = alex.changed("property_deal", deal, stage="contract_signed", contract_no=f"DB-{deal['id']}",
                      contract_price="3600000.00", signed_on=TODAY)
    assert alex.act("property_unit", alex.read("property_unit", units[0]["id"]), "re_mark_unit_sold").status_code == 200

    # A deposit taken 20 days ago and no contract yet: the daily rule flags it (re_reservation_days: 15).
    late = alex.make("property_deal", name="Zhou Min · 2nd home", buyer=buyer["id"], unit=units[1]["id"], stage="reserved",
                     offer_price="3600000.00", deposit_amount="50000.00", payment_method="mortgage",
                     deposit_paid_on=(date.today() - timedelta(days=20)).isoformat())
    rule = next(r for r in office.catalog().metadata.rules if r.name == "re_flag_overdue_reservations")
    assert jobs.run_rule(office.engine, office.catalog(), rule, datetime.now(timezone.utc)).error is None
    assert alex.read("property_deal", late["id"])["signing_overdue_since"] == TODAY
    assert alex.read("property_deal", deal["id"])["signing_overdue_since"] is None
    overdue = alex.call("GET", "property_deal", query={"filter": "signing_overdue_since is not null"}).json["data"]
    assert [d["id"] for d in overdue] == [late["id"]]

    by_status = dora.report("re_units_by_status")
    assert by_status[(project["id"], "sold")]["units"] == 1
    assert by_status[(project["id"], "available")]["units"] == 2
    assert (project["id"], "reserved") not in by_status

    commission = dora.report("re_commission_by_agent")
    assert commission[(alex.id,)]["commission"] >= 36000.0  # this deal's 1%, and earlier ones
    mine = alex.report("re_commission_by_agent")
    assert set(mine) == {(alex.id,)}  # an agent sees their own deals only
    assert bella.report("re_commission_by_agent").get((alex.id,)) is None

    stages = dora.report("re_deals_by_stage")
    assert stages[("contract_signed",)]["deals"] >= 2
    board = dora.call("GET", "dashboards/re_sales_office")
    assert board.status_code == 200, board.json
    assert alex.call("GET", "dashboards/re_sales_office").status_code == 200
