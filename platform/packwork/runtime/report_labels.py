"""What a report's group values are called, in the reader's language: option and stage labels
from metadata, user names, the titles of referenced records (only those the reader may read:
another's title is never shown, only its id) and date buckets as text."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from packwork.metadata.model import Entity, Label, ReportKey
from packwork.runtime import users
from packwork.runtime.records import core
from packwork.runtime.records.core import Context
from packwork.runtime.records.summary import key_kind

BLANK = Label("(none)", "（无）")
YES, NO = Label("Yes", "是"), Label("No", "否")
RECORDS = Label("Records", "记录数")
SYSTEM_KEY_LABELS = {"owner_id": Label("Owner", "负责人"), "created_by": Label("Created by", "创建人"),
                     "created_at": Label("Created", "创建时间"), "updated_at": Label("Updated", "更新时间")}


def key_label(entity: Entity, key: ReportKey) -> Label:
    field = entity.field(key.field)
    return field.label if field is not None else SYSTEM_KEY_LABELS[key.field]


def bucket_text(size: str, number: int | None) -> str | None:
    """The integer a bucket was grouped by as text: 202403 -> 2024-03, 20241 -> 2024-Q1, 2024."""
    if number is None:
        return None
    if size == "month":
        return f"{number // 100:04d}-{number % 100:02d}"
    if size == "quarter":
        return f"{number // 10:04d}-Q{number % 10}"
    return f"{number:04d}"


def value_labels(ctx: Context, entity: Entity, key: ReportKey, values: Iterable[object]) -> dict[object, str]:
    """{value: label} for the values one group key took."""
    language = ctx.actor.language
    values = set(values)
    kind = key_kind(entity, key.field)
    labels: dict[object, str] = {None: BLANK.get(language)}
    known = [v for v in values if v is not None]
    if key.bucket is not None:
        labels.update({v: str(v) for v in known})
    elif kind in ("choice", "stage"):
        options = {c.value: c.label.get(language) for c in entity.field(key.field).choices}
        labels.update({v: options.get(v, str(v)) for v in known})
    elif kind == "boolean":
        labels.update({v: (YES if v else NO).get(language) for v in known})
    elif kind == "user":
        names = users.display_names(ctx.conn, known)
        labels.update({v: names.get(v, f"#{v}") for v in known})
    elif kind == "reference":
        labels.update(_titles(ctx, ctx.catalog.metadata.entities[entity.field(key.field).target], known))
    else:
        labels.update({v: str(v) for v in known})
    return labels


def _titles(ctx: Context, entity: Entity, ids: list) -> dict[object, str]:
    """The titles of the referenced records the reader may read; the others by id alone."""
    fallback = {i: f"{entity.label.get(ctx.actor.language)} #{i}" for i in ids}
    title = entity.field(entity.title_field) if entity.title_field else None
    if not ids or title is None or not title.has_column or title.hidden or entity.hidden \
            or title.name in ctx.access.hidden(entity) or not ctx.access.policy(entity.name).reach("read").granted:
        return fallback
    target = core.target_for(ctx, entity.name)
    table = target.table
    rows = ctx.conn.execute(sa.select(table.c.id, table.c[title.name]).where(
        table.c.id.in_(ids), table.c.deleted_at.is_(None), *core.scope(ctx, target)))
    found = {row[0]: str(row[1]) for row in rows if row[1] not in (None, "")}
    return fallback | found
