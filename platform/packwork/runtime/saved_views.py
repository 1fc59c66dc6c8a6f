"""List views a user saves for themselves: columns, a filter in the shared filter language and a
sort, per entity. A view is checked by running it once through the record service before it
is kept, so a saved view can never hold a filter or column the user could not use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import ValidationError
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import Context, list_records
from packwork.runtime.system import pw_saved_view

MAX_VIEWS = 50


@dataclass(frozen=True, slots=True)
class SavedView:
    id: int
    name: str
    columns: tuple[str, ...]
    filter: str | None
    sort: str | None


def save_view(ctx: Context, entity: str, name: str, columns: tuple[str, ...], filter: str | None,
              sort: str | None) -> SavedView:
    """Keep (or replace, by name) the actor's view of `entity`; 400/422 naming what is wrong."""
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise ValidationError("the view needs a name", {"name": ["must be 1 to 80 characters"]})
    list_records(ctx, entity, ListQuery(filter=filter, sort=sort, fields=columns or None, limit=1))
    user_id = ctx.actor.user_id
    mine = sa.and_(pw_saved_view.c.user_id == user_id, pw_saved_view.c.entity == entity)
    values = {"columns": list(columns), "filter": filter, "sort": sort}
    existing = ctx.conn.execute(sa.select(pw_saved_view.c.id).where(mine, pw_saved_view.c.name == name)).scalar()
    if existing is not None:
        ctx.conn.execute(pw_saved_view.update().where(pw_saved_view.c.id == existing).values(values))
        return SavedView(existing, name, columns, filter, sort)
    if ctx.conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one() >= MAX_VIEWS:
        raise ValidationError("too many saved views", {"name": [f"you may keep {MAX_VIEWS} views per entity"]})
    view_id = ctx.conn.execute(pw_saved_view.insert().values(
        user_id=user_id, entity=entity, name=name, created_at=datetime.now(timezone.utc), **values)
        .returning(pw_saved_view.c.id)).scalar_one()
    return SavedView(view_id, name, columns, filter, sort)


def views_of(ctx: Context, entity: str) -> list[SavedView]:
    rows = ctx.conn.execute(sa.select(pw_saved_view).where(
        pw_saved_view.c.user_id == ctx.actor.user_id, pw_saved_view.c.entity == entity)
        .order_by(pw_saved_view.c.name)).mappings()
    return [SavedView(r["id"], r["name"], tuple(r["columns"]), r["filter"], r["sort"]) for r in rows]


def find_view(ctx: Context, entity: str, view_id: int) -> SavedView | None:
    return next((v for v in views_of(ctx, entity) if v.id == view_id), None)


def delete_view(ctx: Context, entity: str, view_id: int) -> None:
    ctx.conn.execute(pw_saved_view.delete().where(
        pw_saved_view.c.id == view_id, pw_saved_view.c.user_id == ctx.actor.user_id,
        pw_saved_view.c.entity == entity))
