"""What changes between two metadata versions: typed schema changes plus metadata-only edits.

Pure: two recorded states in, a list of Change objects out. Each change says in words what
it does; `runtime.migrate` turns the ones that touch the database into DDL.
"""

from __future__ import annotations

from dataclasses import dataclass

from packwork.metadata.fieldtypes import Storage
from packwork.metadata.physical import ColumnSpec, IndexSpec, Schema, TableSpec


@dataclass(frozen=True, slots=True)
class Change:
    table: str

    ddl = True  # False: recorded in metadata only, the database is untouched

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class CreateTable(Change):
    spec: TableSpec

    def describe(self) -> str:
        return f"create table {self.table} ({len(self.spec.columns)} columns)"


@dataclass(frozen=True, slots=True)
class AddColumn(Change):
    column: ColumnSpec

    def describe(self) -> str:
        return f"add column {self.table}.{self.column.name} {self.column.storage.describe()}"


@dataclass(frozen=True, slots=True)
class AlterColumnType(Change):
    old: ColumnSpec
    new: ColumnSpec
    loss: str | None  # why data could be lost, or None for a widening change

    def describe(self) -> str:
        text = (f"change type of {self.table}.{self.new.name} from {self.old.storage.describe()} "
                f"to {self.new.storage.describe()}")
        return text + (f" (could lose data: {self.loss})" if self.loss else "")


@dataclass(frozen=True, slots=True)
class CreateIndex(Change):
    index: IndexSpec

    def describe(self) -> str:
        kind = "unique index" if self.index.unique else "index"
        return f"create {kind} {self.index.name} on {self.table} ({', '.join(self.index.columns)})"


@dataclass(frozen=True, slots=True)
class DropIndex(Change):
    index: IndexSpec

    def describe(self) -> str:
        return f"drop index {self.index.name} on {self.table}"


@dataclass(frozen=True, slots=True)
class OrphanColumn(Change):
    column: ColumnSpec
    ddl = False

    def describe(self) -> str:
        return (f"field behind {self.table}.{self.column.name} is gone from the packs: "
                "the column and its data are kept (orphaned) until `packwork pack purge`")


@dataclass(frozen=True, slots=True)
class AdoptColumn(Change):
    column: ColumnSpec
    ddl = False

    def describe(self) -> str:
        return f"orphaned column {self.table}.{self.column.name} is used again, with its data"


@dataclass(frozen=True, slots=True)
class OrphanTable(Change):
    ddl = False

    def describe(self) -> str:
        return (f"entity behind table {self.table} is gone from the packs: the table and its data "
                "are kept (orphaned) until `packwork pack purge`")


@dataclass(frozen=True, slots=True)
class AdoptTable(Change):
    ddl = False

    def describe(self) -> str:
        return f"orphaned table {self.table} is used again, with its data"


@dataclass(frozen=True, slots=True)
class DropColumn(Change):
    column: ColumnSpec

    def describe(self) -> str:
        return f"drop orphaned column {self.table}.{self.column.name} and its data"


@dataclass(frozen=True, slots=True)
class DropTable(Change):
    def describe(self) -> str:
        return f"drop orphaned table {self.table} and its data"


@dataclass(frozen=True, slots=True)
class MetadataEdit(Change):
    """A change that lives only in metadata (a label, `hidden`, a layout, a stage, ...)."""

    path: str
    old: object
    new: object
    ddl = False

    def describe(self) -> str:
        if self.old is None:
            return f"add {self.path}: {_short(self.new)}"
        if self.new is None:
            return f"remove {self.path}"
        return f"change {self.path}: {_short(self.old)} -> {_short(self.new)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NUMERIC_ORDER = ("boolean", "integer", "decimal")


def type_change_loss(old: Storage, new: Storage) -> str | None:
    """Why converting values of `old` storage to `new` could lose data, or None if it cannot."""
    if old == new:
        return None
    if new.kind == "text" and old.kind not in ("json", "reference"):
        return None
    if old.kind == new.kind == "string":
        return None if new.length >= old.length else f"text longer than {new.length} characters would be cut"
    if old.kind == new.kind == "decimal":
        if new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale:
            return None
        return "digits would be rounded away or no longer fit"
    if old.kind == "integer" and new.kind == "decimal" and new.precision - new.scale >= 19:
        return None
    if old.kind == "boolean" and new.kind == "integer":
        return None
    if old.kind == "date" and new.kind == "datetime":
        return None
    if new.kind == "string" and old.kind in ("integer", "boolean", "date"):
        return None if new.length >= 20 else f"values may not fit in {new.length} characters"
    return f"{old.describe()} values cannot all be converted to {new.describe()}"


def diff_schema(old: Schema | None, new: Schema) -> list[Change]:
    """Schema changes from `old` (as recorded, orphans included) to `new` (from metadata)."""
    old_tables = old.tables if old else {}
    changes: list[Change] = []
    for name, table in new.tables.items():
        before = old_tables.get(name)
        if before is None:
            changes.append(CreateTable(name, table))
            continue
        if before.orphaned:
            changes.append(AdoptTable(name))
        changes += _diff_table(before, table)
    for name, before in old_tables.items():
        if name not in new.tables and not before.orphaned:
            changes.append(OrphanTable(name))
    return changes


def _diff_table(before: TableSpec, after: TableSpec) -> list[Change]:
    changes: list[Change] = []
    existing = {c.name: c for c in before.columns}
    orphans = {c.name: c for c in before.orphans}
    for column in after.columns:
        old = existing.get(column.name) or orphans.get(column.name)
        if old is None:
            changes.append(AddColumn(after.name, column))
            continue
        if column.name in orphans:
            changes.append(AdoptColumn(after.name, column))
        if old.storage != column.storage:
            changes.append(AlterColumnType(after.name, old, column,
                                           type_change_loss(old.storage, column.storage)))
    kept = {c.name for c in after.columns}
    changes += [OrphanColumn(after.name, c) for c in before.columns if c.name not in kept]
    old_indexes = {i.name: i for i in before.indexes}
    new_indexes = {i.name: i for i in after.indexes}
    for name, index in old_indexes.items():
        if new_indexes.get(name) != index:
            changes.append(DropIndex(after.name, index))
    for name, index in new_indexes.items():
        if old_indexes.get(name) != index:
            changes.append(CreateIndex(after.name, index))
    return changes


def diff_documents(old: object, new: object, path: str = "", limit: int = 200) -> list[MetadataEdit]:
    """Leaf-level differences between two canonical metadata documents (lists of named items
    are matched by name), for showing metadata-only edits in a plan."""
    edits: list[MetadataEdit] = []
    _walk(old, new, path, edits, limit)
    return edits


def _named(items: list) -> dict | None:
    if items and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return {i["name"]: i for i in items}
    if items and all(isinstance(i, dict) and "role" in i and "entity" in i for i in items):
        return _grants_by_role(items)
    return None


def _grants_by_role(grants: list[dict]) -> dict:
    """Grants keyed `role/entity` (a second grant of the same pair, from another pack, `#2`)."""
    keyed: dict[str, dict] = {}
    for grant in grants:
        key = f"{grant['role']}/{grant['entity']}"
        n = 1
        while (f"{key}#{n}" if n > 1 else key) in keyed:
            n += 1
        keyed[f"{key}#{n}" if n > 1 else key] = grant
    return keyed


def _walk(old: object, new: object, path: str, edits: list, limit: int) -> None:
    if len(edits) >= limit or old == new:
        return
    if isinstance(old, list) and isinstance(new, list):
        old_named, new_named = _named(old), _named(new)
        if old_named is not None and new_named is not None:
            old, new = old_named, new_named
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _walk(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), edits, limit)
        return
    edits.append(MetadataEdit(path.split(".", 2)[1] if path.count(".") >= 1 else path, path, old, new))
