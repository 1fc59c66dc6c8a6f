"""The record service: the one path by which anything reads or writes an entity's records.

UI, API, import, export, jobs and rules all call these functions. Each write runs, in order:
permission check -> coercion and validation from metadata -> rules hook -> SQL -> audit entry,
all inside the caller's transaction, so a refused or failed write leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

from packwork.errors import BadRequest, Conflict, NotFound, PreconditionRequired, RequestError, ValidationError
from packwork.metadata.filters import Compare, FilterError, parse_filter
from packwork.metadata.model import Entity
from packwork.runtime import audit, permissions
from packwork.runtime.catalog import Catalog
from packwork.runtime.listing import ListQuery, after, decode_cursor, encode_cursor, nulls_largest, order_by, \
    parse_sort
from packwork.runtime.permissions import Actor
from packwork.runtime.query import FilterContext, compile_filter, field_type
from packwork.runtime.system import pw_user
from packwork.runtime.values import INT64, EntityValues, iso_datetime

MAX_BULK = 500


@dataclass(frozen=True, slots=True)
class Context:
    """What one unit of work runs with: a connection inside a transaction, the catalog of the
    metadata version it serves, who acts, and the time it started."""

    conn: sa.Connection
    catalog: Catalog
    actor: Actor
    now: datetime

    @classmethod
    def start(cls, conn: sa.Connection, catalog: Catalog, actor: Actor) -> "Context":
        return cls(conn, catalog, actor, datetime.now(timezone.utc))


@dataclass(frozen=True, slots=True)
class Page:
    data: list[dict]
    next: str | None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    entity: Entity
    table: sa.Table
    values: EntityValues


def _entity(ctx: Context, name: str) -> Entity:
    entity = ctx.catalog.entity(name)
    if entity is None or entity.hidden:
        raise NotFound(f"there is no entity {name!r}")
    return entity


def entity_for(ctx: Context, name: str) -> Entity:
    """The entity `name` names, if the actor may read it; 404 otherwise."""
    entity = _entity(ctx, name)
    permissions.check(ctx.actor, "read", entity)
    return entity


def _target(ctx: Context, name: str) -> _Target:
    entity = _entity(ctx, name)
    return _Target(entity, ctx.catalog.tables[name], ctx.catalog.values(entity))


# --- reading -------------------------------------------------------------------------------

def list_records(ctx: Context, name: str, query: ListQuery = ListQuery()) -> Page:
    target = _target(ctx, name)
    permissions.check(ctx.actor, "read", target.entity)
    table, hidden = target.table, permissions.hidden_fields(ctx.actor, target.entity)
    where = [table.c.deleted_at.is_(None), *_scope(ctx, target), *_filters(ctx, target, query)]
    kinds = {key: kind for key in target.values.output_keys if key not in hidden
             and (kind := field_type(target.entity, key)) is not None}
    keys = parse_sort(query.sort, target.entity, kinds)
    shown = _sparse(target, query.fields, hidden)
    columns = [table.c[k] for k in sorted(shown | {k.column for k in keys})]
    select = sa.select(*columns).where(*where)
    if query.after:
        select = select.where(after(table, keys, decode_cursor(query.after, keys),
                                    nulls_largest(ctx.conn.dialect)))
    rows = ctx.conn.execute(select.order_by(*order_by(table, keys)).limit(query.limit + 1)).mappings().all()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    data = target.values.dump_rows(rows, shown)
    _expand(ctx, target, data, query.expand, hidden)
    count = ctx.conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar() \
        if query.count else None
    return Page(data, encode_cursor(keys, rows[-1]) if more else None, count)


def get_record(ctx: Context, name: str, record_id: int, expand: Iterable[str] = ()) -> dict:
    target = _target(ctx, name)
    permissions.check(ctx.actor, "read", target.entity)
    row = _fetch(ctx, target, record_id)
    data = [_dump(ctx, target, row)]
    _expand(ctx, target, data, tuple(expand), permissions.hidden_fields(ctx.actor, target.entity))
    return data[0]


def history(ctx: Context, name: str, record_id: int) -> list[dict]:
    target = _target(ctx, name)
    permissions.check(ctx.actor, "read", target.entity)
    _fetch(ctx, target, record_id, deleted_too=True)
    entries = audit.history(ctx.conn, name, record_id)
    hidden = permissions.hidden_fields(ctx.actor, target.entity)
    for entry in entries:
        entry["changes"] = {k: v for k, v in entry["changes"].items() if k not in hidden}
        entry["at"] = iso_datetime(entry["at"])
    return entries


def _fetch(ctx: Context, target: _Target, record_id: int, *, deleted_too: bool = False,
           for_update: bool = False) -> Mapping:
    if not 1 <= record_id <= INT64:
        raise NotFound(f"{target.entity.name} {record_id} does not exist")
    select = ctx.catalog.statements(target.entity.name).by_id
    scope = _scope(ctx, target)
    if scope:
        select = select.where(*scope)
    if for_update:
        select = select.with_for_update()
    row = ctx.conn.execute(select, {"record_id": record_id}).mappings().first()
    if row is None or (row["deleted_at"] is not None and not deleted_too):
        state = "is deleted" if row is not None else "does not exist"
        raise NotFound(f"{target.entity.name} {record_id} {state}")
    return row


def _dump(ctx: Context, target: _Target, row: Mapping) -> dict:
    hidden = permissions.hidden_fields(ctx.actor, target.entity)
    return target.values.dump(row, None if not hidden else target.values.output_keys - hidden)


def _scope(ctx: Context, target: _Target) -> list[sa.ColumnElement]:
    scope = permissions.row_scope(ctx.actor, target.entity, target.table)
    return [] if scope is None else [scope]


def _filter_context(ctx: Context) -> FilterContext:
    catalog, actor = ctx.catalog, ctx.actor
    return FilterContext(
        catalog.metadata, catalog.tables, actor.user_id, ctx.now.date(), ctx.now,
        scope=lambda name, table: permissions.row_scope(actor, catalog.metadata.entities[name], table),
        hidden=lambda name, field: field in permissions.hidden_fields(actor, catalog.metadata.entities[name]))


def _filters(ctx: Context, target: _Target, query: ListQuery) -> list[sa.ColumnElement]:
    """The `filter` expression and each `field=value` shorthand, compiled; 400 naming the bad one."""
    context, compiled = _filter_context(ctx), []
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


def _sparse(target: _Target, fields: tuple[str, ...] | None, hidden: frozenset[str]) -> frozenset[str]:
    visible = target.values.output_keys - hidden
    if fields is None:
        return visible
    unknown = [f for f in fields if f not in visible]
    if unknown:
        raise BadRequest(f"{target.entity.name!r} has no field {unknown[0]!r}",
                         {"fields": [f"{n!r} is not a field of {target.entity.name!r}" for n in unknown]})
    return frozenset(fields) | {"id", "version"}


def _expand(ctx: Context, target: _Target, data: list[dict], names: tuple[str, ...],
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
            linked = _target(ctx, field.target)
            rows = ctx.conn.execute(sa.select(linked.table).where(linked.table.c.id.in_(ids),
                                                                  *_scope(ctx, linked))).mappings()
            found = {row["id"]: _dump(ctx, linked, row) for row in rows}
        for row in data:
            if row.get(name) in found:
                row[name] = found[row[name]]


# --- writing -------------------------------------------------------------------------------

def create_record(ctx: Context, name: str, data: object) -> dict:
    target = _target(ctx, name)
    return _insert(ctx, target, data)


def update_record(ctx: Context, name: str, record_id: int, data: object, version: int | None = None) -> dict:
    """Apply `data` to the record if it still has `version` (from If-Match or the body's
    `version`); otherwise refuse with the current record, so nothing is silently overwritten."""
    target = _target(ctx, name)
    return _update(ctx, target, record_id, data, version)


def delete_record(ctx: Context, name: str, record_id: int, version: int | None = None) -> None:
    """Soft delete: the row stays (restorable) but leaves every list and reference check."""
    target = _target(ctx, name)
    permissions.check(ctx.actor, "delete", target.entity)
    row = _fetch(ctx, target, record_id, for_update=True)
    permissions.check(ctx.actor, "delete", target.entity, dict(row))
    if version is not None and version != row["version"]:
        raise _stale(ctx, target, row)
    _write_row(ctx, target, row, {"deleted_at": ctx.now}, "delete")


def restore_record(ctx: Context, name: str, record_id: int) -> dict:
    target = _target(ctx, name)
    permissions.check(ctx.actor, "restore", target.entity)
    row = _fetch(ctx, target, record_id, deleted_too=True, for_update=True)
    if row["deleted_at"] is None:
        raise Conflict(f"{name} {record_id} is not deleted")
    _check_unique(ctx, target, {k: row[k] for k in target.values.unique}, record_id)
    return _write_row(ctx, target, row, {"deleted_at": None}, "restore")


def bulk_write(ctx: Context, name: str, rows: object) -> list[dict]:
    """Create (rows without `id`) or update (rows with `id` and `version`) many records, all or
    nothing: if any row is refused, every row's problems are reported and none is kept (the
    caller's transaction rolls back)."""
    target = _target(ctx, name)
    if not isinstance(rows, list) or not rows or len(rows) > MAX_BULK:
        raise BadRequest(f"the body must be a JSON array of 1 to {MAX_BULK} objects")
    results, errors = [], {}
    for index, row in enumerate(rows):
        try:
            if isinstance(row, Mapping) and "id" in row:
                changes = {k: v for k, v in row.items() if k != "id"}
                results.append(_update(ctx, target, _record_id(row["id"]), changes, None))
            else:
                results.append(_insert(ctx, target, row))
        except RequestError as exc:
            messages = exc.errors or {"_": [exc.detail]}
            errors |= {f"{index}.{field}": list(m) for field, m in messages.items()}
    if errors:
        rows_named = sorted({int(key.split(".")[0]) for key in errors})
        raise ValidationError(f"nothing was written: row(s) {', '.join(map(str, rows_named))} refused", errors)
    return results


def _record_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("id must be a positive integer", {"id": ["must be a positive integer"]})
    return value


def _insert(ctx: Context, target: _Target, data: object) -> dict:
    permissions.check(ctx.actor, "create", target.entity)
    values = target.values.load(data, creating=True)
    values.setdefault("owner_id", ctx.actor.user_id)
    if target.entity.record_types and values.get("record_type") is None:
        values["record_type"] = target.entity.record_types[0].name
    _check_links(ctx, target, values, None)
    run_rules(ctx, target.entity, "create", values, None)
    system = {"created_at": ctx.now, "updated_at": ctx.now, "created_by": ctx.actor.user_id, "version": 1}
    row = ctx.conn.execute(ctx.catalog.statements(target.entity.name).insert,
                           values | system).mappings().one()
    changes = {k: [None, target.values.json_value(k, row[k])] for k in values if row[k] is not None}
    audit.record_change(ctx.conn, target.entity.name, row["id"], "create", ctx.actor.user_id, ctx.now, changes)
    return _dump(ctx, target, row)


def _update(ctx: Context, target: _Target, record_id: int, data: object, version: int | None) -> dict:
    permissions.check(ctx.actor, "update", target.entity)
    if isinstance(data, Mapping) and "version" in data:
        data = dict(data)
        body_version = data.pop("version")
        if isinstance(body_version, bool) or not isinstance(body_version, int):
            raise BadRequest("version must be an integer", {"version": ["must be an integer"]})
        if version is not None and body_version != version:
            raise BadRequest("If-Match and the body's version disagree", {"version": ["disagrees with If-Match"]})
        version = body_version
    if version is None:
        raise PreconditionRequired(
            "send the version you read, in If-Match or as `version` in the body",
            {"version": ["is required to update"]})
    values = target.values.load(data, creating=False)
    row = _fetch(ctx, target, record_id, for_update=True)
    permissions.check(ctx.actor, "update", target.entity, dict(row))
    if row["version"] != version:
        raise _stale(ctx, target, row)
    changed = {k: v for k, v in values.items() if not _unchanged(row[k], v)}
    if not changed:
        return _dump(ctx, target, row)
    _check_links(ctx, target, changed, record_id)
    run_rules(ctx, target.entity, "update", changed, row)
    return _write_row(ctx, target, row, changed, "update")


def _write_row(ctx: Context, target: _Target, row: Mapping, changed: dict, action: str) -> dict:
    table = target.table
    new = ctx.conn.execute(
        table.update().where(table.c.id == row["id"], table.c.version == row["version"])
        .values(**changed, updated_at=ctx.now, version=row["version"] + 1)
        .returning(*table.c)).mappings().first()
    if new is None:  # another writer got in between the read and this update
        raise _stale(ctx, target, _fetch(ctx, target, row["id"], deleted_too=True))
    convert = target.values.json_value
    changes = {k: [convert(k, row[k]), convert(k, new[k])] for k in changed}
    audit.record_change(ctx.conn, target.entity.name, row["id"], action, ctx.actor.user_id, ctx.now, changes)
    return _dump(ctx, target, new)


def _stale(ctx: Context, target: _Target, row: Mapping) -> Conflict:
    return Conflict(f"{target.entity.name} {row['id']} has changed since the version you sent; it is now "
                    f"version {row['version']}", {"version": [f"is stale; current is {row['version']}"]},
                    current=_dump(ctx, target, row))


def _unchanged(old: object, new: object) -> bool:
    if isinstance(old, float) or isinstance(new, float):
        return old is not None and new is not None and float(old) == float(new)
    if isinstance(old, datetime) and isinstance(new, datetime) and old.tzinfo is None:
        return old == new.replace(tzinfo=None)  # SQLite hands back UTC without an offset
    if isinstance(old, date) is not isinstance(new, date):
        return False
    return old == new


def _check_links(ctx: Context, target: _Target, values: dict, record_id: int | None) -> None:
    """References must point at live records the actor can see; unique values must be free."""
    errors: dict[str, list[str]] = {}
    for name, linked in target.values.references.items():
        value = values.get(name)
        if value is None or (name == "owner_id" and value == ctx.actor.user_id):
            continue  # the actor exists: the request was authenticated as them
        if linked == "pw_user":
            found = ctx.conn.execute(sa.select(pw_user.c.id).where(pw_user.c.id == value)).first()
        else:
            other = _target(ctx, linked)
            found = ctx.conn.execute(sa.select(other.table.c.id).where(
                other.table.c.id == value, other.table.c.deleted_at.is_(None), *_scope(ctx, other))).first()
        if found is None:
            errors[name] = [f"there is no {'user' if linked == 'pw_user' else linked} {value}"]
    if errors:
        raise ValidationError("some references point at nothing", errors)
    _check_unique(ctx, target, {k: values[k] for k in target.values.unique if values.get(k) is not None},
                  record_id)


def _check_unique(ctx: Context, target: _Target, values: Mapping, record_id: int | None) -> None:
    table, errors = target.table, {}
    for name, value in values.items():
        if value is None:
            continue
        clash = ctx.conn.execute(sa.select(table.c.id).where(
            table.c[name] == value, table.c.deleted_at.is_(None),
            table.c.id != (record_id or 0)).limit(1)).scalar()
        if clash is not None:
            errors[name] = [f"{value!r} is already used by {target.entity.name} {clash}"]
    if errors:
        raise Conflict("a unique value is already taken", errors)


def run_rules(ctx: Context, entity: Entity, event: str, values: dict, old: Mapping | None) -> None:
    """The rules hook: validation and trigger rules run here, in the write's transaction.
    A no-op until the rules engine lands; it may then change `values` or raise ValidationError."""

