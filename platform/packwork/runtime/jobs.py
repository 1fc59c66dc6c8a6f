"""Scheduled rules: each runs every N minutes, hours or days over the records its filter
selects, in batches of records, each batch in its own transaction.

A scheduled rule acts as the platform (no user's permissions narrow it), and every change it
makes goes through the record service, so validations, triggers and the audit trail apply.
A record whose change a validation refuses is counted and skipped; a rule that breaks (or meets
a database error) stops its run, and the error is kept in `pw_job_run`. `packwork jobs run` is
the worker: it runs what is due, then sleeps; with Redis, the due rules go through a job queue
first (`runtime.jobqueue`), and each queued run checks again that its rule is still due."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from packwork.errors import RequestError, RuleFailed, ValidationError
from packwork.metadata.filters import parse_filter
from packwork.metadata.model import Rule
from packwork.runtime import records
from packwork.runtime.catalog import Catalog, load_catalog
from packwork.runtime.permissions import Actor
from packwork.runtime.query import FilterContext, compile_filter
from packwork.runtime.settings import current_values
from packwork.runtime.records import business_rules, core
from packwork.runtime.system import pw_job_run

BATCH = 500
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass
class Report:
    rule: str
    visited: int = 0
    changed: int = 0
    refused: int = 0
    messages: list[str] = field(default_factory=list)  # the first refusals, to show
    error: str | None = None


def interval(every: str) -> timedelta:
    """`30m`, `6h`, `1d` (the pack schema allows only these shapes)."""
    number, unit = re.fullmatch(r"([1-9][0-9]*)([mhd])", every).groups()
    return timedelta(**{UNITS[unit]: int(number)})


def due(conn: sa.Connection, catalog: Catalog, now: datetime) -> list[Rule]:
    """Scheduled rules never run, or last started at least their interval ago."""
    started = dict(conn.execute(sa.select(pw_job_run.c.rule, pw_job_run.c.started_at)).all())
    result = []
    for rule in catalog.metadata.rules:
        if rule.kind != "scheduled":
            continue
        last = started.get(rule.name)
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=timezone.utc)  # SQLite keeps UTC without an offset
        if last is None or now - last >= interval(rule.every):
            result.append(rule)
    return result


def run_due(engine: sa.Engine, now: datetime | None = None, batch: int = BATCH) -> list[Report]:
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        catalog = load_catalog(conn)
        rules = due(conn, catalog, now)
    return [run_rule(engine, catalog, rule, now, batch) for rule in rules]


def run_if_due(engine: sa.Engine, name: str, now: datetime | None = None, batch: int = BATCH) -> Report | None:
    """Run the scheduled rule `name` if it is due now, else None: a run queued a while ago may
    find that another worker has run the rule since, or that the pack no longer has it."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        catalog = load_catalog(conn)
        rule = next((r for r in due(conn, catalog, now) if r.name == name), None)
    return None if rule is None else run_rule(engine, catalog, rule, now, batch)


def run_rule(engine: sa.Engine, catalog: Catalog, rule: Rule, now: datetime, batch: int = BATCH) -> Report:
    """Run one scheduled rule over every record its filter selects now."""
    report = Report(rule.name)
    _started(engine, rule.name, now)
    entity = catalog.metadata.entities[rule.entity]
    table = catalog.tables[entity.name]
    compiled = next(c for c in core.rules_of_entity(catalog, entity).scheduled if c.rule.name == rule.name)
    with engine.connect() as conn:  # the settings as they are when the run starts, for `${name}`
        settings = current_values(conn, catalog.metadata)
    context = FilterContext(catalog.metadata, catalog.tables, None, now.date(), now, settings=settings)
    selected = [table.c.deleted_at.is_(None)]
    if rule.filter:
        selected.append(compile_filter(parse_filter(rule.filter), entity, context))
    last_id = 0
    try:
        while True:
            with engine.begin() as conn:
                ctx = records.Context.start(conn, catalog, Actor(None))
                rows = conn.execute(sa.select(table).where(*selected, table.c.id > last_id)
                                    .order_by(table.c.id).limit(batch).with_for_update()).mappings().all()
                if not rows:
                    break
                target = core.target_for(ctx, entity.name)
                batch_changes = []
                for row in rows:
                    report.visited += 1
                    try:
                        changes = business_rules.run_scheduled(ctx, target, compiled, row)
                    except ValidationError as exc:
                        _refused(report, target, row["id"], exc)
                        continue
                    if changes:
                        batch_changes.append((row, changes))
                refused = records.update_read_rows(ctx, entity.name, batch_changes)
                for record_id, exc in refused.items():
                    _refused(report, target, record_id, exc)
                report.changed += len(batch_changes) - len(refused)
                last_id = rows[-1]["id"]
    except RuleFailed as exc:
        report.error = exc.detail
    except sa.exc.SQLAlchemyError as exc:  # the worker goes on to the next rule; the run says why
        report.error = f"database error: {str(exc).splitlines()[0]}"
    _finished(engine, report, now)
    return report


def _refused(report: Report, target: core.Target, record_id: int, exc: RequestError) -> None:
    report.refused += 1
    if len(report.messages) < 20:
        report.messages.append(f"{target.entity.name} {record_id}: {exc.detail} {exc.errors}")


def _started(engine: sa.Engine, rule: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(pw_job_run.delete().where(pw_job_run.c.rule == rule))
        conn.execute(pw_job_run.insert().values(rule=rule, started_at=now, visited=0, changed=0, refused=0))


def _finished(engine: sa.Engine, report: Report, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(pw_job_run.update().where(pw_job_run.c.rule == report.rule).values(
            finished_at=datetime.now(timezone.utc), visited=report.visited, changed=report.changed,
            refused=report.refused, error=report.error))
