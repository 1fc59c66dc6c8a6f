"""What every record operation shares: the unit of work's context, the entity it targets, and
the reads that enforce the actor's reach (a record out of reach is answered 404, as if it did
not exist; a write out of reach, 403)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import Conflict, NotFound, PermissionDenied, RuleFailed
from packwork.metadata.model import Entity
from packwork.rules import engine
from packwork.rules.sandbox import RuleError
from packwork.runtime.catalog import Catalog
from packwork.runtime.permissions import Access, Actor
from packwork.runtime.query import FilterContext
from packwork.runtime.settings import Settings
from packwork.runtime.values import INT64, EntityValues


@dataclass(frozen=True, slots=True)
class Context:
    """What one unit of work runs with: a connection inside a transaction, the catalog of the
    metadata version it serves, who acts (and what they may do), the time it started, and the
    pack settings' values (read when first used)."""

    conn: sa.Connection
    catalog: Catalog
    actor: Actor
    now: datetime
    access: Access
    settings: Settings

    @classmethod
    def start(cls, conn: sa.Connection, catalog: Catalog, actor: Actor) -> "Context":
        now = datetime.now(timezone.utc)
        settings = Settings(conn, catalog.metadata)
        return cls(conn, catalog, actor, now, Access(conn, catalog, actor, now, settings), settings)


@dataclass(frozen=True, slots=True)
class Page:
    data: list[dict]
    next: str | None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    entity: Entity
    table: sa.Table
    values: EntityValues


def find_entity(ctx: Context, name: str) -> Entity:
    entity = ctx.catalog.entity(name)
    if entity is None or entity.hidden:
        raise NotFound(f"there is no entity {name!r}")
    return entity


def entity_for(ctx: Context, name: str) -> Entity:
    """The entity `name` names, if the actor may read it: 404 if there is none, 403 if the
    actor may read none of its records."""
    entity = find_entity(ctx, name)
    ctx.access.require("read", entity)
    return entity


def target_for(ctx: Context, name: str, action: str | None = None) -> Target:
    """The entity, its table and value schemas; 403 unless `action` is granted on it."""
    entity = find_entity(ctx, name)
    if action is not None:
        ctx.access.require(action, entity)
    return Target(entity, ctx.catalog.tables[name], ctx.catalog.values(entity))


def hidden_keys(ctx: Context, target: Target) -> frozenset[str]:
    """The output keys the actor may not see (a money field hides its currency too)."""
    return target.values.keys_of(ctx.access.hidden(target.entity))


def fetch(ctx: Context, target: Target, record_id: int, *, deleted_too: bool = False,
          for_update: bool = False) -> Mapping:
    """A record the actor may read, or 404 exactly as if it did not exist (no existence leak)."""
    if not 1 <= record_id <= INT64:
        raise NotFound(f"{target.entity.name} {record_id} does not exist")
    select = ctx.catalog.statements(target.entity.name).by_id
    limits = scope(ctx, target)
    if limits:
        select = select.where(*limits)
    if for_update:
        select = select.with_for_update()
    row = ctx.conn.execute(select, {"record_id": record_id}).mappings().first()
    if row is None or (row["deleted_at"] is not None and not deleted_too):
        state = "is deleted" if row is not None else "does not exist"
        raise NotFound(f"{target.entity.name} {record_id} {state}")
    return row


def require_row(ctx: Context, target: Target, row: Mapping, action: str) -> None:
    """403 unless the record is within the actor's reach for `action`."""
    if not within(ctx, target, row, ctx.access.rows(action, target.entity, target.table)):
        raise PermissionDenied(f"you may not {action} {target.entity.name} {row['id']}")


def within(ctx: Context, target: Target, row: Mapping, predicate: sa.ColumnElement | None) -> bool:
    table = target.table
    return predicate is None or ctx.conn.execute(
        sa.select(table.c.id).where(table.c.id == row["id"], predicate)).first() is not None


def dump(ctx: Context, target: Target, row: Mapping) -> dict:
    return dump_many(ctx, target, [row])[0]


def dump_many(ctx: Context, target: Target, rows: list[Mapping]) -> list[dict]:
    """Rows as the actor may see them, as JSON-ready values."""
    shown = target.values.output_keys - hidden_keys(ctx, target)
    data = target.values.dump_rows(rows, shown)
    with_computed(ctx, target, rows, data, shown)
    return data


def rules_of_entity(catalog: Catalog, entity: Entity) -> engine.EntityRules:
    """The entity's rules compiled, once per metadata version."""
    return catalog.derived(("rules", entity.name), lambda: engine.compile_entity(catalog.metadata, entity))


def with_computed(ctx: Context, target: Target, rows: list[Mapping], data: list[dict], shown: frozenset[str]) -> None:
    """Fill in the computed fields that are evaluated when read (not stored), from each row."""
    wanted = target.values.computed_on_read & shown
    if not wanted:
        return
    rules = rules_of_entity(ctx.catalog, target.entity)
    env = engine.Env({"id": ctx.actor.user_id, "roles": sorted(ctx.actor.roles)}, ctx.now)
    try:
        for row, item in zip(rows, data):
            values = engine.compute(rules, dict(row), env, only=target.values.computed_on_read)
            item.update({k: target.values.json_value(k, v) for k, v in values.items() if k in wanted})
    except RuleError as exc:
        raise RuleFailed.of(exc) from None


def scope(ctx: Context, target: Target, action: str = "read") -> list[sa.ColumnElement]:
    """The actor's row predicate for `action`, as a list to splat into `where` (empty: all rows)."""
    predicate = ctx.access.rows(action, target.entity, target.table)
    return [] if predicate is None else [predicate]


def filter_context(ctx: Context) -> FilterContext:
    catalog, access = ctx.catalog, ctx.access
    return FilterContext(
        catalog.metadata, catalog.tables, ctx.actor.user_id, ctx.now.date(), ctx.now,
        scope=lambda name, table: access.rows("read", catalog.metadata.entities[name], table),
        hidden=lambda name, field: field in access.hidden(catalog.metadata.entities[name]), settings=ctx.settings)


def stale(ctx: Context, target: Target, row: Mapping) -> Conflict:
    return Conflict(f"{target.entity.name} {row['id']} has changed since the version you sent; it is now "
                    f"version {row['version']}", {"version": [f"is stale; current is {row['version']}"]},
                    current=dump(ctx, target, row))
