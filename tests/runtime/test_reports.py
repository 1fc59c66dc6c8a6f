"""Reports declared in the `tally` test pack, run through the record service on SQLite and
PostgreSQL. Every expected figure is computed here, in Python, from the rows the test created;
the readers' permissions shape the figures exactly as they shape their lists."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from conftest import TEST_PACKS, fresh_database
from packwork.errors import BadRequest, NotFound
from packwork.metadata.model import ReportKey
from packwork.runtime import records, reports
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.users import create_user

PHASES = ["prospect", "offer", "dropped", "signed"]
CENT = Decimal("0.01")


def _deals(owners: list[int], clients: list[int]) -> list[dict]:
    """Deals with every kind of value, blanks included, and datetimes on quarter boundaries
    (UTC) that a time zone would move into the next quarter."""
    rng = random.Random(7)
    deals = []
    for n in range(48):
        amount = Decimal(rng.randrange(100, 50000)) if n % 9 else None  # whole: weighted is exact in cents
        deals.append({
            "name": f"D{n}", "owner_id": owners[n % len(owners)], "amount": amount,
            "chance": Decimal(rng.choice([10, 25, 50, 75])) if n % 7 else None,
            "margin": Decimal(rng.randrange(0, 900)) / 10, "days_open": rng.randrange(1, 90) if n % 5 else None,
            "region": rng.choice(["north", "south", None]), "reason": rng.choice(["price", "timing", None]),
            "hot": rng.choice([True, False, None]), "phase": PHASES[n % 4] if n % 11 else "signed",
            "closes_on": date(2025 + n % 2, 1 + n % 12, 1 + n % 28) if n % 6 else None,
            "closed_at": [datetime(2026, 3, 31, 23, 30, tzinfo=timezone.utc),
                          datetime(2026, 4, 1, 0, 15, tzinfo=timezone.utc),
                          datetime(2025, 12, 31, 23, 59, tzinfo=timezone.utc), None][n % 4],
            "client": clients[n % 3] if n % 8 else None,
        })
    return deals


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = make_engine(url)
        apply(engine, plan_packs(engine, [TEST_PACKS / "tally"], "install"))
        with engine.begin() as conn:
            people = {name: create_user(conn, name, [role], ["seller", "chief"])
                      for name, role in (("ann", "seller"), ("bob", "seller"), ("cy", "chief"))}
            ctx = records.Context.start(conn, load_catalog(conn), Actor(None))
            clients = [records.create_record(ctx, "client", {"title": t})["id"] for t in ("Zeta", "Alpha", "Mid")]
            deals = _deals(list(people.values()), clients)
            for deal in deals:
                records.create_record(ctx, "deal", {k: _json(v) for k, v in deal.items()})
            quotas = [(people["ann"], 2026, Decimal("50000")), (people["bob"], 2026, Decimal("70000")),
                      (people["ann"], 2025, Decimal("1000")), (people["cy"], 2026, Decimal("5"))]
            for owner, year, amount in quotas:
                records.create_record(ctx, "quota", {"owner_id": owner, "year": year, "amount": str(amount)})
            dropped = records.create_record(ctx, "deal", {"name": "gone", "owner_id": people["ann"], "amount": "5"})
            records.delete_record(ctx, "deal", dropped["id"])
        yield World(engine, people, deals, dict(zip(clients, ("Zeta", "Alpha", "Mid"))), quotas)
        engine.dispose()


def _json(value):
    if isinstance(value, (Decimal, date)):
        return str(value) if not isinstance(value, datetime) else value.isoformat()
    return value


class World:
    def __init__(self, engine, people, deals, clients, quotas):
        self.engine, self.people, self.deals, self.clients, self.quotas = engine, people, deals, clients, quotas

    def actor(self, name: str | None) -> Actor:
        if name is None:
            return Actor(None)
        return Actor(self.people[name], frozenset({"chief" if name == "cy" else "seller"}))

    def run(self, report: str, who: str | None = "cy", language: str = "en") -> dict:
        with self.engine.connect() as conn:
            actor = self.actor(who)
            actor = Actor(actor.user_id, actor.roles, language)
            return reports.run_report(records.Context.start(conn, load_catalog(conn), actor), report)

    def seen_by(self, who: str | None) -> list[dict]:
        return [d for d in self.deals if who in (None, "cy") or d["owner_id"] == self.people[who]]


def _cents(value) -> float | None:
    return None if value is None else float(Decimal(value).quantize(CENT))


def _figures(answer: dict, measure: str) -> dict:
    return {tuple(k["value"] for k in g["keys"]): g["figures"][measure] for g in answer["groups"]}


def _weighted(deal: dict) -> Decimal:
    return (deal["amount"] or Decimal(0)) * (deal["chance"] or Decimal(0)) / 100


def test_the_funnel_counts_and_sums_each_stage_in_pipeline_order(world):
    answer = world.run("funnel")
    counts = Counter(d["phase"] for d in world.deals)
    sums = defaultdict(Decimal)
    for d in world.deals:
        sums[d["phase"]] += d["amount"] or 0
    assert [g["keys"][0]["value"] for g in answer["groups"]] == PHASES  # as the pipeline declares them
    assert _figures(answer, "deals") == {(p,): counts[p] for p in PHASES}
    assert _figures(answer, "value") == {(p,): _cents(sums[p]) for p in PHASES}
    assert [g["keys"][0]["label"] for g in answer["groups"]] == ["Prospect", "Offer", "Dropped", "Signed"]
    assert answer["chart"] == "funnel" and answer["keys"][0]["label"] == "Phase"


def test_conversion_is_the_share_at_a_stage_or_beyond_that_reached_the_next_lost_stages_left_out(world):
    answer = world.run("funnel")
    counts = Counter(d["phase"] for d in world.deals)
    open_and_won = ["prospect", "offer", "signed"]
    reached = [sum(counts[s] for s in open_and_won[i:]) for i in range(3)]
    assert answer["conversion"] == [
        {"from": "prospect", "to": "offer", "reached_from": reached[0], "reached_to": reached[1],
         "rate": round(reached[1] / reached[0], 4)},
        {"from": "offer", "to": "signed", "reached_from": reached[1], "reached_to": reached[2],
         "rate": round(reached[2] / reached[1], 4)}]


def test_a_seller_sees_only_the_figures_of_their_own_deals(world):
    answer = world.run("funnel", "ann")
    mine = world.seen_by("ann")
    assert _figures(answer, "deals") == {(p,): Counter(d["phase"] for d in mine)[p] for p in PHASES}
    assert sum(g["count"] for g in answer["groups"]) == len(mine) < len(world.deals)


def test_weighted_forecast_by_close_month_sums_a_stored_computed_field(world):
    answer = world.run("forecast_by_month")
    expected = defaultdict(Decimal)
    for d in world.deals:
        if d["phase"] in ("prospect", "offer"):
            month = f"{d['closes_on']:%Y-%m}" if d["closes_on"] else None
            expected[(month,)] += _weighted(d)
    assert _figures(answer, "forecast") == {k: _cents(v) for k, v in expected.items()}
    months = [g["keys"][0]["value"] for g in answer["groups"]]
    assert months == sorted(m for m in months if m) + ([None] if None in months else [])  # in time, blank last
    assert answer["groups"][-1]["keys"][0]["label"] == "(none)"


def test_forecast_by_owner_names_the_owners(world):
    answer = world.run("forecast_by_owner", language="zh")
    expected = defaultdict(Decimal)
    for d in world.deals:
        expected[(d["owner_id"],)] += _weighted(d)
    assert _figures(answer, "forecast") == {k: _cents(v) for k, v in expected.items()}
    names = {g["keys"][0]["value"]: g["keys"][0]["label"] for g in answer["groups"]}
    assert names == {world.people[n]: n for n in ("ann", "bob", "cy")}
    assert answer["label"] == "按负责人预测" and answer["keys"][0]["label"] == "负责人"


def _quarter(moment: datetime | None) -> str | None:
    return f"{moment.year}-Q{(moment.month + 2) // 3}" if moment else None


def test_two_keys_and_datetimes_bucketed_by_quarter_in_utc(world):
    answer = world.run("quarter_region")
    expected = Counter((_quarter(d["closed_at"]), d["region"]) for d in world.deals)
    assert _figures(answer, "deals") == dict(expected)
    assert {"2026-Q1", "2026-Q2", "2025-Q4"} <= {g["keys"][0]["value"] for g in answer["groups"]}
    assert [k["field"] for k in answer["keys"]] == ["closed_at", "region"]
    labels = {g["keys"][1]["value"]: g["keys"][1]["label"] for g in answer["groups"]}
    assert labels == {"north": "North", "south": "South", None: "(none)"}


def test_dates_bucketed_by_year(world):
    expected = Counter((str(d["closes_on"].year) if d["closes_on"] else None,) for d in world.deals)
    assert _figures(world.run("by_year"), "deals") == dict(expected)


def test_dropped_deals_by_reason_with_option_labels_in_the_readers_language(world):
    answer = world.run("dropped_by_reason", language="zh")
    expected = Counter((d["reason"],) for d in world.deals if d["phase"] == "dropped")
    assert _figures(answer, "deals") == dict(expected)
    labels = {g["keys"][0]["value"]: g["keys"][0]["label"] for g in answer["groups"]}
    assert labels == {"price": "价格", "timing": "时机", None: "（无）"}


def test_top_clients_are_sorted_by_revenue_and_limited_with_titles_as_labels(world):
    answer = world.run("top_clients")
    revenue = defaultdict(Decimal)
    for d in world.deals:
        if d["phase"] == "signed":
            revenue[d["client"]] += d["amount"] or 0
    top = sorted(revenue.items(), key=lambda item: item[1], reverse=True)[:2]
    assert [(g["keys"][0]["value"], g["figures"]["revenue"]) for g in answer["groups"]] == \
        [(client, _cents(total)) for client, total in top]
    assert [g["keys"][0]["label"] for g in answer["groups"]] == \
        [world.clients.get(client, "(none)") for client, _ in top]


def test_average_minimum_and_maximum_by_a_boolean(world):
    answer = world.run("hot_or_not")
    for group in answer["groups"]:
        value = group["keys"][0]["value"]
        days = [d["days_open"] for d in world.deals if d["hot"] is value and d["days_open"] is not None]
        assert group["figures"] == {"average": _cents(Decimal(sum(days)) / len(days)), "shortest": min(days),
                                    "longest": max(days)}
    assert [g["keys"][0]["label"] for g in answer["groups"]] == ["No", "Yes", "(none)"]


def test_a_second_series_from_another_entity_on_the_same_key(world):
    answer = world.run("against_quota")
    signed = defaultdict(Decimal)
    for d in world.deals:
        if d["phase"] == "signed":
            signed[(d["owner_id"],)] += d["amount"] or 0
    quota = {(owner,): amount for owner, year, amount in world.quotas if year == 2026}
    assert _figures(answer, "signed") == {k: _cents(v) for k, v in signed.items()} | \
        {k: None for k in quota if k not in signed}
    assert _figures(answer, "quota") == {k: _cents(v) for k, v in quota.items()} | \
        {k: None for k in signed if k not in quota}
    assert [m["entity"] for m in answer["measures"]] == ["deal", "quota"]


def test_a_seller_sees_their_own_quota_only(world):
    answer = world.run("against_quota", "bob")
    bob = world.people["bob"]
    assert {k for k, v in _figures(answer, "quota").items() if v is not None} == {(bob,)}
    assert {g["keys"][0]["value"] for g in answer["groups"]} == {bob}


def test_a_measure_of_a_field_hidden_from_the_reader_is_left_out(world):
    chief, seller = world.run("margin_by_region"), world.run("margin_by_region", "ann")
    assert [m["name"] for m in chief["measures"]] == ["deals", "margin"]
    assert [m["name"] for m in seller["measures"]] == ["deals"]
    assert all(set(g["figures"]) == {"deals"} for g in seller["groups"])
    expected = defaultdict(Decimal)
    for d in world.deals:
        expected[(d["region"],)] += d["margin"]
    assert _figures(chief, "margin") == {k: _cents(v) for k, v in expected.items()}


def test_reports_listed_for_a_reader_are_those_available_to_them(world):
    with world.engine.connect() as conn:
        catalog = load_catalog(conn)
        listed = {who: [r.name for r in reports.reports_for(records.Context.start(conn, catalog, world.actor(who)))]
                  for who in ("ann", "cy")}
        boards = {who: [d.name for d in reports.dashboards_for(records.Context.start(conn, catalog, world.actor(who)))]
                  for who in ("ann", "cy")}
    assert listed["cy"] == list(catalog.metadata.reports) == listed["ann"]  # margin_by_region keeps its count
    assert boards == {"ann": ["selling"], "cy": ["selling", "chiefs"]}


def test_a_dashboard_runs_each_report_with_its_width_and_unknown_names_are_404(world):
    with world.engine.connect() as conn:
        ctx = records.Context.start(conn, load_catalog(conn), world.actor("ann"))
        board = reports.run_dashboard(ctx, "selling")
        assert [(r["name"], r["width"]) for r in board["reports"]][:2] == [("funnel", "full"),
                                                                          ("forecast_by_month", "half")]
        for call, name in ((reports.run_report, "nope"), (reports.run_dashboard, "nope"),
                           (reports.run_dashboard, "chiefs")):  # not one of ann's roles
            with pytest.raises(NotFound):
                call(ctx, name)


def test_summarize_keeps_serving_kanban_totals(world):
    with world.engine.connect() as conn:
        ctx = records.Context.start(conn, load_catalog(conn), world.actor("bob"))
        totals = {g.value: (g.count, g.total) for g in records.summarize(ctx, "deal", "phase", "amount")}
        with pytest.raises(BadRequest):
            records.aggregate(ctx, "deal", [ReportKey("name")], [])  # a text field is not a group key
    mine = world.seen_by("bob")
    assert totals == {p: (sum(1 for d in mine if d["phase"] == p),
                          sum((d["amount"] or 0 for d in mine if d["phase"] == p), Decimal(0)) or None)
                      for p in {d["phase"] for d in mine}}
