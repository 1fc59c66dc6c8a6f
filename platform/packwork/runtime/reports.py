"""Reports and dashboards declared in packs, run as the actor through the record service.

A report's figures come from `records.aggregate`, one permission-scoped GROUP BY per entity it
reads, so a reader sees exactly the figures of the records their lists show. What a reader may
not see is left out, never estimated:

- a report is *available* to a reader who may read its entity and see every field it groups or
  filters by; any other report answers 404, as if it did not exist;
- a measure of a field hidden from the reader, or of an entity they may not read, is omitted
  (the report keeps its other measures; with none left it is not available).

Conversion rates (`conversion: true`, a report grouped by its entity's stage field): the stages
that are not lost, in pipeline order; *reached(i)* is the number of records at stage i or any
later one; the rate from stage i to i+1 is reached(i+1) / reached(i). Records at lost stages are
not counted, since where they were lost is not known from the stage alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from packwork.errors import NotFound
from packwork.metadata.access import ADMIN_ROLE
from packwork.metadata.filters import FilterError, parse_filter, paths
from packwork.metadata.model import Dashboard, Entity, Measure, Report, ReportKey
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import Aggregate, Context, aggregate
from packwork.runtime.report_labels import RECORDS, bucket_text, key_label, value_labels
from packwork.runtime.report_order import natural_order, sort_groups

MAX_GROUPS = 2000  # groups read per series; beyond, the answer says it is `truncated`
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Series:
    """One query of a report: its own entity, or another's for measures that name one."""

    entity: str
    keys: tuple[ReportKey, ...]
    filter: str | None
    measures: tuple[Measure, ...]


def _readable(ctx: Context, name: str | None) -> Entity | None:
    entity = ctx.catalog.metadata.entities.get(name) if name else None
    if entity is None or entity.hidden or not ctx.access.policy(name).reach("read").granted:
        return None
    return entity


def _sees(ctx: Context, entity: Entity, fields: Iterable[str], filter_text: str | None) -> bool:
    """Whether every field named (and every field the filter names, through references) is one
    the reader may see."""
    wanted = [(entity, name) for name in fields]
    try:
        for path, _ in paths(parse_filter(filter_text)) if filter_text else ():
            current = entity
            for name in path:
                wanted.append((current, name))
                field = current.field(name)
                if field is not None and field.type == "reference":
                    current = _readable(ctx, field.target)
                    if current is None:
                        return False
    except FilterError:
        return False
    return all(_visible(ctx, e, n) for e, n in wanted)


def _visible(ctx: Context, entity: Entity, name: str) -> bool:
    """A system column is visible; a field unless the pack or the reader's role hides it."""
    field = entity.field(name)
    return field is None or not (field.hidden or name in ctx.access.hidden(entity))


def _usable(ctx: Context, report: Report, measure: Measure) -> bool:
    if measure.entity is None:
        entity = ctx.catalog.metadata.entities[report.entity]
        return measure.field is None or _sees(ctx, entity, [measure.field], None)
    other = _readable(ctx, measure.entity)
    return other is not None and _sees(ctx, other, [k.field for k in measure.group_by]
                                       + ([measure.field] if measure.field else []), measure.filter)


def _measures(ctx: Context, report: Report) -> tuple[Measure, ...] | None:
    """The report's measures the reader may see, or None if the report is not available."""
    entity = _readable(ctx, report.entity)
    if entity is None or not _sees(ctx, entity, [k.field for k in report.group_by], report.filter):
        return None
    usable = tuple(m for m in report.measures if _usable(ctx, report, m))
    return usable or None


def reports_for(ctx: Context) -> list[Report]:
    """The reports available to the actor, as the packs declare them."""
    return [r for r in ctx.catalog.metadata.reports.values() if _measures(ctx, r) is not None]


def _available(ctx: Context, name: str) -> tuple[Report, tuple[Measure, ...]]:
    """The report and the measures the actor may see; 404 if it is not available to them."""
    report = ctx.catalog.metadata.reports.get(name)
    measures = _measures(ctx, report) if report is not None else None
    if measures is None:
        raise NotFound(f"there is no report {name!r}")
    return report, measures


def _series(report: Report, measures: tuple[Measure, ...]) -> list[Series]:
    """The report's own series first, then one per other entity, keys and filter."""
    own = (report.entity, report.group_by, report.filter)
    found: dict[tuple, list[Measure]] = {own: []}
    for m in measures:
        found.setdefault(own if m.entity is None else (m.entity, m.group_by, m.filter), []).append(m)
    return [Series(entity, keys, text, tuple(ms)) for (entity, keys, text), ms in found.items()]


def run_report(ctx: Context, name: str) -> dict:
    """The report's groups, each with its key values and labels and its figures, as JSON."""
    report, measures = _available(ctx, name)
    series = _series(report, measures)
    pushed = len(series) == 1 and report.sort is not None and not report.conversion
    groups: dict[tuple, dict] = {}
    truncated = False
    for one in series:
        aggregates = [Aggregate(m.name, m.function, m.field) for m in one.measures]
        rows = aggregate(ctx, one.entity, one.keys, aggregates, ListQuery(filter=one.filter),
                         sort=report.sort if pushed else None,
                         limit=report.limit if pushed and report.limit else MAX_GROUPS + 1)
        truncated |= len(rows) > MAX_GROUPS
        for row in rows[:MAX_GROUPS]:
            values = tuple(bucket_text(k.bucket, v) if k.bucket else v for k, v in zip(one.keys, row.values))
            figures = groups.setdefault(values, {})
            if one is series[0]:
                figures["_count"] = row.count
            figures.update({m.name: row.figures[i] for i, m in enumerate(one.measures)})
    return _answer(ctx, report, measures, groups, truncated)


def _answer(ctx: Context, report: Report, measures: tuple[Measure, ...], groups: dict[tuple, dict],
            truncated: bool) -> dict:
    entity = ctx.catalog.metadata.entities[report.entity]
    language = ctx.actor.language
    if report.conversion:
        for stage in _funnel_stages(entity):
            groups.setdefault((stage,), {})
    labels = [value_labels(ctx, entity, key, {values[i] for values in groups}) for i, key in
              enumerate(report.group_by)]
    ordered = natural_order(entity, report.group_by, list(groups), labels)
    if report.sort is not None:
        ordered = sort_groups(ordered, groups, report.sort, [k.field for k in report.group_by])
    if report.limit:
        ordered = ordered[:report.limit]
    answer = {
        "name": report.name, "label": report.label.get(language), "entity": report.entity, "chart": report.chart,
        "keys": [{"field": k.field, "bucket": k.bucket, "label": key_label(entity, k).get(language)}
                 for k in report.group_by],
        "measures": [_measure_info(ctx, report, m) for m in measures],
        "groups": [{"keys": [{"value": v, "label": labels[i][v]} for i, v in enumerate(values)],
                    "count": groups[values].get("_count", 0),
                    "figures": {m.name: _figure(m, groups[values].get(m.name)) for m in measures}}
                   for values in ordered],
        "truncated": truncated,
    }
    if report.conversion:
        answer["conversion"] = conversion(entity, {values[0]: g.get("_count", 0) for values, g in groups.items()})
    return answer


def _measure_info(ctx: Context, report: Report, measure: Measure) -> dict:
    entity = ctx.catalog.metadata.entities[measure.entity or report.entity]
    label = measure.label or (entity.field(measure.field).label if measure.field else RECORDS)
    return {"name": measure.name, "label": label.get(ctx.actor.language), "function": measure.function,
            "field": measure.field, "entity": entity.name}


def _figure(measure: Measure, value: object) -> int | float | None:
    """A figure as a JSON number: counts whole, other figures to the cent."""
    if value is None:
        return 0 if measure.function == "count" else None
    if isinstance(value, int):
        return value
    return float(Decimal(str(value)).quantize(CENT, ROUND_HALF_UP))


def _funnel_stages(entity: Entity) -> list[str]:
    return [s.name for s in entity.pipeline.stages if s.outcome != "lost"]


def conversion(entity: Entity, counts: dict[object, int]) -> list[dict]:
    """Stage-to-stage conversion over the stages that are not lost (see the module's doc)."""
    stages = _funnel_stages(entity)
    reached = [sum(counts.get(s, 0) for s in stages[i:]) for i in range(len(stages))]
    return [{"from": stages[i], "to": stages[i + 1], "reached_from": reached[i], "reached_to": reached[i + 1],
             "rate": round(reached[i + 1] / reached[i], 4) if reached[i] else None}
            for i in range(len(stages) - 1)]


def dashboards_for(ctx: Context) -> list[Dashboard]:
    """The dashboards the actor sees: theirs by role (all for the platform), with a report
    available to them."""
    return [d for d in ctx.catalog.metadata.dashboards.values() if _sees_dashboard(ctx, d)]


def _sees_dashboard(ctx: Context, dashboard: Dashboard) -> bool:
    roles = ctx.actor.roles
    if dashboard.roles and ctx.actor.user_id is not None and ADMIN_ROLE not in roles \
            and not roles & set(dashboard.roles):
        return False
    reports = ctx.catalog.metadata.reports
    return any(_measures(ctx, reports[item.report]) is not None for item in dashboard.items)


def find_dashboard(ctx: Context, name: str) -> Dashboard:
    dashboard = ctx.catalog.metadata.dashboards.get(name)
    if dashboard is None or not _sees_dashboard(ctx, dashboard):
        raise NotFound(f"there is no dashboard {name!r}")
    return dashboard


def run_dashboard(ctx: Context, name: str) -> dict:
    """The dashboard and each of its reports available to the actor, run."""
    dashboard = find_dashboard(ctx, name)
    reports = ctx.catalog.metadata.reports
    shown = [item for item in dashboard.items if _measures(ctx, reports[item.report]) is not None]
    return {"name": dashboard.name, "label": dashboard.label.get(ctx.actor.language),
            "reports": [{"width": item.width} | run_report(ctx, item.report) for item in shown]}
