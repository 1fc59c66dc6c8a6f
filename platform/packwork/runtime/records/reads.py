"""Reading records: lists (filtered, sorted, paged by keyset), single records, history, export.
Every read is limited by the actor's row scope in SQL and masked by their field security."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import sqlalchemy as sa

from packwork.errors import BadRequest
from packwork.metadata.filters import Compare, FilterError, parse_filter
from packwork.metadata.model import Entity
from packwork.runtime import audit
from packwork.runtime.listing import MAX_LIMIT, ListQuery, after, decode_cursor, encode_cursor, nulls_largest, \
    order_by, parse_sort
from packwork.runtime.query import compile_filter, field_type
from packwork.runtime.records import core
from packwork.runtime.records.core import Context, Page, Target
from packwork.runtime.system import pw_user
from packwork.runtime.values import iso_datetime


def list_records(ctx: Context, name: str, query: ListQuery = ListQuery(), action: str = "read") -> Page:
    """A page of the records the actor may read (and, for `action` "export", export)."""
    target = core.target_for(ctx, name, "read")
    if action != "read":
        ctx.access.require(action, target.entity)
    table, hidden = target.table, core.hidden_keys(ctx, target)
    where = [table.c.deleted_at.is_(None), *core.scope(ctx, target), *query_filters(ctx, target, query)]
    if action != "read":
        where += core.scope(ctx, target, action)
    on_read = target.values.computed_on_read
    kinds = {key: kind for key in target.values.output_keys - on_read if key not in hidden
             and (kind := field_type(target.entity, key)) is not None}
    keys = parse_sort(query.sort, target.entity, kinds)
    rows, data, more = read_page(ctx, target, where, keys, query, hidden)
    return Page(data, encode_cursor(keys, rows[-1]) if more else None,
                count_matches(ctx, table, where, query, len(rows), more))


def read_page(ctx: Context, target: Target, where: list, keys: list, query: ListQuery,
              hidden: frozenset[str]) -> tuple[list, list[dict], bool]:
    """The rows `where` selects in the order of `keys`, after `query.after`, at most
    `query.limit`: (the rows, them as JSON-ready records shaped by `query`, whether more follow)."""
    table, on_read = target.table, target.values.computed_on_read
    shown = sparse(target, query.fields, hidden)
    read = shown - on_read if not shown & on_read else target.values.output_keys - on_read  # formulas' inputs
    columns = [table.c[k] for k in sorted(read | {k.column for k in keys})]
    select = sa.select(*columns).where(*where)
    if query.after:
        select = select.where(after(table, keys, decode_cursor(query.after, keys),
                                    nulls_largest(ctx.conn.dialect)))
    rows = ctx.conn.execute(select.order_by(*order_by(table, keys)).limit(query.limit + 1)).mappings().all()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    data = target.values.dump_rows(rows, shown)
    core.with_computed(ctx, target, rows, data, shown)
    expand_references(ctx, target, data, query.expand, hidden)
    return rows, data, more


def count_matches(ctx: Context, table: sa.Table, where: list, query: ListQuery, shown: int, more: bool) -> int | None:
    """The matching records: exactly if `count`; up to `count_up_to` + 1 (meaning "more than
    count_up_to") if that is set, which reads at most that many index entries; else None."""
    if query.count:
        return ctx.conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
    if query.count_up_to is None:
        return None
    if not more and not query.after:
        return shown  # the first page holds them all
    capped = sa.select(table.c.id).where(*where).limit(query.count_up_to + 1).subquery()
    return ctx.conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar()


def get_record(ctx: Context, name: str, record_id: int, expand: Iterable[str] = ()) -> dict:
    target = core.target_for(ctx, name, "read")
    row = core.fetch(ctx, target, record_id)
    data = [core.dump(ctx, target, row)]
    expand_references(ctx, target, data, tuple(expand), core.hidden_keys(ctx, target))
    return data[0]


def allowed_actions(ctx: Context, name: str, record_id: int, actions: Iterable[str]) -> dict[str, bool]:
    """Which of `actions` the actor may take on this record (which buttons a page offers): the
    same grants and row scopes the writes check. 404 unless the actor may read the record."""
    target = core.target_for(ctx, name, "read")
    row = core.fetch(ctx, target, record_id)
    policy = ctx.access.policy(name)
    return {action: policy.reach(action).granted and
            core.within(ctx, target, row, ctx.access.rows(action, target.entity, target.table))
            for action in actions}


def history(ctx: Context, name: str, record_id: int) -> list[dict]:
    target = core.target_for(ctx, name, "read")
    core.fetch(ctx, target, record_id, deleted_too=True)
    entries = audit.history(ctx.conn, name, record_id)
    # a field hidden for everyone (by a pack or an administrator) leaves the history too
    hidden = core.hidden_keys(ctx, target) | target.values.keys_of(
        frozenset(f.name for f in target.entity.fields if f.hidden))
    for entry in entries:
        entry["changes"] = {k: v for k, v in entry["changes"].items() if k not in hidden}
        entry["at"] = iso_datetime(entry["at"])
    return entries


def query_filters(ctx: Context, target: Target, query: ListQuery) -> list[sa.ColumnElement]:
    """The `filter` expression and each `field=value` shorthand, compiled; 400 naming the bad one."""
    context, compiled = core.filter_context(ctx), []
    sources = [("filter", query.filter)] if query.filter else []
    sources += [(key, value) for key, value in query.equals]
    for source, text in sources:
        try:
            tree = parse_filter(text) if source == "filter" else _equality(target.entity, source, text)
            compiled.append(compile_filter(tree, target.entity, context))
        except FilterError as exc:
            raise BadRequest(f"{source}: {exc}", {source: [str(exc)]}) from None
    return compiled


def _equality(entity: Entity, key: str, value: str) -> Compare:
    """`?industry=retail` as `industry = 'retail'`; an empty value means null."""
    path = tuple(key.split("."))
    if value == "":
        return Compare(path, "=", None, 0)
    if len(path) == 1 and field_type(entity, key) == "boolean":
        return Compare(path, "=", {"true": True, "false": False}.get(value, value), 0)
    return Compare(path, "=", value, 0)


def sparse(target: Target, fields: tuple[str, ...] | None, hidden: frozenset[str]) -> frozenset[str]:
    visible = target.values.output_keys - hidden
    if fields is None:
        return visible
    unknown = [f for f in fields if f not in visible]
    if unknown:
        raise BadRequest(f"{target.entity.name!r} has no field {unknown[0]!r}",
                         {"fields": [f"{n!r} is not a field of {target.entity.name!r}" for n in unknown]})
    return frozenset(fields) | {"id", "version"}


def expand_references(ctx: Context, target: Target, data: list[dict], names: tuple[str, ...],
                      hidden: frozenset[str]) -> None:
    """Replace each named reference's id by the record it points at (one query per name)."""
    for name in names:
        field = target.entity.field(name)
        if field is None or field.type not in ("reference", "user") or name in hidden:
            raise BadRequest(f"cannot expand {name!r}", {"expand": [f"{name!r} is not a reference field"]})
        ids = {row[name] for row in data if row.get(name) is not None}
        if not ids:
            continue
        if field.type == "user":
            rows = ctx.conn.execute(sa.select(pw_user.c.id, pw_user.c.username, pw_user.c.display_name)
                                    .where(pw_user.c.id.in_(ids))).mappings()
            found = {row["id"]: dict(row) for row in rows}
        else:
            linked = core.target_for(ctx, field.target)
            if not ctx.access.policy(linked.entity.name).reach("read").granted:
                continue  # the actor may read none of them: the ids stay ids
            rows = ctx.conn.execute(sa.select(linked.table).where(linked.table.c.id.in_(ids),
                                                                  *core.scope(ctx, linked))).mappings()
            found = {row["id"]: core.dump(ctx, linked, row) for row in rows}
        for row in data:
            if row.get(name) in found:
                row[name] = found[row[name]]


def export_records(ctx: Context, name: str, query: ListQuery = ListQuery()) -> tuple[list[str], Iterator[dict]]:
    """The columns and every record the actor may export that matches `query`, fetched page by
    page and masked like a list. The records are read as the iterator is consumed."""
    target = core.target_for(ctx, name, "export")
    shown = sparse(target, query.fields, core.hidden_keys(ctx, target))
    columns = [c.key for c in target.values.output if c.key in shown]
    return columns, _pages(ctx, name, replace(query, limit=MAX_LIMIT, count=False))


def _pages(ctx: Context, name: str, query: ListQuery) -> Iterator[dict]:
    while True:
        page = list_records(ctx, name, query, action="export")
        yield from page.data
        if page.next is None:
            return
        query = replace(query, after=page.next)
