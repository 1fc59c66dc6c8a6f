"""Figures per group of the records an actor may read: kanban column totals and report figures.
The same row scope and filters as a list, as one GROUP BY query.

The grouped values (a column, or a date bucketed by month, quarter or year) are computed in an
inner SELECT and grouped by name in the outer one, so an expression is written once and both
databases accept it. Every name is checked against the entity's fields (and the actor's hidden
fields) before it becomes a column; every value is a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from packwork.errors import BadRequest
from packwork.metadata.model import ReportKey, SortKey
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import core
from packwork.runtime.records.core import Context
from packwork.runtime.records.reads import query_filters

SUMMABLE = frozenset({"integer", "decimal", "money", "percent"})
GROUPABLE = frozenset({"choice", "stage", "boolean", "reference", "user"})
DATED = frozenset({"date", "datetime"})
SYSTEM_KEYS = {"owner_id": "user", "created_by": "user", "created_at": "datetime", "updated_at": "datetime"}
FUNCTIONS = {"count": sa.func.count, "sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max}
# count needs no column: COUNT(*) of the group


@dataclass(frozen=True, slots=True)
class Group:
    value: object
    count: int
    total: Decimal | int | None  # the sum of `sum_field`, None without one


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One figure per group: `function` (count, sum, avg, min, max) of `field` (None for count)."""

    name: str
    function: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """One group: its key values (a bucket as an integer: 202403, 20241, 2024), how many
    records it holds, and each aggregate's figure in the order asked."""

    values: tuple
    count: int
    figures: tuple


def summarize(ctx: Context, name: str, group_by: str, sum_field: str | None = None,
              query: ListQuery = ListQuery()) -> list[Group]:
    """One Group per value of `group_by` among the records the actor may read that match
    `query`'s filters. Hidden fields can neither be grouped nor summed (400, as if unknown)."""
    aggregates = (Aggregate("total", "sum", sum_field),) if sum_field is not None else ()
    rows = aggregate(ctx, name, (ReportKey(group_by),), aggregates, query)
    return [Group(row.values[0], row.count, row.figures[0] if aggregates else None) for row in rows]


def aggregate(ctx: Context, name: str, keys: Sequence[ReportKey], aggregates: Sequence[Aggregate],
              query: ListQuery = ListQuery(), *, sort: SortKey | None = None, limit: int | None = None
              ) -> list[Summary]:
    """The groups of the records of `name` the actor may read that match `query`, by `keys`,
    with each aggregate; `sort` (a key's field or an aggregate's name) and `limit` give the top N."""
    target = core.target_for(ctx, name, "read")
    hidden = ctx.access.hidden(target.entity)
    table = target.table
    grouped = [_key_column(ctx, target, key, hidden).label(f"k{i}") for i, key in enumerate(keys)]
    measured = [_measured_column(target, a, hidden).label(f"m{i}") for i, a in enumerate(aggregates)
                if a.function != "count"]
    where = [table.c.deleted_at.is_(None), *core.scope(ctx, target), *query_filters(ctx, target, query)]
    rows = sa.select(*grouped, *measured).where(*where).subquery()
    key_columns = [rows.c[f"k{i}"] for i in range(len(keys))]
    figures = [sa.func.count() if a.function == "count" else FUNCTIONS[a.function](rows.c[f"m{i}"])
               for i, a in enumerate(aggregates)]
    select = sa.select(*key_columns, sa.func.count().label("n"), *figures).group_by(*key_columns)
    if sort is not None:
        select = select.order_by(*_order(sort, keys, aggregates, key_columns, figures))
    if limit is not None:
        select = select.limit(limit)
    width = len(keys)
    return [Summary(tuple(row[:width]), row[width], tuple(row[width + 1:])) for row in ctx.conn.execute(select)]


def _order(sort: SortKey, keys, aggregates, key_columns, figures) -> list[sa.ColumnElement]:
    """The sort column first (NULLs as the smallest values, on both databases), then the keys
    so that ties come out in the same order every time."""
    names = [a.name for a in aggregates]
    if sort.field in names:
        column = figures[names.index(sort.field)]
    elif sort.field in [k.field for k in keys]:
        column = key_columns[[k.field for k in keys].index(sort.field)]
    else:
        raise BadRequest(f"cannot sort by {sort.field!r}", {"sort": [f"{sort.field!r} is not a key or measure"]})
    first = column.desc().nulls_last() if sort.descending else column.asc().nulls_first()
    return [first, *key_columns]


def key_kind(entity, name: str) -> str | None:
    """The type a group key behaves as: a system column's, a field's (its result if computed)."""
    if name in SYSTEM_KEYS:
        return SYSTEM_KEYS[name]
    field = entity.field(name)
    return field.value_type if field is not None else None


def _key_column(ctx: Context, target: core.Target, key: ReportKey, hidden: frozenset[str]) -> sa.ColumnElement:
    kind = key_kind(target.entity, key.field)
    fits = kind in DATED if key.bucket else kind in GROUPABLE
    column = _column(target, key.field, hidden, fits)
    if key.bucket is None:
        return column
    return bucket(column, key.bucket, kind, ctx.conn.dialect.name)


def bucket(column: sa.ColumnElement, size: str, kind: str, dialect: str) -> sa.ColumnElement:
    """A date's bucket as an integer that sorts in time: 202403 (month), 20241 (quarter), 2024.
    Datetimes are bucketed in UTC, as they are stored."""
    if kind == "datetime" and dialect == "postgresql":
        column = sa.func.timezone("UTC", column)  # a timestamptz's fields in UTC, not the session's zone
    year = sa.cast(sa.extract("year", column), sa.Integer)
    if size == "year":
        return year
    month = sa.cast(sa.extract("month", column), sa.Integer)
    if size == "month":
        return year * 100 + month
    if size == "quarter":
        return year * 10 + (month + 2) // 3
    raise BadRequest(f"{size!r} is not a bucket", {"bucket": ["use month, quarter or year"]})


def _measured_column(target: core.Target, measure: Aggregate, hidden: frozenset[str]) -> sa.ColumnElement:
    if measure.function not in FUNCTIONS:
        raise BadRequest(f"{measure.function!r} is not an aggregate", {measure.name: ["unknown function"]})
    return _column(target, measure.field, hidden, key_kind(target.entity, measure.field) in SUMMABLE
                   and measure.field not in SYSTEM_KEYS)


def _column(target: core.Target, name: str | None, hidden: frozenset[str], fits: bool) -> sa.Column:
    if name == "owner_id" and fits:
        return target.table.c.owner_id
    field = target.entity.field(name) if name else None
    if name in SYSTEM_KEYS and fits and field is None:
        return target.table.c[name]
    if field is None or name in hidden or not field.has_column or field.hidden or not fits:
        raise BadRequest(f"cannot group or sum {target.entity.name} by {name!r}",
                         {str(name): ["cannot be grouped or summed"]})
    return target.table.c[name]
