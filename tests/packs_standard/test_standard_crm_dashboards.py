"""The standard CRM's dashboards over the API and the UI, on SQLite and PostgreSQL: a fixed data
set is created through the record service, then every dashboard each reader may open is fetched
and every figure of every report is compared with figures worked out here, in plain Python, from
the same data and from what each reader may read (own, team, all, the pool's `rows` and the
tickets assigned to them). The expectations name the filters and groupings a CRM means by each
report; they never ask the engine."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import jsonschema
import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import PACKS, fresh_database
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import records
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.permissions import Actor
from packwork.runtime.sessions import set_password
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

# ---- the data set ---------------------------------------------------------------------------

USERS = {  # username: (role, team)
    "sam": ("system_admin", None), "li": ("sales_manager", "east"), "wang": ("account_manager", "east"),
    "zhao": ("account_manager", "east"), "chen": ("account_manager", "south"), "hu": ("executive", None),
    "liu": ("service_agent", "service"), "ma": ("service_agent", "service"), "xu": ("finance", None),
    "lin": ("marketing", None),
}
EAST = {name for name, (_, team) in USERS.items() if team == "east"}  # li's team: li, wang, zhao

# code, owner (None: in the pool), grade, level, industry, region, annual revenue
ACCOUNTS = [
    ("A01", "wang", "a", "key", "manufacturing", "east", 5000000),
    ("A02", "wang", "b", "normal", "retail", "east", 1200000),
    ("A03", "wang", "c", "potential", "technology", "north", None),
    ("A04", "zhao", "a", "key", "finance", "south", 8000000),
    ("A05", "zhao", "b", "normal", "manufacturing", "east", 900000),
    ("A06", "zhao", "d", "potential", None, None, None),
    ("A07", "chen", "b", "key", "healthcare", "south", 3000000),
    ("A08", "chen", "c", "normal", "retail", "southwest", 450000),
    ("A09", "chen", "c", "normal", "education", "central", 600000),
    ("A10", "li", "a", "key", "energy", "north", 12000000),
    ("A11", None, "d", "potential", "retail", "north", None),
    ("A12", None, "c", "potential", "logistics", "east", 300000),
    ("A13", "wang", "b", "normal", "technology", "east", 2000000),
    ("A14", "chen", None, "normal", "other", "northeast", 150000),
]
# name, account, owner, stage, amount, close date, loss reason
OPPORTUNITIES = [
    ("O01", "A01", "wang", "qualify", 100000, "2026-03-15", None),
    ("O02", "A01", "wang", "proposal", 250000, "2026-03-28", None),
    ("O03", "A02", "wang", "negotiation", 400000, "2026-04-10", None),
    ("O04", "A13", "wang", "won", 300000, "2026-01-20", None),
    ("O05", "A01", "wang", "won", 520000, "2025-11-05", None),
    ("O06", "A02", "wang", "lost", 180000, "2026-02-14", "price"),
    ("O07", "A04", "zhao", "needs_analysis", 600000, "2026-05-01", None),
    ("O08", "A04", "zhao", "won", 880000, "2026-02-03", None),
    ("O09", "A05", "zhao", "lost", 90000, "2026-01-30", "competitor"),
    ("O10", "A05", "zhao", "negotiation", 150000, "2026-03-05", None),
    ("O11", "A06", "zhao", "qualify", None, None, None),
    ("O12", "A07", "chen", "proposal", 320000, "2026-04-22", None),
    ("O13", "A07", "chen", "won", 1250000, "2026-03-02", None),
    ("O14", "A08", "chen", "lost", 60000, "2026-02-27", "competitor"),
    ("O15", "A09", "chen", "lost", 75000, "2025-12-12", "no_budget"),
    ("O16", "A10", "li", "negotiation", 2000000, "2026-04-30", None),
    ("O17", "A10", "li", "won", 1500000, "2025-12-20", None),
    ("O18", "A03", "wang", "needs_analysis", 50000, "2026-05-15", None),
    ("O19", "A14", "chen", "won", 95000, "2026-01-08", None),
    ("O20", "A09", "chen", "qualify", 40000, "2026-03-15", None),
]
STAGES = ["qualify", "needs_analysis", "proposal", "negotiation", "won", "lost"]  # the pipeline, in order
PROBABILITY = {"qualify": 10, "needs_analysis": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}
STAGE_LABELS = {"qualify": "Qualify", "needs_analysis": "Needs analysis", "proposal": "Proposal",
                "negotiation": "Negotiation", "won": "Closed won", "lost": "Closed lost"}
# account, amount, received on (None: planned only)
PAYMENTS = [
    ("A01", 200000, "2026-01-10"), ("A01", 120000, "2026-02-10"), ("A02", 80000, "2026-02-20"),
    ("A13", 150000, "2026-02-01"), ("A13", 150000, None), ("A04", 440000, "2026-02-15"),
    ("A04", 220000, "2026-03-01"), ("A05", 45000, "2026-01-25"), ("A06", 12000, "2026-03-03"),
    ("A07", 625000, "2026-03-10"), ("A08", 30000, "2026-01-15"), ("A09", 20000, "2026-02-05"),
    ("A14", 95000, "2026-01-20"), ("A10", 750000, "2026-01-05"), ("A10", 500000, "2025-12-28"),
    ("A03", 5000, "2026-03-20"),
]
# owner, period type, period start, period end, target amount
TARGETS = [
    ("wang", "year", "2026-01-01", "2026-12-31", 3000000), ("wang", "year", "2025-01-01", "2025-12-31", 2000000),
    ("zhao", "year", "2026-01-01", "2026-12-31", 2500000), ("chen", "year", "2026-01-01", "2026-12-31", 4000000),
    ("li", "year", "2026-01-01", "2026-12-31", 1000000),
    ("wang", "month", "2026-01-01", "2026-01-31", 250000), ("wang", "month", "2026-02-01", "2026-02-28", 250000),
    ("wang", "month", "2026-03-01", "2026-03-31", 300000), ("zhao", "month", "2026-02-01", "2026-02-28", 200000),
    ("chen", "month", "2026-03-01", "2026-03-31", 400000), ("chen", "month", "2026-06-01", "2026-06-30", 100000),
    ("zhao", "quarter", "2026-01-01", "2026-03-31", 700000),  # neither a year's nor a month's target
]
# number, account, owner, assignee, category, status, opened on, resolved on, archived on, satisfaction
TICKETS = [
    ("T01", "A01", "liu", "liu", "fault", "archived", "2026-01-05", "2026-01-08", "2026-01-10", "very_satisfied"),
    ("T02", "A02", "liu", "liu", "question", "archived", "2026-01-12", "2026-01-13", "2026-01-15", "satisfied"),
    ("T03", "A04", "ma", "ma", "complaint", "archived", "2026-01-20", "2026-02-04", "2026-02-06", "dissatisfied"),
    ("T04", "A07", "ma", "ma", "fault", "feedback", "2026-02-02", "2026-02-09", None, None),
    ("T05", "A05", "wang", "liu", "installation", "archived", "2026-02-10", "2026-02-16", "2026-02-20", "satisfied"),
    ("T06", "A10", "liu", "ma", "fault", "handling", "2026-02-20", None, None, None),
    ("T07", "A08", "ma", None, "question", "created", "2026-03-01", None, None, None),
    ("T08", "A01", "wang", "wang", "suggestion", "assigned", "2026-03-03", None, None, None),
    ("T09", "A13", "liu", "liu", "fault", "archived", "2026-03-05", "2026-03-07", "2026-03-09", "neutral"),
    ("T10", "A09", "ma", "ma", "complaint", "archived", "2026-03-08", "2026-03-20", "2026-03-23", "very_dissatisfied"),
    ("T11", "A03", "liu", "ma", "question", "feedback", "2026-03-10", "2026-03-11", None, "satisfied"),
    ("T12", "A04", "ma", "liu", None, "created", "2026-03-15", None, None, None),
]
# account, owner, measure, cause, identified on, estimated annual loss
LOSSES = [
    ("A02", "wang", "identified", "no_recent_order", "2026-01-10", 200000),
    ("A03", "wang", "delayed", "price", "2026-01-25", 50000),
    ("A05", "zhao", "confirmed", "competitor", "2026-02-03", 150000),
    ("A06", "zhao", "recovered", "service", "2026-02-18", 30000),
    ("A08", "chen", "confirmed", "quality", "2026-02-20", 80000),
    ("A09", "chen", "identified", "no_recent_order", "2026-03-02", None),
    ("A14", "chen", "confirmed", "competitor", "2025-12-15", 60000),
    ("A11", None, "identified", None, "2026-03-05", 10000),
]


def _rows(columns: str, data: list[tuple]) -> list[dict]:
    names = columns.split()
    return [dict(zip(names, row)) for row in data]


OWNER_OF = {code: owner for code, owner, *_ in ACCOUNTS}
DATA = {
    "account": _rows("code owner grade level industry region annual_revenue", ACCOUNTS),
    "opportunity": _rows("name account owner stage amount close_date loss_reason", OPPORTUNITIES),
    # a payment is the account owner's
    "payment_received": [r | {"owner": OWNER_OF[r["account"]]} for r in _rows("account amount received_on", PAYMENTS)],
    "sales_target": _rows("owner period_type period_start period_end target_amount", TARGETS),
    "ticket": _rows("ticket_no account owner assignee category status opened_on resolved_on archived_on satisfaction",
                    TICKETS),
    "customer_loss": _rows("account owner measure cause identified_on estimated_annual_loss", LOSSES),
}
for _o in DATA["opportunity"]:  # the weighted amount: a missing amount weighs 0
    _o["expected_revenue"] = Decimal(_o["amount"] or 0) * PROBABILITY[_o["stage"]] / 100


def _days(start: str, end: str | None) -> int | None:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days if end else None


for _t in DATA["ticket"]:  # days from opening to resolution, and to archiving
    _t["days"], _t["close_days"] = _days(_t["opened_on"], _t["resolved_on"]), _days(_t["opened_on"], _t["archived_on"])


# ---- what each reader may read ---------------------------------------------------------------

READS = {  # role: the entities it reads (roles.yaml), and at which scope
    "system_admin": dict.fromkeys(DATA, "all"),
    "executive": dict.fromkeys(DATA, "all"),
    "sales_manager": dict.fromkeys(DATA, "team"),
    "account_manager": dict.fromkeys(DATA, "own"),
    "service_agent": {"account": "all", "ticket": "own"},
    "finance": {e: "all" for e in ("account", "opportunity", "payment_received", "sales_target", "customer_loss")},
    "marketing": {"account": "all", "opportunity": "all"},
}


def seen(who: str, entity: str) -> list[dict]:
    """The records of `entity` that `who` may read: their role's scope, plus the pool (accounts
    without an owner) for reps and managers, plus the tickets assigned to a rep or an agent."""
    role = USERS[who][0]
    scope = READS[role].get(entity)

    def reaches(row: dict) -> bool:
        if scope == "all":
            return True
        if entity == "account" and row["owner"] is None:
            return True
        if entity == "ticket" and role in ("account_manager", "service_agent") and row["assignee"] == who:
            return True
        return row["owner"] == who if scope == "own" else row["owner"] in EAST
    return [row for row in DATA[entity] if scope is not None and reaches(row)]


# ---- figures worked out in Python ------------------------------------------------------------

def money(values) -> float | None:
    values = [Decimal(v) for v in values if v is not None]
    return float(sum(values).quantize(Decimal("0.01"), ROUND_HALF_UP)) if values else None


def total(name: str) -> Callable[[list[dict]], float | None]:
    return lambda rows: money(r[name] for r in rows)


def mean(name: str) -> Callable[[list[dict]], float | None]:
    def figure(rows):
        values = [Decimal(r[name]) for r in rows if r[name] is not None]
        return float((sum(values) / len(values)).quantize(Decimal("0.01"), ROUND_HALF_UP)) if values else None
    return figure


def largest(name: str) -> Callable[[list[dict]], int | None]:
    return lambda rows: max((r[name] for r in rows if r[name] is not None), default=None)


def grouped(rows: list[dict], key: Callable[[dict], tuple], **measures) -> dict[tuple, dict]:
    """{key values: {"count": n, measure: figure}} — the count of records and each measure."""
    found: dict[tuple, list[dict]] = {}
    for row in rows:
        found.setdefault(key(row), []).append(row)
    return {k: {"count": len(rs)} | {name: fn(rs) for name, fn in measures.items()} for k, rs in found.items()}


def against(own: dict[tuple, dict], sums: list[str], other: dict[tuple, dict], name: str) -> dict[tuple, dict]:
    """The report's own groups (with the sums `sums`) and another entity's figure `name`, merged
    by key: a group only one side has shows 0 records and null for the other side's figures."""
    blank = {"count": 0} | dict.fromkeys(sums)
    return {k: own.get(k, blank) | {name: other.get(k, {}).get(name)} for k in own.keys() | other.keys()}


def count(rows):
    return len(rows)


def month(day: str | None) -> str | None:
    return day[:7] if day else None


def year(day: str | None) -> str | None:
    return day[:4] if day else None


def view(who: str) -> SimpleNamespace:
    """The records each report starts from, as `who` may read them."""
    opps = seen(who, "opportunity")
    return SimpleNamespace(
        opps=opps, won=[o for o in opps if o["stage"] == "won"], lost=[o for o in opps if o["stage"] == "lost"],
        open=[o for o in opps if o["stage"] not in ("won", "lost")],
        closed=[o for o in opps if o["stage"] in ("won", "lost")], accounts=seen(who, "account"),
        paid=[p for p in seen(who, "payment_received") if p["received_on"] is not None],
        targets=seen(who, "sales_target"), tickets=seen(who, "ticket"), losses=seen(who, "customer_loss"))


def funnel(opps: list[dict]) -> dict[tuple, dict]:
    """Every stage that is not lost shows, empty or not; the lost stage when it holds records."""
    empty = {(s,): {"count": 0, "opportunities": 0} for s in STAGES[:-1]}
    return empty | grouped(opps, lambda o: (o["stage"],), opportunities=count)


def targets(v: SimpleNamespace, period: str, key: Callable[[dict], tuple]) -> dict[tuple, dict]:
    """The targets of one kind of period (a year's, a month's), summed by `key`."""
    return grouped([t for t in v.targets if t["period_type"] == period], key, target=total("target_amount"))


def by(*names: str, bucket: Callable | None = None) -> Callable[[dict], tuple]:
    """The group key of a record: its values of `names`, the first one bucketed if asked."""
    return lambda r: tuple(bucket(r[n]) if bucket and i == 0 else r[n] for i, n in enumerate(names))


EXPECTED: dict[str, Callable[[SimpleNamespace], dict[tuple, dict]]] = {  # {key values: {"count": n, measure: figure}}
    "sales_funnel": lambda v: funnel(v.opps),
    "pipeline_by_stage": lambda v: grouped(v.open, by("stage"), amount=total("amount"),
                                           weighted=total("expected_revenue")),
    "forecast_by_month": lambda v: grouped(v.open, by("close_date", bucket=month),
                                           weighted=total("expected_revenue"), amount=total("amount")),
    "forecast_by_owner": lambda v: grouped(v.open, by("owner"), weighted=total("expected_revenue"),
                                           amount=total("amount")),
    "won_lost": lambda v: grouped(v.closed, by("stage"), opportunities=count, amount=total("amount")),
    "won_lost_by_owner": lambda v: grouped(v.closed, by("owner", "stage"), opportunities=count),
    "lost_by_reason": lambda v: grouped(v.lost, by("loss_reason"), opportunities=count, amount=total("amount")),
    "won_by_month": lambda v: grouped(v.won, by("close_date", bucket=month), won=total("amount")),
    "rep_performance": lambda v: against(
        grouped(v.won, lambda o: (o["owner"], year(o["close_date"])), won=total("amount")), ["won"],
        targets(v, "year", lambda t: (t["owner"], year(t["period_start"]))), "target"),
    "monthly_attainment": lambda v: against(
        grouped(v.won, by("close_date", bucket=month), won=total("amount")), ["won"],
        targets(v, "month", by("period_start", bucket=month)), "target"),
    "top_customers": lambda v: top(grouped(v.paid, by("account"), received=total("amount")), "received"),
    "top_customers_by_won": lambda v: top(grouped(v.won, by("account"), won=total("amount")), "won"),
    "accounts_by_grade": lambda v: grouped(v.accounts, by("grade"), accounts=count),
    "accounts_by_level": lambda v: grouped(v.accounts, by("level"), accounts=count),
    "accounts_by_region": lambda v: grouped(v.accounts, by("region"), accounts=count),
    "accounts_by_industry": lambda v: grouped(v.accounts, by("industry"), accounts=count),
    "losses_by_cause": lambda v: grouped(v.losses, by("cause"), losses=count,
                                         annual_loss=total("estimated_annual_loss")),
    "losses_by_month": lambda v: grouped(v.losses, by("identified_on", "measure", bucket=month), losses=count),
    "tickets_by_category": lambda v: grouped(v.tickets, by("category"), tickets=count),
    "tickets_by_status": lambda v: grouped(v.tickets, by("status"), tickets=count),
    "resolution_time": lambda v: grouped([t for t in v.tickets if t["resolved_on"]], by("category"),
                                         avg_days=mean("days"), max_days=largest("days"),
                                         avg_close_days=mean("close_days")),
    "tickets_by_month": lambda v: grouped(v.tickets, by("opened_on", bucket=month), tickets=count),
    "satisfaction": lambda v: grouped([t for t in v.tickets if t["satisfaction"]], by("satisfaction"),
                                      tickets=count),
}


def expected(who: str, report: str) -> dict[tuple, dict]:
    """What `report` should show `who`."""
    assert report in EXPECTED, f"no expectation for report {report!r}: add one"
    return EXPECTED[report](view(who))


def top(groups: dict[tuple, dict], measure: str, n: int = 10) -> dict[tuple, dict]:
    return dict(sorted(groups.items(), key=lambda kv: -kv[1][measure])[:n])


# ---- who sees which dashboard, with which reports --------------------------------------------

BOARDS = {
    "sales": ["sales_funnel", "pipeline_by_stage", "forecast_by_owner", "forecast_by_month", "won_lost",
              "lost_by_reason", "rep_performance", "monthly_attainment", "won_lost_by_owner"],
    "customers": ["top_customers", "top_customers_by_won", "accounts_by_grade", "accounts_by_level",
                  "accounts_by_region", "accounts_by_industry", "losses_by_cause", "losses_by_month"],
    "service": ["tickets_by_category", "tickets_by_status", "resolution_time", "satisfaction", "tickets_by_month"],
    "executive": ["sales_funnel", "won_by_month", "forecast_by_month", "rep_performance", "top_customers",
                  "accounts_by_grade", "losses_by_cause", "satisfaction"],
}
BOARDS_OF = {"sam": list(BOARDS), "hu": list(BOARDS), "li": ["sales", "customers", "service"],
             "wang": ["sales", "customers"], "liu": ["service"], "xu": ["customers"], "lin": ["customers"]}
ENTITY_OF = {  # every report of the pack, and the entity it reads
    **dict.fromkeys(["sales_funnel", "pipeline_by_stage", "forecast_by_month", "forecast_by_owner", "won_lost",
                     "won_lost_by_owner", "lost_by_reason", "won_by_month", "rep_performance",
                     "monthly_attainment", "top_customers_by_won"], "opportunity"),
    "top_customers": "payment_received",
    **dict.fromkeys(["accounts_by_grade", "accounts_by_level", "accounts_by_industry", "accounts_by_region"],
                    "account"),
    **dict.fromkeys(["losses_by_cause", "losses_by_month"], "customer_loss"),
    **dict.fromkeys(["tickets_by_category", "tickets_by_status", "resolution_time", "tickets_by_month",
                     "satisfaction"], "ticket"),
}


def reports_shown(who: str, board: str) -> list[str]:
    """A dashboard shows the reports whose entity the reader may read."""
    return [r for r in BOARDS[board] if ENTITY_OF[r] in READS[USERS[who][0]]]


# ---- the world --------------------------------------------------------------------------------

@dataclass
class Crm:
    app: object
    users: dict[str, int]
    tokens: dict[str, str]
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # entity: {code: id}

    def get(self, who: str, path: str):
        return self.app.test_client().get(f"/api/v1{path}", headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def symbols(self, report: dict) -> dict[tuple, dict]:
        """The answer's groups as {key values: {"count": n, measure: figure}}, with users by name
        and accounts by code, so they compare with `expected`."""
        names = {v: k for k, v in self.users.items()}
        codes = {v: k for k, v in self.ids["account"].items()}
        fields = [k["field"] for k in report["keys"]]

        def symbol(name: str, value):
            return names[value] if name == "owner_id" and value is not None else \
                codes[value] if name == "account" and value is not None else value
        return {tuple(symbol(f, k["value"]) for f, k in zip(fields, g["keys"])): {"count": g["count"]} | g["figures"]
                for g in report["groups"]}


@dataclass
class Seeder:
    """Creates the data set as the platform, through the record service, in one context."""

    ctx: records.Context
    users: dict[str, int]
    ids: dict[str, dict[str, int]] = field(
        default_factory=lambda: {"account": {}, "contact": {}, "sales_contract": {}})

    def make(self, entity: str, values: dict) -> dict:
        return records.create_record(self.ctx, entity, values)

    def owner(self, name: str | None) -> int | None:
        return self.users[name] if name else None

    def account(self, code: str) -> int:
        return self.ids["account"][code]

    def customers(self) -> None:
        for a in DATA["account"]:
            self.ids["account"][a["code"]] = self.make("account", {
                "name": f"Account {a['code']}", "code": a["code"], "owner_id": self.owner(a["owner"]),
                "grade": a["grade"], "level": a["level"], "industry": a["industry"], "region": a["region"],
                "annual_revenue": a["annual_revenue"]})["id"]
        for c in DATA["customer_loss"]:
            self.make("customer_loss", {
                "title": f"Loss {c['account']}", "account": self.account(c["account"]),
                "owner_id": self.owner(c["owner"]), "measure": c["measure"], "cause": c["cause"],
                "identified_on": c["identified_on"], "estimated_annual_loss": c["estimated_annual_loss"],
                "measures_taken": "visited", "delayed_until": "2026-06-30", "loss_detail": "moved on",
                "confirmed_on": "2026-03-31"})

    def deals(self) -> None:
        for o in DATA["opportunity"]:  # one contact per account, the primary contact a negotiation needs
            contacts = self.ids["contact"]
            if o["account"] not in contacts:
                contacts[o["account"]] = self.make("contact", {
                    "full_name": f"Buyer {o['account']}", "account": self.account(o["account"]),
                    "owner_id": self.owner(o["owner"])})["id"]
            self.make("opportunity", {
                "name": o["name"], "account": self.account(o["account"]), "owner_id": self.owner(o["owner"]),
                "stage": o["stage"], "amount": o["amount"], "close_date": o["close_date"],
                "loss_reason": o["loss_reason"], "primary_contact": contacts[o["account"]]})
        for t in DATA["sales_target"]:
            self.make("sales_target", {
                "title": f"{t['owner']} {t['period_start']}", "period_type": t["period_type"],
                "period_start": t["period_start"], "period_end": t["period_end"],
                "target_amount": t["target_amount"], "owner_id": self.owner(t["owner"])})

    def payments(self) -> None:
        for p in DATA["payment_received"]:  # one contract per account, large enough for its payments
            code, contracts = p["account"], self.ids["sales_contract"]
            if code not in contracts:
                contracts[code] = self.make("sales_contract", {
                    "title": f"Contract {code}", "account": self.account(code), "amount": 5000000,
                    "owner_id": self.owner(p["owner"])})["id"]
            self.make("payment_received", {
                "title": f"Payment {code}", "contract": contracts[code], "account": self.account(code),
                "amount": p["amount"], "received_on": p["received_on"], "planned_on": "2026-03-31",
                "owner_id": self.owner(p["owner"])})

    def tickets(self) -> None:
        for t in DATA["ticket"]:
            resolved = t["resolved_on"]
            made = self.make("ticket", {
                "subject": f"Ticket {t['ticket_no']}", "ticket_no": t["ticket_no"],
                "account": self.account(t["account"]), "owner_id": self.owner(t["owner"]),
                "assignee": self.owner(t["assignee"]), "category": t["category"], "status": t["status"],
                "opened_on": t["opened_on"], "handling_notes": "looked into it",
                "resolution": "fixed" if resolved else None, "resolved_on": resolved,
                "resolved_at": f"{resolved}T12:00:00Z" if resolved else None, "satisfaction": t["satisfaction"]})
            if t["archived_on"]:  # archiving stamps the time; the data set says when it was
                records.update_record(self.ctx, "ticket", made["id"],
                                      {"archived_at": f"{t['archived_on']}T10:00:00Z"}, made["version"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crm(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACKS / "standard_crm")
        catalogs = CatalogCache()
        with engine.begin() as conn:
            roles = catalogs.current(conn).metadata.roles
            for team in ("east", "south", "service"):
                create_team(conn, team)
            users, tokens = {}, {}
            for name, (role, team) in USERS.items():
                users[name] = create_user(conn, name, [role], roles, team=team)
                set_password(conn, users[name], PASSWORD)
                tokens[name] = create_token(conn, users[name], "tests")[1]
            seeder = Seeder(records.Context.start(conn, catalogs.current(conn), Actor(None)), users)
            seeder.customers()
            seeder.deals()
            seeder.payments()
            seeder.tickets()
        app = create_app(url)
        yield Crm(app, users, tokens, seeder.ids)
        services(app).engine.dispose()
        engine.dispose()


# ---- the tests --------------------------------------------------------------------------------

def test_every_report_and_dashboard_is_declared_and_labelled_in_both_languages():
    sources, problems = read_pack_folders([str(PACKS / "standard_crm")])
    assert problems == []
    metadata = resolve_sources(sources)
    assert set(metadata.reports) == set(ENTITY_OF) and list(metadata.dashboards) == list(BOARDS)
    assert {name: r.entity for name, r in metadata.reports.items()} == ENTITY_OF
    labels = [(r.name, r.label) for r in metadata.reports.values()] + \
        [(f"{r.name}.{m.name}", m.label) for r in metadata.reports.values() for m in r.measures] + \
        [(d.name, d.label) for d in metadata.dashboards.values()]
    assert [name for name, label in labels if not (label and label.en and label.zh)] == []


def test_the_data_set_is_stored_as_seeded(crm):
    """The stored computed fields the reports measure hold what the data set says."""
    with services(crm.app).engine.connect() as conn:
        weighted = dict(conn.execute(sa.text("SELECT name, expected_revenue FROM opportunity")).all())
        days = {row[0]: tuple(row[1:]) for row in conn.execute(
            sa.text("SELECT ticket_no, days_to_resolve, days_to_close FROM ticket"))}
    assert {k: None if v is None else Decimal(v) for k, v in weighted.items()} == \
        {o["name"]: o["expected_revenue"] for o in DATA["opportunity"]}
    assert days == {t["ticket_no"]: (t["days"], t["close_days"]) for t in DATA["ticket"]}


@pytest.mark.parametrize("who", list(BOARDS_OF))
def test_each_reader_is_offered_the_dashboards_of_their_role(crm, who):
    listed = crm.get(who, "/dashboards")
    assert listed.status_code == 200, listed.json
    assert [d["name"] for d in listed.json["data"]] == BOARDS_OF[who]
    offered = {r["name"] for r in crm.get(who, "/reports").json["data"]}
    assert offered == {r for r, entity in ENTITY_OF.items() if entity in READS[USERS[who][0]]}
    for board in set(BOARDS) - set(BOARDS_OF[who]):
        assert crm.get(who, f"/dashboards/{board}").status_code == 404, (who, board)


@pytest.mark.parametrize("who", list(BOARDS_OF))
def test_every_figure_of_every_dashboard_is_that_of_the_records_the_reader_may_read(crm, who):
    spec = crm.app.test_client().get("/api/v1/openapi.json").json
    dashboard = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/Dashboard"} | spec)
    for board in BOARDS_OF[who]:
        answer = crm.get(who, f"/dashboards/{board}")
        assert answer.status_code == 200, answer.json
        dashboard.validate(answer.json)  # as the API document describes it
        assert [r["name"] for r in answer.json["reports"]] == reports_shown(who, board), board
        for report in answer.json["reports"]:
            assert not report["truncated"]
            assert crm.symbols(report) == expected(who, report["name"]), (board, report["name"])


@pytest.mark.parametrize("who", list(BOARDS_OF))
def test_sorted_and_dated_reports_come_in_order(crm, who):
    by_name = {}
    for board in BOARDS_OF[who]:
        by_name |= {r["name"]: r for r in crm.get(who, f"/dashboards/{board}").json["reports"]}

    def keys(name):
        return list(crm.symbols(by_name[name])) if name in by_name else None
    if "sales_funnel" in by_name:
        assert keys("sales_funnel") == [(s,) for s in STAGES if s != "lost" or any(
            o["stage"] == "lost" for o in seen(who, "opportunity"))]
        assert [k["label"] for g in by_name["sales_funnel"]["groups"] for k in g["keys"]] == \
            [STAGE_LABELS[k[0]] for k in keys("sales_funnel")]
    for name, measure in (("top_customers", "received"), ("top_customers_by_won", "won"),
                          ("forecast_by_owner", "weighted")):
        if name in by_name:
            figures = [g["figures"][measure] for g in by_name[name]["groups"]]
            assert figures == sorted(figures, reverse=True) and len(set(figures)) == len(figures), name
    for name in ("forecast_by_month", "won_by_month", "monthly_attainment", "tickets_by_month"):
        if name in by_name:
            months = [k[0] for k in keys(name)]
            assert months == sorted(m for m in months if m) + [None] * months.count(None), name


@pytest.mark.parametrize("who", ["wang", "li", "sam"])
def test_the_funnel_gives_stage_to_stage_conversion_of_the_readers_deals(crm, who):
    funnel = crm.get(who, "/reports/sales_funnel").json
    mine = [o["stage"] for o in seen(who, "opportunity")]
    reached = [sum(mine.count(s) for s in STAGES[i:-1]) for i in range(len(STAGES) - 1)]
    rates = [round(reached[i + 1] / reached[i], 4) if reached[i] else None for i in range(len(STAGES) - 2)]
    assert [(c["from"], c["to"], c["reached_from"], c["reached_to"], c["rate"]) for c in funnel["conversion"]] == [
        (STAGES[i], STAGES[i + 1], reached[i], reached[i + 1], rates[i]) for i in range(len(STAGES) - 2)]


def test_a_rep_sees_only_their_own_figures(crm):
    """Spelled out for one rep, against everyone's: wang's deals, payments, targets, accounts and losses."""
    wang = {r["name"]: crm.symbols(r) for board in ("sales", "customers")
            for r in crm.get("wang", f"/dashboards/{board}").json["reports"]}
    sam = {r["name"]: crm.symbols(r) for r in crm.get("sam", "/dashboards/customers").json["reports"]}
    assert list(wang["top_customers"]) == [("A01",), ("A13",), ("A02",), ("A03",)]
    assert [g["received"] for g in wang["top_customers"].values()] == [320000.0, 150000.0, 80000.0, 5000.0]
    # everyone's top ten leaves out the two smallest payers, A06 and wang's A03
    assert len(sam["top_customers"]) == 10
    assert ("A03",) not in sam["top_customers"] and ("A06",) not in sam["top_customers"]
    assert wang["won_lost"] == {("won",): {"count": 2, "amount": 820000.0, "opportunities": 2},
                                ("lost",): {"count": 1, "amount": 180000.0, "opportunities": 1}}
    assert wang["rep_performance"] == {("wang", "2026"): {"count": 1, "won": 300000.0, "target": 3000000.0},
                                       ("wang", "2025"): {"count": 1, "won": 520000.0, "target": 2000000.0}}
    assert wang["forecast_by_owner"] == {("wang",): {"count": 4, "weighted": 10000 + 12500 + 125000 + 300000.0,
                                                     "amount": 800000.0}}
    # the pool's accounts (A11, A12) count for every rep; the others' accounts do not
    assert sum(g["accounts"] for g in wang["accounts_by_grade"].values()) == 4 + 2
    assert wang["losses_by_cause"] == {("no_recent_order",): {"count": 1, "losses": 1, "annual_loss": 200000.0},
                                       ("price",): {"count": 1, "losses": 1, "annual_loss": 50000.0}}


def test_a_manager_sees_the_team_and_an_agent_the_tickets_they_own_or_handle(crm):
    li = crm.symbols(crm.get("li", "/reports/forecast_by_owner").json)
    assert set(li) == {("li",), ("wang",), ("zhao",)}  # chen is in another team
    liu = crm.symbols(crm.get("liu", "/reports/tickets_by_status").json)
    # owned by liu: T01 T02 T06 T09 T11; assigned to liu: T05 T12 as well
    assert liu == {("archived",): {"count": 4, "tickets": 4}, ("handling",): {"count": 1, "tickets": 1},
                   ("feedback",): {"count": 1, "tickets": 1}, ("created",): {"count": 1, "tickets": 1}}


def test_a_report_on_an_entity_the_reader_may_not_read_is_not_found(crm):
    assert crm.get("lin", "/reports/top_customers").status_code == 404  # marketing reads no payments
    assert crm.get("lin", "/reports/accounts_by_grade").status_code == 200
    assert crm.get("liu", "/reports/sales_funnel").status_code == 404  # agents read no opportunities
    assert crm.get("xu", "/reports/satisfaction").status_code == 404  # finance reads no tickets


def _table(page: str, report: str) -> dict[str, list[str]]:
    start = page.index(f'data-report="{report}"')
    section = page[start:page.index("</section>", start)]
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', section, re.S)
    return {html.unescape(label): [html.unescape(c) for c in re.findall(r'<td class="num">([^<]*)</td>', cells)]
            for label, cells in rows}


def test_the_dashboard_page_shows_the_readers_figures_as_a_table(crm):
    visitor = Visitor(crm.app).sign_in("wang")
    page = visitor.client.get("/dashboards/sales")
    assert page.status_code == 200
    mine = seen("wang", "opportunity")
    reached = {s: sum(1 for o in mine if o["stage"] in STAGES[i:-1]) for i, s in enumerate(STAGES[:-1])}
    rows = {}
    for i, stage in enumerate(STAGES):
        rate = reached[STAGES[i + 1]] / reached[stage] if i < len(STAGES) - 2 and reached[stage] else None
        rows[STAGE_LABELS[stage]] = [str(sum(1 for o in mine if o["stage"] == stage)),
                                     "—" if rate is None else f"{rate * 100:.1f}%"]
    assert _table(page.text, "sales_funnel") == rows
    assert rows["Qualify"] == ["1", "83.3%"] and rows["Closed won"] == ["2", "—"]
    open_amounts = {STAGE_LABELS[s]: money(o["amount"] for o in mine if o["stage"] == s) for s in STAGES[:4]}
    assert _table(page.text, "pipeline_by_stage") == {
        label: [f"{amount:,.2f}", f"{amount * PROBABILITY[stage] / 100:,.2f}"]
        for (label, amount), stage in zip(open_amounts.items(), STAGES) if amount is not None}
