"""Semantic checks of reports and dashboards over resolved metadata; they return problems and
never raise. A report's every name reaches SQL only as a column of its entity's table, so each
must be a field of a suitable type: what may be grouped, bucketed and measured is decided here,
once, at load time, and the runtime trusts it (while still applying the reader's permissions).

Run by the resolver after `checks.check_metadata`. PACK-E050: a name that does not exist;
PACK-E051: a field of the wrong type for its use; PACK-E052: parts of a report that do not fit
together; filters are PACK-E043 as elsewhere."""

from __future__ import annotations

from collections.abc import Iterator

from packwork.metadata.checks import _check_filter  # one filter check for every kind of declaration
from packwork.metadata.model import Dashboard, Entity, Measure, Metadata, Origin, Report, ReportKey
from packwork.metadata.names import identifier_problem
from packwork.metadata.problems import Problem, json_path

GROUPABLE = frozenset({"choice", "stage", "boolean", "reference", "user"})
DATED = frozenset({"date", "datetime"})
MEASURABLE = frozenset({"integer", "decimal", "money", "percent"})
# System columns a report may group by, as the field type they behave like.
SYSTEM_KEYS = {"owner_id": "user", "created_by": "user", "created_at": "datetime", "updated_at": "datetime"}
ONE_KEY_CHARTS = frozenset({"pie", "funnel"})


def _p(code: str, origin: Origin, message: str, *subpath) -> Problem:
    return Problem(code, origin.file, origin.line_of(subpath), json_path(origin.path + subpath), message)


def key_type(entity: Entity, name: str) -> str | None:
    """The type a group key behaves as (a stored computed field's result type), or None."""
    if name in SYSTEM_KEYS:
        return SYSTEM_KEYS[name]
    field = entity.field(name)
    return field.value_type if field is not None and field.has_column else None


def check_reports(metadata: Metadata) -> list[Problem]:
    problems: list[Problem] = []
    for report in metadata.reports.values():
        problems += _check_report(report, metadata)
    for dashboard in metadata.dashboards.values():
        problems += _check_dashboard(dashboard, metadata)
    return problems


def _check_report(report: Report, metadata: Metadata) -> Iterator[Problem]:
    origin = report.origin
    reason = identifier_problem(report.name)
    if reason:
        yield _p("PACK-E030", origin, reason)
    entity = metadata.entities.get(report.entity)
    if entity is None:
        yield _p("PACK-E050", origin, f"reports on entity {report.entity!r}, which no pack declares", "entity")
        return
    yield from _check_keys(report.group_by, entity, origin, ("group_by",))
    if report.filter:
        yield from _check_filter(report.filter, entity, metadata, origin, "filter")
    for measure in report.measures:
        yield from _check_measure(measure, report, entity, metadata)
    yield from _check_shape(report, entity)


def _check_keys(keys: tuple[ReportKey, ...], entity: Entity, origin: Origin, at: tuple) -> Iterator[Problem]:
    seen: set[ReportKey] = set()
    for index, key in enumerate(keys):
        where = at + (index,)
        kind = key_type(entity, key.field)
        field = entity.field(key.field)
        if kind is None and field is not None:
            yield _p("PACK-E051", origin, f"{key.field!r} is computed when read; only a stored computed field "
                     "(store: true) can be grouped by", *where)
        elif kind is None:
            yield _p("PACK-E050", origin, f"groups by {key.field!r}, which is not a field of {entity.name!r}", *where)
        elif kind in DATED and key.bucket is None:
            yield _p("PACK-E051", origin, f"{key.field!r} is a {kind} field: group it by a bucket, e.g. "
                     f"{{field: {key.field}, bucket: month}} (month, quarter or year)", *where)
        elif kind not in DATED and key.bucket is not None:
            yield _p("PACK-E051", origin, f"bucket {key.bucket!r} applies to date and datetime fields, not to "
                     f"{kind} field {key.field!r}", *where)
        elif kind not in DATED | GROUPABLE:
            yield _p("PACK-E051", origin, f"cannot group by {kind} field {key.field!r}; group by a choice, stage, "
                     "boolean, reference, user, date or datetime field, or owner_id", *where)
        if key in seen:
            yield _p("PACK-E052", origin, f"{key.field!r} is a group key twice", *where)
        seen.add(key)


def _check_measure(measure: Measure, report: Report, entity: Entity, metadata: Metadata) -> Iterator[Problem]:
    origin, at = report.origin, ("measures", measure.name)
    reason = identifier_problem(measure.name)
    if reason:
        yield _p("PACK-E030", origin, reason, *at)
    if measure.name in {k.field for k in report.group_by}:
        yield _p("PACK-E052", origin, f"measure {measure.name!r} has the name of a group key; "
                 "`sort` could not tell them apart", *at)
    source = entity
    if measure.entity is not None:
        source = metadata.entities.get(measure.entity)
        if source is None:
            yield _p("PACK-E050", origin, f"measure reads entity {measure.entity!r}, which no pack declares",
                     *at, "entity")
            return
        yield from _check_series_keys(measure, report, entity, source)
        if measure.filter:
            yield from _check_filter(measure.filter, source, metadata, origin.at(*at), "filter")
    elif measure.group_by or measure.filter:
        yield _p("PACK-E052", origin, "`group_by` and `filter` of a measure go with `entity` (another entity's "
                 "series); this measure reads the report's own records", *at)
    if measure.field is not None:
        yield from _check_measured_field(measure, source, origin, at + (measure.function,))


def _check_measured_field(measure: Measure, entity: Entity, origin: Origin, at: tuple) -> Iterator[Problem]:
    field = entity.field(measure.field)
    if field is None:
        yield _p("PACK-E050", origin, f"{measure.function} of {measure.field!r}, which is not a field of "
                 f"{entity.name!r}", *at)
    elif not field.has_column:
        yield _p("PACK-E051", origin, f"{measure.field!r} is computed when read; only a stored computed field "
                 "(store: true) can be measured", *at)
    elif field.value_type not in MEASURABLE:
        yield _p("PACK-E051", origin, f"cannot take the {measure.function} of {field.value_type} field "
                 f"{measure.field!r}; measure an integer, decimal, money or percent field", *at)


def _check_series_keys(measure: Measure, report: Report, entity: Entity, source: Entity) -> Iterator[Problem]:
    origin, at = report.origin, ("measures", measure.name, "group_by")
    if len(measure.group_by) != len(report.group_by):
        yield _p("PACK-E052", origin, f"a measure of entity {source.name!r} needs `group_by` with "
                 f"{len(report.group_by)} key(s), one for each of the report's", *at)
        return
    problems = list(_check_keys(measure.group_by, source, origin, at))
    yield from problems
    if problems:
        return
    for index, (ours, theirs) in enumerate(zip(report.group_by, measure.group_by)):
        if _kind_of(entity, ours) != _kind_of(source, theirs):
            yield _p("PACK-E052", origin, f"{source.name}.{theirs.field} does not group like the report's key "
                     f"{entity.name}.{ours.field} (same kind of value, same options, same bucket)", *at, index)


def _kind_of(entity: Entity, key: ReportKey) -> tuple:
    """What two group keys must share for their groups to be the same groups."""
    kind = key_type(entity, key.field)
    field = entity.field(key.field)
    if kind in DATED:
        return ("date", key.bucket)
    if kind == "reference":
        return (kind, field.target)
    if kind in ("choice", "stage"):
        return ("choice", frozenset(c.value for c in field.choices))
    return (kind,)


def _check_shape(report: Report, entity: Entity) -> Iterator[Problem]:
    origin = report.origin
    if report.chart in ONE_KEY_CHARTS and len(report.group_by) != 1:
        yield _p("PACK-E052", origin, f"a {report.chart} chart shows one group key, not {len(report.group_by)}",
                 "chart")
    if report.conversion:
        key = report.group_by[0]
        if len(report.group_by) != 1 or entity.pipeline is None or key.field != entity.pipeline.field:
            yield _p("PACK-E052", origin, "conversion rates need the report grouped by one key: the stage field of "
                     f"{entity.name!r}'s pipeline", "conversion")
    if report.sort is not None:
        names = {m.name for m in report.measures} | {k.field for k in report.group_by}
        if report.sort.field not in names:
            yield _p("PACK-E050", origin, f"sorts by {report.sort.field!r}, which is neither a measure nor a group "
                     f"key of the report ({', '.join(sorted(names))})", "sort")


def _check_dashboard(dashboard: Dashboard, metadata: Metadata) -> Iterator[Problem]:
    origin = dashboard.origin
    reason = identifier_problem(dashboard.name)
    if reason:
        yield _p("PACK-E030", origin, reason)
    seen: set[str] = set()
    for index, item in enumerate(dashboard.items):
        if item.report not in metadata.reports:
            yield _p("PACK-E050", origin, f"shows report {item.report!r}, which no pack declares", "reports", index)
        elif item.report in seen:
            yield _p("PACK-E052", origin, f"shows report {item.report!r} twice", "reports", index)
        seen.add(item.report)
    for index, role in enumerate(dashboard.roles):
        if role not in metadata.roles:
            yield _p("PACK-E050", origin, f"role {role!r} is not declared", "roles", index)
