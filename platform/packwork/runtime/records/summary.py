"""Counts and sums per group of the records an actor may read: kanban column totals and, later,
dashboards. The same row scope and filters as a list, as one GROUP BY query."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from packwork.errors import BadRequest
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import core
from packwork.runtime.records.core import Context
from packwork.runtime.records.reads import query_filters

SUMMABLE = frozenset({"integer", "decimal", "money", "percent"})


@dataclass(frozen=True, slots=True)
class Group:
    value: object
    count: int
    total: Decimal | int | None  # the sum of `sum_field`, None without one


def summarize(ctx: Context, name: str, group_by: str, sum_field: str | None = None,
              query: ListQuery = ListQuery()) -> list[Group]:
    """One Group per value of `group_by` among the records the actor may read that match
    `query`'s filters. Hidden fields can neither be grouped nor summed (400, as if unknown)."""
    target = core.target_for(ctx, name, "read")
    hidden = ctx.access.hidden(target.entity)
    table = target.table
    group_column = _column(target, group_by, hidden, lambda f: f.type in ("choice", "stage", "boolean",
                                                                         "reference", "user"))
    columns = [group_column, sa.func.count().label("count")]
    if sum_field is not None:
        columns.append(sa.func.sum(_column(target, sum_field, hidden, lambda f: f.value_type in SUMMABLE)))
    where = [table.c.deleted_at.is_(None), *core.scope(ctx, target), *query_filters(ctx, target, query)]
    rows = ctx.conn.execute(sa.select(*columns).where(*where).group_by(group_column)).all()
    return [Group(row[0], row[1], row[2] if sum_field is not None else None) for row in rows]


def _column(target: core.Target, name: str, hidden: frozenset[str], fits) -> sa.Column:
    field = target.entity.field(name)
    if name == "owner_id":
        return target.table.c.owner_id
    if field is None or name in hidden or not field.has_column or field.hidden or not fits(field):
        raise BadRequest(f"cannot group or sum {target.entity.name} by {name!r}",
                         {name: ["cannot be grouped or summed"]})
    return target.table.c[name]
