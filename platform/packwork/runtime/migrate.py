"""Plan, then apply. A plan lists every change and the exact DDL it will run, rendered by
Alembic's operations; apply runs those very statements in one transaction and records the new
metadata version, so a database is always at an old version or a new one, never between."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from packwork.errors import MigrationRefused, PackError, PackworkError
from packwork.metadata import diff as d
from packwork.metadata.diff import diff_documents, diff_schema
from packwork.metadata.loader import PackSource
from packwork.metadata.model import Metadata
from packwork.metadata.physical import (
    ColumnSpec, Schema, constraint_name, physical_schema, with_orphans,
)
from packwork.metadata.resolver import canonical
from packwork.runtime import data_migrations, packstore
from packwork.runtime.tables import ON_DELETE, build_tables, column_type, make_column, make_table
from packwork.runtime.system import system_metadata

Progress = Callable[[int, int, str], None]


class PlanOutdated(PackworkError):
    status = 409
    code = "MIG-E002"


@dataclass
class Plan:
    """Everything `apply` will do, computed without changing the database."""

    dialect: str
    previous: str | None  # metadata version the plan was made against
    metadata: Metadata | None
    document: dict | None
    old_schema: Schema | None
    schema: Schema  # to record: new tables plus kept orphans
    changes: list[d.Change]
    statements: dict[int, list[str]]  # change index -> its DDL statements
    refused: list[str] = field(default_factory=list)
    packs: list[PackSource] = field(default_factory=list)  # to record as installed
    pack_rows: list[packstore.PackRow] = field(default_factory=list)
    missing_system_tables: list[str] = field(default_factory=list)
    removed_packs: list[str] = field(default_factory=list)
    edits: list[d.MetadataEdit] = field(default_factory=list)
    migrations: list[data_migrations.Pending] = field(default_factory=list)  # run after the schema change
    forget_migrations: list[str] = field(default_factory=list)  # packs whose data is purged: may run again

    @property
    def empty(self) -> bool:
        return not self.changes and not self.edits and not self.packs and not self.removed_packs \
            and not self.missing_system_tables and not self.migrations

    def render(self) -> str:
        lines = [f"  * create system table {name} (a newer Packwork needs it)" for name in self.missing_system_tables
                 if self.previous is not None]
        lines += [f"  - uninstall pack {name}: remove its metadata" for name in self.removed_packs]
        for index, change in enumerate(self.changes):
            lines.append(f"  {'*' if change.ddl else '-'} {change.describe()}")
            lines += [f"      {s}" for s in self.statements.get(index, [])]
        lines += [f"  - {edit.describe()}" for edit in self.edits]
        lines += [f"  * {migration.describe()}" for migration in self.migrations]
        if not lines:
            lines.append("  (no changes)")
        return "\n".join(lines)


def make_plan(engine: sa.Engine, metadata: Metadata | None, packs: list[PackSource],
              removed_packs: list[str] = (), *, force: bool = False, purge: bool = False,
              drop_orphaned: bool = False) -> Plan:
    """Compare `metadata` with what the database holds. With `purge`, also drop orphans; with
    `drop_orphaned`, drop the tables and columns this change orphans (and only those) instead
    of keeping them."""
    with engine.connect() as conn:
        current = packstore.current_version(conn)
        existing = set(sa.inspect(conn).get_table_names())
    old_schema = current.schema if current else None
    if metadata is None:  # a purge of orphans with the metadata unchanged
        new_schema = _without_orphans(old_schema)
        document = current.document if current else None
    else:
        new_schema = physical_schema(metadata)
        document = canonical(metadata)
    changes = diff_schema(old_schema, new_schema)
    recorded = with_orphans(old_schema, new_schema)
    if drop_orphaned:
        changes, recorded = _drop_new_orphans(changes, recorded)
    if purge:
        changes += _purges(recorded)
        recorded = _without_orphans(recorded)
    plan = Plan(engine.dialect.name, current.version if current else None, metadata, document,
                old_schema, recorded, changes, {}, packs=list(packs), removed_packs=list(removed_packs),
                pack_rows=packstore.pack_rows(list(packs)),
                missing_system_tables=[name for name in system_metadata.tables if name not in existing],
                forget_migrations=list(removed_packs) if drop_orphaned else [])
    if current and document is not None:
        plan.edits = [e for e in diff_documents(current.document, document)
                      if not _explained_by_schema(e, changes)]
    plan.refused = [c.describe() for c in changes if isinstance(c, d.AlterColumnType) and c.loss]
    if plan.refused and not force:
        raise MigrationRefused(plan.refused)
    if metadata is not None and plan.pack_rows and metadata.migrations:
        plan.migrations = _migrations(engine, metadata, plan, existing)
    plan.statements = render_statements(plan)
    return plan


def _migrations(engine: sa.Engine, metadata: Metadata, plan: Plan, existing: set[str]) -> list:
    """The data migrations of the packs this plan installs or upgrades that it runs; refused
    (PackError) if the sandbox's compiler refuses the code of one."""
    with engine.connect() as conn:
        chosen = data_migrations.pending(conn, metadata, [row.name for row in plan.pack_rows], existing)
    problems = data_migrations.code_problems(p.migration for p in chosen)
    if problems:
        raise PackError(problems)
    return chosen


def _explained_by_schema(edit: d.MetadataEdit, changes: list[d.Change]) -> bool:
    """A new entity or field already shows as CREATE TABLE / ADD COLUMN; don't list it twice."""
    parts = edit.path.split(".")
    if edit.old is not None:
        return False
    if len(parts) == 2 and parts[0] in ("entities", "relations"):
        return any(isinstance(c, d.CreateTable) and c.table == parts[1] for c in changes)
    if len(parts) == 4 and parts[0] == "entities" and parts[2] == "fields":
        return any(isinstance(c, d.AddColumn) and c.table == parts[1] and c.column.name == parts[3]
                   for c in changes)
    return False


def _purges(schema: Schema) -> list[d.Change]:
    changes: list[d.Change] = []
    for name, table in schema.tables.items():
        if table.orphaned:
            changes.append(d.DropTable(name))
        else:
            changes += [d.DropColumn(name, c) for c in table.orphans]
    return _in_drop_order(changes, schema)


def _drop_new_orphans(changes: list[d.Change], recorded: Schema) -> tuple[list[d.Change], Schema]:
    """Turn "keep it orphaned" into "drop it" for what these changes orphan; orphans from
    earlier versions stay as they are."""
    tables = {c.table for c in changes if isinstance(c, d.OrphanTable)}
    columns = {(c.table, c.column.name) for c in changes if isinstance(c, d.OrphanColumn)}
    drops = [d.DropTable(c.table) if isinstance(c, d.OrphanTable) else d.DropColumn(c.table, c.column)
             for c in changes if isinstance(c, (d.OrphanTable, d.OrphanColumn))]
    kept = [c for c in changes if not isinstance(c, (d.OrphanTable, d.OrphanColumn))]
    remaining = {name: replace(t, orphans=tuple(c for c in t.orphans if (name, c.name) not in columns))
                 for name, t in recorded.tables.items() if name not in tables}
    return kept + _in_drop_order(drops, recorded), Schema(MappingProxyType(remaining))


def _in_drop_order(drops: list[d.Change], schema: Schema) -> list[d.Change]:
    """Columns first, then tables, each table before the tables it references: PostgreSQL
    refuses to drop a table another table's foreign key still points at."""
    columns = [c for c in drops if isinstance(c, d.DropColumn)]
    pending = {c.table: c for c in drops if isinstance(c, d.DropTable)}
    ordered: list[d.Change] = []
    while pending:
        referenced = {col.references for name in pending for col in _all_columns(schema.tables[name])
                      if col.references != name}
        ready = [name for name in pending if name not in referenced] or list(pending)[:1]  # a cycle: any
        ordered += [pending.pop(name) for name in ready]
    return columns + ordered


def _all_columns(table) -> tuple[ColumnSpec, ...]:
    return table.columns + table.orphans


def _without_orphans(schema: Schema | None) -> Schema:
    if schema is None:
        return Schema()
    return Schema(MappingProxyType({n: replace(t, orphans=()) for n, t in schema.tables.items()
                                    if not t.orphaned}))


# -- turning changes into DDL --------------------------------------------------------------

class _Emitter:
    """Renders each change through Alembic operations in offline mode: the statements a plan
    shows and `apply` runs."""

    def __init__(self, op: Operations, plan: Plan):
        self.op, self.plan, self.sqlite = op, plan, plan.dialect == "sqlite"
        # Each table as it stands between changes: SQLite's batch mode rebuilds a table from
        # this, so it must include what earlier changes of the same plan did to it.
        self.current = dict(plan.old_schema.tables) if plan.old_schema else {}
        self.deferred: list[tuple[str, ColumnSpec]] = []  # foreign keys to tables not made yet

    def emit(self, change: d.Change) -> None:
        getattr(self, "_" + type(change).__name__)(change)
        self._track(change)

    def _track(self, change: d.Change) -> None:
        spec = self.current.get(change.table)
        if isinstance(change, d.DropTable):
            self.current.pop(change.table, None)
        elif isinstance(change, d.CreateTable):
            self.current[change.table] = change.spec
        elif isinstance(change, d.AddColumn):
            self.current[change.table] = replace(spec, columns=spec.columns + (change.column,))
        elif isinstance(change, d.AlterColumnType):
            columns = tuple(change.new if c.name == change.new.name else c for c in spec.columns + spec.orphans)
            self.current[change.table] = replace(spec, columns=columns, orphans=())
        elif isinstance(change, d.DropColumn):  # an orphan, or a column this plan orphans and drops
            self.current[change.table] = replace(
                spec, columns=tuple(c for c in spec.columns if c.name != change.column.name),
                orphans=tuple(c for c in spec.orphans if c.name != change.column.name))
        elif isinstance(change, d.CreateIndex):
            self.current[change.table] = replace(spec, indexes=spec.indexes + (change.index,))
        elif isinstance(change, d.DropIndex):
            self.current[change.table] = replace(
                spec, indexes=tuple(i for i in spec.indexes if i.name != change.index.name))

    def _table_now(self, name: str) -> sa.Table:
        return build_tables(Schema(MappingProxyType({name: self.current[name]})))[name]

    def _CreateTable(self, change: d.CreateTable) -> None:
        spec = change.spec
        # PostgreSQL checks that referenced tables exist, so foreign keys come after all
        # tables exist (see _foreign_keys); SQLite cannot add them later, and does not check.
        columns = [make_column(spec.name, c, with_foreign_key=self.sqlite) for c in spec.columns]
        self.op.create_table(spec.name, *columns)
        table = make_table(spec, sa.MetaData())
        for index in sorted(table.indexes, key=lambda i: i.name):
            self._create_index(index)

    def _AddColumn(self, change: d.AddColumn) -> None:
        column = make_column(change.table, change.column, with_foreign_key=False)
        self.op.add_column(change.table, column)
        if change.column.references and not self.sqlite:
            if change.column.references in self.current:
                self._foreign_key(change.table, change.column)
            else:  # e.g. to a table this plan creates later: PostgreSQL checks it exists
                self.deferred.append((change.table, change.column))

    def _AlterColumnType(self, change: d.AlterColumnType) -> None:
        new_type, old_type = column_type(change.new.storage), column_type(change.old.storage)
        if self.sqlite:
            with self.op.batch_alter_table(change.table, copy_from=self._table_now(change.table),
                                           recreate="always") as batch:
                batch.alter_column(change.new.name, type_=new_type, existing_type=old_type)
        else:
            using = f"{change.new.name}::{new_type.compile(dialect=self.op.get_context().dialect)}"
            self.op.alter_column(change.table, change.new.name, type_=new_type, existing_type=old_type,
                                 postgresql_using=using)

    def _CreateIndex(self, change: d.CreateIndex) -> None:
        table = make_table(self.plan.schema.tables[change.table], sa.MetaData())
        self._create_index(next(i for i in table.indexes if i.name == change.index.name))

    def _create_index(self, index: sa.Index) -> None:
        where = index.dialect_options["postgresql"]["where"]
        kwargs = {"sqlite_where": where, "postgresql_where": where} if where is not None else {}
        self.op.create_index(index.name, index.table.name, [c.name for c in index.columns],
                             unique=index.unique, **kwargs)

    def _DropIndex(self, change: d.DropIndex) -> None:
        self.op.drop_index(change.index.name, table_name=change.table)

    def _DropColumn(self, change: d.DropColumn) -> None:
        if self.sqlite:
            with self.op.batch_alter_table(change.table, copy_from=self._table_now(change.table),
                                           recreate="always") as batch:
                batch.drop_column(change.column.name)
        else:
            self.op.drop_column(change.table, change.column.name)

    def _DropTable(self, change: d.DropTable) -> None:
        if not self.sqlite:  # tables dropped together may reference each other (a cycle)
            for other, spec in self.current.items():
                for column in spec.columns + spec.orphans:
                    if column.references == change.table and other != change.table:
                        self.op.drop_constraint(constraint_name("fk", other, column.name), other,
                                                type_="foreignkey")
        self.op.drop_table(change.table)

    def _foreign_key(self, table: str, column: ColumnSpec) -> None:
        self.op.create_foreign_key(constraint_name("fk", table, column.name), table, column.references,
                                   [column.name], ["id"], ondelete=ON_DELETE[column.on_delete or "set_null"])

    def foreign_keys_of_new_tables(self, changes: list[d.Change]) -> None:
        if self.sqlite:
            return
        for change in changes:
            if isinstance(change, d.CreateTable):
                for column in change.spec.columns:
                    if column.references:
                        self._foreign_key(change.table, column)
        for table, column in self.deferred:
            self._foreign_key(table, column)

    def _metadata_only(self, change: d.Change) -> None:
        """Orphaning or adopting keeps the data where it is: only the record changes."""

    _AdoptColumn = _AdoptTable = _OrphanColumn = _OrphanTable = _metadata_only


class _Statements:
    """Alembic's offline output buffer: Alembic writes each statement with one `write`, so
    statements are kept apart without splitting text on ';'. Whitespace is folded onto one
    line (the DDL holds no string literals)."""

    def __init__(self) -> None:
        self.taken: list[str] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.taken.append(" ".join(text.split()))

    def flush(self) -> None:
        pass

    def take(self) -> list[str]:
        taken, self.taken = self.taken, []
        return taken


def _offline_operations(dialect: str, buffer: _Statements) -> Operations:
    context = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": buffer, "literal_binds": True})
    return Operations(context)


def render_statements(plan: Plan) -> dict[int, list[str]]:
    """The exact DDL of each change, as `apply` runs it; the foreign keys between new tables
    come last, under the index after the last change."""
    buffer = _Statements()
    emitter = _Emitter(_offline_operations(plan.dialect, buffer), plan)
    statements: dict[int, list[str]] = {}
    for index, change in enumerate(plan.changes):
        emitter.emit(change)
        statements[index] = buffer.take()
    emitter.foreign_keys_of_new_tables(plan.changes)
    if foreign_keys := buffer.take():
        statements[len(plan.changes)] = foreign_keys
    return statements


# -- applying -------------------------------------------------------------------------------

# Applies are serialised by this transaction-scoped lock on PostgreSQL; on SQLite the engine's
# BEGIN IMMEDIATE takes the database's write lock, which does the same.
_APPLY_LOCK = "SELECT pg_advisory_xact_lock(7716001)"
_STALE = "the metadata changed since this plan was made; plan again"


def apply(engine: sa.Engine, plan: Plan, progress: Progress | None = None, summary: str = "",
          *, also: Callable[[sa.Connection], None] | None = None) -> None:
    """Run the plan in one transaction and record the new version; refuse a stale plan.
    `also` runs last in that transaction, after the version is recorded (the admin layer
    records its history there).

    The plan is stale when the newest recorded version is no longer the one it was made
    against. The statement that records the new version checks that, after the DDL and under
    the lock, and writes nothing if so; then the whole transaction rolls back. A stale plan
    whose DDL fails first (the column it adds already exists) is refused the same way."""
    try:
        with engine.begin() as conn:
            _apply(conn, plan, progress or (lambda step, total, text: None), summary or _summary(plan))
            if also is not None:
                also(conn)
    except sa.exc.DBAPIError as error:
        if _stale(engine, plan, error):
            raise PlanOutdated(_STALE) from error
        raise


def _apply(conn: sa.Connection, plan: Plan, progress: Progress, summary: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_APPLY_LOCK)
    if plan.missing_system_tables:  # checked when planning, so applying costs no catalog query
        tables = [system_metadata.tables[name] for name in plan.missing_system_tables]
        system_metadata.create_all(conn, tables=tables, checkfirst=True)
    total = len(plan.changes) + 1 + len(plan.migrations)
    for step, change in enumerate(plan.changes, start=1):
        progress(step, total, change.describe())
        for statement in plan.statements.get(step - 1, ()):
            conn.exec_driver_sql(statement)
    progress(len(plan.changes) + 1, total, "record metadata version")
    for statement in plan.statements.get(len(plan.changes), ()):  # foreign keys of new tables
        conn.exec_driver_sql(statement)
    if not packstore.record(conn, plan, summary):
        raise PlanOutdated(_STALE)
    if plan.forget_migrations:
        data_migrations.forget(conn, plan.forget_migrations)
    if plan.migrations:  # over the new schema, in this transaction: one that fails undoes it all
        steps = iter(range(len(plan.changes) + 2, total + 1))
        data_migrations.run(conn, plan.metadata, plan.schema, plan.migrations,
                            lambda text: progress(next(steps), total, text))


def _stale(engine: sa.Engine, plan: Plan, error: sa.exc.DBAPIError) -> bool:
    """After a failed apply: was the plan stale? If that cannot be read either, the original
    error is the one to see."""
    try:
        with engine.connect() as conn:
            current = packstore.current_version(conn)
    except sa.exc.DBAPIError:
        raise error from None
    return (current.version if current else None) != plan.previous


def _summary(plan: Plan) -> str:
    ddl = sum(1 for c in plan.changes if c.ddl)
    return f"{ddl} schema change(s), {len(plan.changes) - ddl + len(plan.edits)} metadata change(s)"

