"""`packwork db check`: does the database hold what the installed metadata says it holds?

Two halves, kept apart so the first can be tested without a database. The comparison is
pure: expected tables (from the recorded Schema and the system tables) and a Snapshot of the
database as plain data go in, Problems come out. The I/O half reads that snapshot with
`sqlalchemy.inspect` and the pack and version rows from the system tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from packwork.errors import PackError, PackworkError
from packwork.metadata.loader import PackSource, SourceFile
from packwork.metadata.physical import Schema, TableSpec, physical_schema, schema_from_json
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore
from packwork.runtime.db import make_engine, normalize_url, reading
from packwork.runtime.system import pw_meta_version, pw_pack, system_metadata
from packwork.runtime.tables import ON_DELETE

# Storage kinds -> the type family a column of that kind must reflect as. Families, not exact
# types: SQLite reports what DDL said, PostgreSQL its own names, and lengths may legitimately grow.
STORAGE_FAMILY = {"string": "text", "text": "text", "integer": "integer", "reference": "integer",
                  "decimal": "decimal", "boolean": "boolean", "date": "date", "datetime": "datetime",
                  "json": "json"}
_TYPE_FAMILIES = ((sa.Boolean, "boolean"), (sa.Integer, "integer"), (sa.Float, "float"),
                  (sa.Numeric, "decimal"), (sa.DateTime, "datetime"), (sa.Date, "date"),
                  (sa.JSON, "json"), (sa.String, "text"))


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    where: str  # table, or table.column
    message: str

    def format(self) -> str:
        return f"{self.where}: {self.message} [{self.code}]"


@dataclass(frozen=True, slots=True)
class ColumnState:
    name: str
    family: str
    type_name: str = ""


@dataclass(frozen=True, slots=True)
class IndexState:
    name: str | None  # None: match by columns (unnamed unique constraints of system tables)
    columns: tuple[str, ...]
    unique: bool = False
    partial: bool = False

    def describe(self) -> str:
        kind = "unique index" if self.unique else "index"
        return f"{kind} on ({', '.join(self.columns)}){' over live rows' if self.partial else ''}"


@dataclass(frozen=True, slots=True)
class ForeignKeyState:
    column: str
    target: str
    on_delete: str | None = None  # None expected: any rule will do

    def describe(self) -> str:
        return f"{self.target}{f' ON DELETE {self.on_delete}' if self.on_delete else ''}"


@dataclass(frozen=True, slots=True)
class TableState:
    name: str
    columns: tuple[ColumnState, ...]
    indexes: tuple[IndexState, ...] = ()
    foreign_keys: tuple[ForeignKeyState, ...] = ()


@dataclass(frozen=True, slots=True)
class PackState:
    name: str
    version: str
    depends: tuple[str, ...]
    files: Mapping[str, str]
    checksum: str


@dataclass(frozen=True, slots=True)
class VersionState:
    id: int
    version: str
    packs: Mapping[str, str]
    schema: Schema | None  # None when the recorded JSON cannot be read
    schema_error: str = ""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the system tables say is installed: every pack row and the newest version row."""

    packs: tuple[PackState, ...]
    version: VersionState | None


@dataclass(frozen=True, slots=True)
class Report:
    problems: list[Problem]
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


# -- expected state, from specs (pure) ------------------------------------------------------

def type_family(type_: sa.types.TypeEngine) -> str:
    """The family of a declared or reflected column type (`integer`, `text`, ...)."""
    for cls, family in _TYPE_FAMILIES:
        if isinstance(type_, cls):
            return family
    return type(type_).__name__.lower()


def expected_table(spec: TableSpec) -> TableState:
    """A pack table as the recorded schema describes it, orphaned columns included: their
    data stays until a purge, so they must still exist."""
    specs = spec.columns + spec.orphans
    names = {c.name for c in specs}
    columns = tuple(ColumnState(c.name, STORAGE_FAMILY[c.storage.kind], c.storage.describe()) for c in specs)
    # runtime.tables makes a live_only index partial only where the table has deleted_at
    indexes = tuple(IndexState(i.name, i.columns, i.unique, i.live_only and "deleted_at" in names)
                    for i in spec.indexes)
    keys = tuple(ForeignKeyState(c.name, c.references, ON_DELETE[c.on_delete or "set_null"])
                 for c in specs if c.references)
    return TableState(spec.name, columns, indexes, keys)


def system_table(table: sa.Table) -> TableState:
    columns = tuple(ColumnState(c.name, type_family(c.type), type_family(c.type)) for c in table.columns)
    indexes = [IndexState(i.name, tuple(c.name for c in i.columns), bool(i.unique)) for i in table.indexes]
    indexes += [IndexState(None, tuple(c.name for c in u.columns), True) for u in table.constraints
                if isinstance(u, sa.UniqueConstraint)]
    keys = tuple(ForeignKeyState(k.parent.name, k.column.table.name, k.ondelete) for k in table.foreign_keys)
    return TableState(table.name, columns, tuple(indexes), keys)


# -- comparing (pure) -----------------------------------------------------------------------

def compare_table(expected: TableState, actual: TableState | None, *, extra_columns: bool = True,
                  missing_foreign_keys: bool = True) -> Iterator[Problem]:
    """Every way `actual` falls short of `expected`. `missing_foreign_keys=False` where the
    database cannot have them (SQLite cannot add a foreign key to an existing table)."""
    if actual is None:
        yield Problem("DB-E001", expected.name, "table missing")
        return
    yield from _compare_columns(expected, actual, extra_columns)
    yield from _compare_indexes(expected, actual)
    yield from _compare_foreign_keys(expected, actual, missing_foreign_keys)


def _compare_columns(expected: TableState, actual: TableState, extra: bool) -> Iterator[Problem]:
    found = {c.name: c for c in actual.columns}
    for column in expected.columns:
        where = f"{expected.name}.{column.name}"
        real = found.get(column.name)
        if real is None:
            yield Problem("DB-E002", where, f"column missing (expected {column.type_name or column.family})")
        elif real.family != column.family:
            wanted = column.family if column.type_name in ("", column.family) else \
                f"{column.type_name} ({column.family})"
            yield Problem("DB-E003", where, f"column is {real.type_name or real.family}, expected {wanted}")
    if extra:
        known = {c.name for c in expected.columns}
        yield from (Problem("DB-E004", f"{expected.name}.{c.name}", "column not in the installed metadata")
                    for c in actual.columns if c.name not in known)


def _compare_indexes(expected: TableState, actual: TableState) -> Iterator[Problem]:
    by_name = {i.name: i for i in actual.indexes if i.name}
    for index in expected.indexes:
        where = f"{expected.name}.{index.columns[0]}"
        if index.name is None:
            if not any((i.columns, i.unique) == (index.columns, index.unique) for i in actual.indexes):
                yield Problem("DB-E005", where, f"{index.describe()} missing")
            continue
        real = by_name.get(index.name)
        if real is None:
            yield Problem("DB-E005", where, f"{index.describe()} missing ({index.name})")
        elif (real.columns, real.unique, real.partial) != (index.columns, index.unique, index.partial):
            yield Problem("DB-E006", where, f"{index.name} is wrong: {real.describe()}, expected {index.describe()}")


def _compare_foreign_keys(expected: TableState, actual: TableState, missing: bool) -> Iterator[Problem]:
    found: dict[str, list[ForeignKeyState]] = {}
    for key in actual.foreign_keys:
        found.setdefault(key.column, []).append(key)
    for key in expected.foreign_keys:
        where = f"{expected.name}.{key.column}"
        real = found.get(key.column, [])
        if any(k.target == key.target and (key.on_delete is None or k.on_delete == key.on_delete) for k in real):
            continue
        if real:
            yield Problem("DB-E008", where, f"foreign key goes to {real[0].describe()}, expected {key.describe()}")
        elif missing:
            yield Problem("DB-E007", where, f"foreign key to {key.describe()} missing")


def compare_records(recorded: Recorded) -> Iterator[Problem]:
    """Is the newest metadata version whole, and do the pack rows agree with it? Both are
    written by one statement batch in one transaction, so any disagreement means a row was
    half written or edited by hand."""
    version = recorded.version
    if version is None:
        listed = f"yet pw_pack lists {', '.join(p.name for p in recorded.packs)}" if recorded.packs else \
            "no packs installed"
        yield Problem("DB-E010", pw_meta_version.name, f"no metadata version recorded: {listed}")
        return
    where = f"{pw_meta_version.name}.#{version.id}"
    if version.schema is None:
        yield Problem("DB-E016", where, f"recorded schema cannot be read ({version.schema_error})")
    packs = {p.name: p for p in recorded.packs}
    for name, number in version.packs.items():
        if name not in packs:
            yield Problem("DB-E011", f"{pw_pack.name}.{name}", f"listed by metadata version #{version.id} "
                                                                "but not recorded")
        elif packs[name].version != number:
            yield Problem("DB-E013", f"{pw_pack.name}.{name}", f"version {packs[name].version} recorded, "
                                                                f"metadata version #{version.id} has {number}")
    for pack in recorded.packs:
        yield from _compare_pack(pack, packs, version)
    if version.schema is not None:
        yield from _compare_implied_schema(recorded, version)


def _compare_pack(pack: PackState, packs: Mapping[str, PackState], version: VersionState) -> Iterator[Problem]:
    where = f"{pw_pack.name}.{pack.name}"
    if pack.name not in version.packs:
        yield Problem("DB-E012", where, f"recorded but not part of metadata version #{version.id}")
    if packstore.checksum(_source(pack)) != pack.checksum:
        yield Problem("DB-E014", where, "checksum does not match the recorded files")
    for dependency in pack.depends:
        if dependency not in packs:
            yield Problem("DB-E015", where, f"depends on {dependency}, which is not recorded")


def _source(pack: PackState) -> PackSource:
    return PackSource(pack.name, tuple(SourceFile(p, t) for p, t in sorted(pack.files.items())))


def _compare_implied_schema(recorded: Recorded, version: VersionState) -> Iterator[Problem]:
    """The recorded packs, resolved again, must imply no table or column the recorded schema
    lacks: if they do, the pack rows were written without their version."""
    try:
        implied = physical_schema(resolve_sources([_source(p) for p in recorded.packs]))
    except PackError as error:
        yield Problem("DB-E018", pw_pack.name, f"the recorded pack files do not resolve: "
                                               f"{error.problems[0].format() if error.problems else error}")
        return
    for name, spec in implied.tables.items():
        table = version.schema.tables.get(name)
        if table is None or table.orphaned:
            yield Problem("DB-E017", name, f"defined by the recorded packs but not by metadata version #{version.id}")
            continue
        for column in spec.columns:
            known = table.column(column.name)
            if known is None or known.storage != column.storage:
                yield Problem("DB-E017", f"{name}.{column.name}", "defined by the recorded packs as "
                              f"{column.storage.describe()} but not so by metadata version #{version.id}")


def compare_database(snapshot: Mapping[str, TableState], recorded: Recorded | None, dialect: str) -> Report:
    """Everything `db check` reports, from plain data."""
    if recorded is None and not any(name in snapshot for name in system_metadata.tables):
        return Report([Problem("DB-E010", pw_meta_version.name, "no Packwork tables here: nothing is installed")])
    problems = [p for t in system_metadata.tables.values()
                for p in compare_table(system_table(t), snapshot.get(t.name), extra_columns=False)]
    schema = recorded.version.schema if recorded and recorded.version else None
    if recorded is not None:
        problems += compare_records(recorded)
    counts = {"system tables": len(system_metadata.tables)}
    if schema is not None:
        expected = [expected_table(spec) for spec in schema.tables.values()]
        for table in expected:
            problems += compare_table(table, snapshot.get(table.name), missing_foreign_keys=dialect != "sqlite")
        # pw_ is reserved for the platform: a newer Packwork's system table is not a stray
        problems += [Problem("DB-E009", name, "table not in the installed metadata") for name in sorted(snapshot)
                     if name not in schema.tables and not name.startswith("pw_")]
        counts = {"tables": len(expected), "columns": sum(len(t.columns) for t in expected),
                  "indexes": sum(len(t.indexes) for t in expected),
                  "foreign keys": sum(len(t.foreign_keys) for t in expected)} | counts
    return Report(problems, _summary(recorded, counts))


def _summary(recorded: Recorded | None, counts: dict[str, int]) -> str:
    matched = ", ".join(f"{n} {what}" for what, n in counts.items())
    version = recorded.version if recorded else None
    if version is None:
        return f"{matched} checked"
    packs = ", ".join(f"{name} {number}" for name, number in sorted(version.packs.items()))
    return f"metadata version {version.version} (#{version.id}; {packs}): {matched} match the database"


# -- reading the database (I/O) -------------------------------------------------------------

def read_snapshot(conn: sa.Connection) -> dict[str, TableState]:
    """Every table of the connection's default schema, as plain data. The get_multi_* calls
    read the catalog in a few queries whatever the number of tables."""
    inspector = sa.inspect(conn)
    columns = inspector.get_multi_columns()
    indexes, uniques = inspector.get_multi_indexes(), inspector.get_multi_unique_constraints()
    keys = inspector.get_multi_foreign_keys()
    return {name: TableState(
        name,
        tuple(ColumnState(c["name"], type_family(c["type"]), str(c["type"])) for c in cols),
        _reflected_indexes(indexes.get((schema, name), []), uniques.get((schema, name), [])),
        tuple(ForeignKeyState(c, k["referred_table"], k.get("options", {}).get("ondelete"))
              for k in keys.get((schema, name), []) for c in k["constrained_columns"]))
        for (schema, name), cols in columns.items()}


def _reflected_indexes(indexes: list[dict], uniques: list[dict]) -> tuple[IndexState, ...]:
    found = [IndexState(i["name"], tuple(i["column_names"]), bool(i["unique"]),
                        any(key.endswith("_where") for key in i.get("dialect_options", {})))
             for i in indexes]
    named = {i.name for i in found}
    found += [IndexState(u["name"], tuple(u["column_names"]), True) for u in uniques
              if u["name"] is None or u["name"] not in named]  # PostgreSQL lists a constraint's index too
    return tuple(found)


def read_recorded(conn: sa.Connection, tables: Mapping[str, TableState]) -> Recorded | None:
    """The pack rows and the newest version row, read raw so a damaged row is reported, not
    raised; None without the two system tables (reported as missing system tables)."""
    if pw_pack.name not in tables or pw_meta_version.name not in tables:
        return None
    packs = tuple(PackState(r.name, r.version, tuple(r.depends or ()), r.files or {}, r.checksum)
                  for r in conn.execute(sa.select(pw_pack).order_by(pw_pack.c.name)))
    row = conn.execute(sa.select(pw_meta_version).order_by(pw_meta_version.c.id.desc()).limit(1)).first()
    if row is None:
        return Recorded(packs, None)
    try:
        schema, error = schema_from_json(row.schema), ""
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        schema, error = None, f"{type(exc).__name__}: {exc}"
    return Recorded(packs, VersionState(row.id, row.version, dict(row.packs or {}), schema, error))


def check_database(conn: sa.Connection) -> Report:
    snapshot = read_snapshot(conn)
    return compare_database(snapshot, read_recorded(conn, snapshot), conn.dialect.name)


def check_url(url: str) -> Report:
    """Check the database at `url` in one read-only transaction (consistent on PostgreSQL,
    without the write lock on SQLite), so it is safe while the application runs."""
    engine = _engine(url)
    try:
        with reading(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return check_database(conn)
    except sa.exc.OperationalError as error:
        raise PackworkError(f"cannot read the database {shown_url(url)}: "
                            f"{str(error.orig).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()


def _engine(url: str) -> sa.Engine:
    try:
        backend = make_url(normalize_url(url)).get_backend_name()
    except sa.exc.ArgumentError:
        raise PackworkError(f"not a database URL: {url!r}") from None
    if backend not in ("sqlite", "postgresql"):
        raise PackworkError(f"cannot check {backend} databases: only SQLite and PostgreSQL")
    return make_engine(url)


def shown_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)
