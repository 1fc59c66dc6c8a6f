"""A physical Schema -> SQLAlchemy Table objects. Nothing else."""

from __future__ import annotations

import sqlalchemy as sa

from packwork.metadata.fieldtypes import Storage
from packwork.metadata.physical import ColumnSpec, IndexSpec, Schema, TableSpec, constraint_name
from packwork.runtime.system import ID, system_metadata

ON_DELETE = {"set_null": "SET NULL", "restrict": "RESTRICT", "cascade": "CASCADE"}


def column_type(storage: Storage) -> sa.types.TypeEngine:
    kind = storage.kind
    if kind == "string":
        return sa.String(storage.length)
    if kind == "decimal":
        return sa.Numeric(storage.precision, storage.scale, asdecimal=True)
    if kind in ("integer", "reference"):
        return sa.BigInteger()
    return {"text": sa.Text(), "boolean": sa.Boolean(), "date": sa.Date(),
            "datetime": sa.DateTime(timezone=True), "json": sa.JSON()}[kind]


def make_column(table: str, spec: ColumnSpec, with_foreign_key: bool = True) -> sa.Column:
    if spec.name == "id":
        return sa.Column("id", ID, primary_key=True, autoincrement=True)
    args = []
    if spec.references and with_foreign_key:
        args.append(sa.ForeignKey(f"{spec.references}.id", ondelete=ON_DELETE[spec.on_delete or "set_null"],
                                  name=constraint_name("fk", table, spec.name)))
    nullable = not (spec.system and spec.name in ("created_at", "updated_at", "version", "source_id",
                                                  "target_id"))
    return sa.Column(spec.name, column_type(spec.storage), *args, nullable=nullable)


def make_index(table: sa.Table, spec: IndexSpec) -> sa.Index:
    where = table.c.deleted_at.is_(None) if spec.live_only and "deleted_at" in table.c else None
    return sa.Index(spec.name, *(table.c[c] for c in spec.columns), unique=spec.unique,
                    sqlite_where=where, postgresql_where=where)


def make_table(spec: TableSpec, metadata: sa.MetaData) -> sa.Table:
    columns = [make_column(spec.name, c) for c in spec.columns + spec.orphans]
    table = sa.Table(spec.name, metadata, *columns)
    for index in spec.indexes:
        make_index(table, index)
    return table


def build_tables(schema: Schema) -> dict[str, sa.Table]:
    """One SQLAlchemy Table per table of the schema, orphaned columns included (they exist).
    The returned tables share a MetaData with the system tables so foreign keys resolve."""
    metadata = sa.MetaData()
    for table in system_metadata.tables.values():
        table.to_metadata(metadata)
    return {name: make_table(spec, metadata) for name, spec in schema.tables.items()}
