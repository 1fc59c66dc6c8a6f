"""Metadata -> the physical schema it implies: tables, columns (as abstract Storage), indexes.

Pure. `runtime.tables` turns a Schema into SQLAlchemy tables; `metadata.diff` compares two
Schemas. A Schema also remembers orphans (columns and tables whose field or entity left the
packs): their data stays until an explicit purge, so they stay in the recorded schema.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from packwork.metadata.fieldtypes import FieldTypes, Storage, builtin_field_types
from packwork.metadata.model import Field, Metadata

USER_TABLE = "pw_user"
MAX_CONSTRAINT_NAME = 60


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    storage: Storage
    references: str | None = None  # table whose id this column holds
    on_delete: str | None = None
    system: bool = False


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    live_only: bool = False  # partial index over rows not soft-deleted


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    kind: str  # entity | relation
    columns: tuple[ColumnSpec, ...]
    indexes: tuple[IndexSpec, ...] = ()
    orphans: tuple[ColumnSpec, ...] = ()
    orphaned: bool = False

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, slots=True)
class Schema:
    tables: Mapping[str, TableSpec] = field(default_factory=lambda: MappingProxyType({}))


def constraint_name(prefix: str, table: str, *columns: str) -> str:
    """`ix_account_name`, shortened with a stable hash where a database would truncate it."""
    name = "_".join((prefix, table) + columns)
    if len(name) <= MAX_CONSTRAINT_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_CONSTRAINT_NAME - 9]}_{digest}"


def _system_columns() -> tuple[ColumnSpec, ...]:
    return (
        ColumnSpec("id", Storage("integer"), system=True),
        ColumnSpec("created_at", Storage("datetime"), system=True),
        ColumnSpec("updated_at", Storage("datetime"), system=True),
        ColumnSpec("created_by", Storage("reference"), USER_TABLE, "set_null", system=True),
        ColumnSpec("owner_id", Storage("reference"), USER_TABLE, "set_null", system=True),
        ColumnSpec("version", Storage("integer"), system=True),
        ColumnSpec("deleted_at", Storage("datetime"), system=True),
        ColumnSpec("record_type", Storage("string", length=40), system=True),
    )


def _field_columns(field: Field, field_types: FieldTypes) -> list[ColumnSpec]:
    columns = []
    for name, storage in field_types[field.type].columns(field):
        if storage.kind == "reference":
            target = USER_TABLE if field.type == "user" else field.target
            columns.append(ColumnSpec(name, storage, target, field.on_delete))
        else:
            columns.append(ColumnSpec(name, storage))
    return columns


def _field_indexes(table: str, field: Field, columns: list[ColumnSpec]) -> list[IndexSpec]:
    if not columns:
        return []
    first = columns[0].name
    if field.unique:
        return [IndexSpec(constraint_name("uq", table, first), (first,), unique=True, live_only=True)]
    if field.indexed or columns[0].references:
        return [IndexSpec(constraint_name("ix", table, first), (first,))]
    return []


def entity_table(entity, field_types: FieldTypes) -> TableSpec:
    columns = list(_system_columns())
    # (owner_id, id): "my records, newest first", the page an own-scoped user opens, is one index range
    indexes = [IndexSpec(constraint_name("ix", entity.name, "owner_id"), ("owner_id", "id")),
               IndexSpec(constraint_name("ix", entity.name, "created_at"), ("created_at",))]
    for f in entity.fields:
        field_columns = _field_columns(f, field_types)
        columns += field_columns
        indexes += _field_indexes(entity.name, f, field_columns)
    return TableSpec(entity.name, "entity", tuple(columns), tuple(indexes))


def relation_table(relation, field_types: FieldTypes) -> TableSpec:
    columns = [
        ColumnSpec("id", Storage("integer"), system=True),
        ColumnSpec("source_id", Storage("reference"), relation.source, "cascade", system=True),
        ColumnSpec("target_id", Storage("reference"), relation.target, "cascade", system=True),
        ColumnSpec("created_at", Storage("datetime"), system=True),
        ColumnSpec("created_by", Storage("reference"), USER_TABLE, "set_null", system=True),
    ]
    indexes = [IndexSpec(constraint_name("uq", relation.name, "pair"), ("source_id", "target_id"), unique=True),
               IndexSpec(constraint_name("ix", relation.name, "target_id"), ("target_id",))]
    for f in relation.fields:
        field_columns = _field_columns(f, field_types)
        columns += field_columns
        indexes += _field_indexes(relation.name, f, field_columns)
    return TableSpec(relation.name, "relation", tuple(columns), tuple(indexes))


def physical_schema(metadata: Metadata, field_types: FieldTypes | None = None) -> Schema:
    field_types = field_types or builtin_field_types()
    tables = {e.name: entity_table(e, field_types) for e in metadata.entities.values()}
    tables.update({r.name: relation_table(r, field_types) for r in metadata.relations.values()})
    return Schema(MappingProxyType(tables))


def with_orphans(old: Schema | None, new: Schema) -> Schema:
    """`new` plus what `old` had that `new` lost: those columns and tables keep their data."""
    if old is None:
        return new
    tables = dict(new.tables)
    for name, old_table in old.tables.items():
        if name not in tables:
            tables[name] = replace(old_table, orphaned=True)
            continue
        table = tables[name]
        kept = {c.name for c in table.columns}
        lost = [c for c in old_table.columns + old_table.orphans if c.name not in kept]
        tables[name] = replace(table, orphans=tuple(lost))
    return Schema(MappingProxyType(tables))


# -- JSON form, for recording the applied schema in the database --------------------------

def schema_to_json(schema: Schema) -> dict:
    def column(c: ColumnSpec) -> dict:
        return {"name": c.name, "storage": [c.storage.kind, c.storage.length, c.storage.precision,
                                            c.storage.scale], "references": c.references,
                "on_delete": c.on_delete, "system": c.system}
    return {name: {"kind": t.kind, "orphaned": t.orphaned,
                   "columns": [column(c) for c in t.columns], "orphans": [column(c) for c in t.orphans],
                   "indexes": [{"name": i.name, "columns": list(i.columns), "unique": i.unique,
                                "live_only": i.live_only} for i in t.indexes]}
            for name, t in schema.tables.items()}


def schema_from_json(data: dict) -> Schema:
    def column(c: dict) -> ColumnSpec:
        return ColumnSpec(c["name"], Storage(*c["storage"]), c["references"], c["on_delete"], c["system"])
    return Schema(MappingProxyType({
        name: TableSpec(name, t["kind"], tuple(column(c) for c in t["columns"]),
                        tuple(IndexSpec(i["name"], tuple(i["columns"]), i["unique"], i["live_only"])
                              for i in t["indexes"]),
                        tuple(column(c) for c in t["orphans"]), t["orphaned"])
        for name, t in data.items()}))
