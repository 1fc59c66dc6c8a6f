"""Many-to-many relations: the links between records kept in a relation's join table (one row
per linked pair, with the relation's own fields), read and written from either end.

A link is part of both records, so the rules follow from theirs: seeing a record's links needs
read access to the record, and each linked record is listed only if the actor may read it (the
others are left out, as a list leaves out what it may not show). Linking or unlinking changes
the record it is done from, so it needs update access to that record and read access to the
other one. Each link and unlink is in the history of both records. A relation from an entity to
itself (companies partnering with companies) is symmetric: a pair is linked once, whichever end linked it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from packwork.errors import BadRequest, Conflict, NotFound
from packwork.metadata.model import Entity, Relation
from packwork.runtime import audit
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import core, reads
from packwork.runtime.records.core import Context
from packwork.runtime.values import INT64, SYSTEM_OUTPUT, EntityValues, iso_datetime

MAX_LINKS = 200  # links listed per record and relation; the rest are counted


@dataclass(frozen=True, slots=True)
class End:
    """A relation seen from one of its entities: which join-table column holds this record."""

    relation: Relation
    mine: str  # "source_id" or "target_id"
    other: str  # the entity at the far end

    @property
    def symmetric(self) -> bool:
        return self.relation.source == self.relation.target

    def columns(self, table: sa.Table) -> list[tuple[sa.Column, sa.Column]]:
        """(this record's column, the other record's column): both ways round if symmetric."""
        pair = (table.c.source_id, table.c.target_id)
        if self.symmetric:
            return [pair, pair[::-1]]
        return [pair] if self.mine == "source_id" else [pair[::-1]]


def ends_of(ctx: Context, entity: Entity) -> list[End]:
    """The relations `entity` takes part in, each once, in the packs' order."""
    found = []
    for relation in ctx.catalog.metadata.relations.values():
        if relation.source == entity.name:
            found.append(End(relation, "source_id", relation.target))
        elif relation.target == entity.name:
            found.append(End(relation, "target_id", relation.source))
    return [end for end in found if not ctx.catalog.metadata.entities[end.other].hidden]


def end_for(ctx: Context, entity: Entity, name: str) -> End:
    end = next((e for e in ends_of(ctx, entity) if e.relation.name == name), None)
    if end is None:
        raise NotFound(f"{entity.name} takes part in no relation {name!r}")
    return end


def shape_of(relation: Relation) -> Entity:
    """The relation's own fields as an entity, for what loads, dumps and shows values."""
    return Entity(relation.name, relation.label, relation.label, relation.fields)


def relation_values(ctx: Context, relation: Relation) -> EntityValues:
    """The relation's fields' value schemas (relation and entity names never clash, so the
    catalog keeps them apart)."""
    return ctx.catalog.values(shape_of(relation))


def list_links(ctx: Context, name: str, record_id: int, relation: str, limit: int = MAX_LINKS) -> dict:
    """`{"data": [{"id": link, "record": the linked record, **relation fields}], "total": n}`,
    the links the actor may see, oldest first."""
    target = core.target_for(ctx, name)
    core.fetch(ctx, target, record_id)  # 404 unless the actor may read this record
    end = end_for(ctx, target.entity, relation)
    if not ctx.access.policy(end.other).reach("read").granted:
        return {"data": [], "total": 0}  # none of the far end's records may be shown
    table = ctx.catalog.tables[relation]
    rows = _links(ctx, end, table, record_id)
    readable = _readable(ctx, end.other, [other_id for _, other_id, _ in rows])
    values = relation_values(ctx, end.relation)
    data = [{"id": link_id, "record": readable[other_id]} | _fields(values, row)
            for link_id, other_id, row in rows if other_id in readable]
    return {"data": data[:limit], "total": len(data)}


def _links(ctx: Context, end: End, table: sa.Table, record_id: int) -> list[tuple[int, int, Mapping]]:
    found = []
    for mine, theirs in end.columns(table):
        query = sa.select(table, theirs.label("pw_other")).where(mine == record_id).order_by(table.c.id)
        found += [(row["id"], row["pw_other"], row) for row in ctx.conn.execute(query).mappings()]
    return sorted(found, key=lambda link: link[0])


def _readable(ctx: Context, entity: str, ids: list[int]) -> dict[int, dict]:
    """The records among `ids` the actor may read, through the record service's list."""
    found: dict[int, dict] = {}
    for start in range(0, len(ids), MAX_LINKS):
        chunk = sorted(set(ids[start:start + MAX_LINKS]))
        page = reads.list_records(ctx, entity, ListQuery(filter=f"id in ({', '.join(map(str, chunk))})",
                                                         limit=len(chunk)))
        found |= {row["id"]: row for row in page.data}
    return found


def link(ctx: Context, name: str, record_id: int, relation: str, body: object) -> dict:
    """Link this record to `{"id": other}` with the relation's field values; 409 if linked."""
    target = core.target_for(ctx, name, "update")
    row = core.fetch(ctx, target, record_id, for_update=True)
    core.require_row(ctx, target, row, "update")
    end = end_for(ctx, target.entity, relation)
    other_id, data = _split_body(body)
    other = core.target_for(ctx, end.other, "read")
    core.fetch(ctx, other, other_id)  # 404 unless the actor may read the other record
    values = relation_values(ctx, end.relation).load(data, creating=True)
    values.pop("owner_id", None)  # a link has no owner: it belongs to the records it joins
    table = ctx.catalog.tables[relation]
    if any(ctx.conn.execute(sa.select(table.c.id).where(mine == record_id, theirs == other_id)).first()
           for mine, theirs in end.columns(table)):
        raise Conflict(f"{name} {record_id} is already linked to {end.other} {other_id}",
                       {"id": ["is already linked"]})
    source, target_id = (record_id, other_id) if end.mine == "source_id" else (other_id, record_id)
    link_id = ctx.conn.execute(table.insert().values(
        source_id=source, target_id=target_id, created_at=ctx.now, created_by=ctx.actor.user_id,
        **values).returning(table.c.id)).scalar_one()
    _audit(ctx, end, name, record_id, other_id, "link")
    stored = ctx.conn.execute(sa.select(table).where(table.c.id == link_id)).mappings().one()
    return {"id": link_id, "record": reads.get_record(ctx, end.other, other_id)} | \
        _fields(relation_values(ctx, end.relation), stored)


def unlink(ctx: Context, name: str, record_id: int, relation: str, link_id: int) -> None:
    """Remove one link of this record (404 if it is not one of this record's links)."""
    target = core.target_for(ctx, name, "update")
    row = core.fetch(ctx, target, record_id, for_update=True)
    core.require_row(ctx, target, row, "update")
    end = end_for(ctx, target.entity, relation)
    table = ctx.catalog.tables[relation]
    for mine, theirs in end.columns(table) if 1 <= link_id <= INT64 else ():
        other_id = ctx.conn.execute(sa.delete(table).where(table.c.id == link_id, mine == record_id)
                                    .returning(theirs)).scalar()
        if other_id is not None:
            _audit(ctx, end, name, record_id, other_id, "unlink")
            return
    raise NotFound(f"{name} {record_id} has no link {link_id} in {relation}")


def _fields(values: EntityValues, row: Mapping) -> dict:
    """A link's own values as JSON, and when it was made (a join table has no other system columns)."""
    return values.dump(row, values.output_keys.difference(SYSTEM_OUTPUT)) | \
        {"created_at": iso_datetime(row["created_at"])}


def _split_body(body: object) -> tuple[int, dict]:
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object naming the record to link as `id`")
    other_id = body.get("id")
    if isinstance(other_id, bool) or not isinstance(other_id, int) or not 1 <= other_id <= INT64:
        raise BadRequest("id must name the record to link", {"id": ["must be a record id"]})
    data = {k: v for k, v in body.items() if k != "id"}
    refused = {k: ["is not a field of a link"] for k in ("owner_id", "record_type") if k in data}
    if refused:
        raise BadRequest("the body names keys a link does not have", refused)
    return other_id, data


def _audit(ctx: Context, end: End, name: str, record_id: int, other_id: int, action: str) -> None:
    """In both records' history: each names the other."""
    key = end.relation.name
    change = [None, other_id] if action == "link" else [other_id, None]
    audit.record_change(ctx.conn, name, record_id, action, ctx.actor.user_id, ctx.now, {key: change})
    if (end.other, other_id) != (name, record_id):
        back = [None, record_id] if action == "link" else [record_id, None]
        audit.record_change(ctx.conn, end.other, other_id, action, ctx.actor.user_id, ctx.now, {key: back})
