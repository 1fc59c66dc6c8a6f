"""Packwork migrations against their own DDL executed raw, measured in one run on SQLite and
PostgreSQL. Only ratios mean anything across machines; each baseline is measured in the same run.

(a) install: `plan_packs(..., "install")` + `apply` of packs/standard_crm on an EMPTY database,
    against executing the same DDL raw on another empty database. The same DDL is what apply
    issues: the plan's rendered statements (`plan.statements`, one list per change, plus the
    deferred foreign keys) preceded by the CREATE TABLE/INDEX of Packwork's system tables, which
    apply creates on an empty database (and which the pack's foreign keys to pw_user need).
(b) upgrade: adding ONE nullable field to an entity whose table holds N rows (default 1,000,000).
    (i) Packwork apply only (the plan made beforehand, untimed), (ii) plan + apply, against
    (iii) raw: the plan's `ALTER TABLE item ADD COLUMN ...` on an identical table of N rows.
    Every repetition starts from a freshly built table (untimed). (i) and (ii) come from the
    same run: plan and apply are timed separately. Target: (i) and (ii) within 2x of raw.
    Every repetition also checks that the rows are untouched and the table was not rewritten
    (SQLite: same count/rowids and same root page, no `_alembic_tmp` batch copy in the SQL
    issued; PostgreSQL: same count/ids and same relfilenode).

Both sides use an engine from `packwork.runtime.db.make_engine` (on SQLite: WAL and a real BEGIN,
so the raw DDL runs in one transaction as Packwork's does; on PostgreSQL a plain engine), a new
engine per repetition whose connection is opened before the clock starts, and
`conn.exec_driver_sql` in one transaction for the raw side. Median of REPEATS, after one
untimed warm-up round of each measure.

    python bench/migrations.py [--rows N] [--db sqlite|postgresql|both]

PostgreSQL comes from PACKWORK_BENCH_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test);
each database of the run is a schema `bench_<run>_<n>`, all dropped at the end. SQLite files
live in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import Plan, apply
from packwork.runtime.system import system_metadata

ROOT = Path(__file__).resolve().parent.parent
CRM_PACK = ROOT / "packs" / "standard_crm"
PG_URL = os.environ.get("PACKWORK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPEATS = 3

ITEM_PACK = """name: bench_items
version: 1.0.0
entities:
  item:
    label: Item
    title_field: name
    fields:
      name: {type: text, required: true}
      qty: {type: integer}
      price: {type: decimal}
"""
NEW_FIELD = "      note: {type: text}\n"  # the one nullable field the upgrade adds


# -- databases -------------------------------------------------------------------------------

class Databases:
    """Fresh empty databases of one kind: SQLite files in a folder, or PostgreSQL schemas named
    after this run (all dropped by `drop_all`)."""

    def __init__(self, kind: str, folder: Path, run_id: str):
        self.kind, self.folder, self.run_id = kind, folder, run_id
        self.count = 0
        self.schemas: list[str] = []

    def fresh(self) -> str:
        self.count += 1
        name = f"bench_{self.run_id}_{self.count}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / name}.db"
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        admin.dispose()
        self.schemas.append(name)
        return f"{PG_URL}?options=-csearch_path%3D{name}"

    def drop_all(self) -> None:
        if not self.schemas:
            return
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            for name in self.schemas:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()
        self.schemas.clear()


@contextmanager
def connected_engine(url: str) -> Iterator[sa.Engine]:
    """A new engine whose pooled connection is already open, so no timing includes connecting."""
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
        yield engine
    finally:
        engine.dispose()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_raw(engine: sa.Engine, statements: list[str]) -> None:
    """The baseline: the statements as text, one transaction, nothing else."""
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def plan_ddl(plan: Plan) -> list[str]:
    """Every statement of the plan in the order apply issues them (the deferred foreign keys of
    new tables are the last entry, keyed len(plan.changes))."""
    return [s for index in sorted(plan.statements) for s in plan.statements[index]]


def system_ddl(dialect: sa.Dialect) -> list[str]:
    """CREATE TABLE/INDEX of Packwork's system tables, as apply creates them on an empty database."""
    statements = []
    for table in system_metadata.sorted_tables:
        statements.append(str(sa.schema.CreateTable(table).compile(dialect=dialect)).strip())
        statements += [str(sa.schema.CreateIndex(i).compile(dialect=dialect)).strip()
                       for i in sorted(table.indexes, key=lambda i: i.name)]
    return statements


@contextmanager
def captured_sql(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement the engine sends to the database while the block runs."""
    issued: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany) -> None:
        issued.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield issued
    finally:
        event.remove(engine, "before_cursor_execute", listener)


# -- (a) install -----------------------------------------------------------------------------

@dataclass
class InstallResult:
    plan: list[float] = field(default_factory=list)
    apply: list[float] = field(default_factory=list)
    plan_apply: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    statements: int = 0


def install_once(dbs: Databases, result: InstallResult | None) -> None:
    """One Packwork install and one raw install, each on its own empty database."""
    with connected_engine(dbs.fresh()) as engine:
        start = time.perf_counter()
        plan = plan_packs(engine, [CRM_PACK], "install")
        planned = time.perf_counter()
        apply(engine, plan)
        done = time.perf_counter()
        statements = system_ddl(engine.dialect) + plan_ddl(plan)
    with connected_engine(dbs.fresh()) as engine:
        raw = timed(lambda: run_raw(engine, statements))
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"account", "contact", "lead", "opportunity", "pw_user"} <= tables, tables
    if result is not None:
        result.plan.append(planned - start)
        result.apply.append(done - planned)
        result.plan_apply.append(done - start)
        result.raw.append(raw)
        result.statements = len(statements)


def bench_install(dbs: Databases) -> InstallResult:
    install_once(dbs, None)  # warm-up: imports and first-use caches of both sides
    result = InstallResult()
    for _ in range(REPEATS):
        install_once(dbs, result)
    return result


# -- (b) add one nullable field to a table of N rows -----------------------------------------

def load_rows(engine: sa.Engine, rows: int) -> None:
    """N rows in one statement: a recursive CTE on SQLite, generate_series on PostgreSQL."""
    columns = "name, qty, price, created_at, updated_at, version"
    if engine.dialect.name == "sqlite":
        sql = (f"INSERT INTO item ({columns}) WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL "
               f"SELECT x + 1 FROM n WHERE x < {rows}) "
               "SELECT 'item ' || x, x % 100, x * 0.01, datetime('now'), datetime('now'), 1 FROM n")
    else:
        sql = (f"INSERT INTO item ({columns}) SELECT 'item ' || x, mod(x, 100), x * 0.01, now(), now(), 1 "
               f"FROM generate_series(1, {rows}) AS x")
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    if engine.dialect.name == "postgresql":
        # Settle the table so autovacuum does not wake up on the fresh million rows and hold a
        # lock that the timed ALTER then waits for.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) item")


class ItemTables:
    """Identical databases with the small pack installed and `item` holding N rows. SQLite: one
    template file built once and copied; PostgreSQL: a new schema built each time."""

    def __init__(self, dbs: Databases, pack: Path, rows: int):
        self.dbs, self.pack, self.rows = dbs, pack, rows
        self.template: Path | None = None

    def _build(self) -> str:
        url = self.dbs.fresh()
        self.pack.joinpath("pack.yaml").write_text(ITEM_PACK)
        with connected_engine(url) as engine:
            apply(engine, plan_packs(engine, [self.pack], "install"))
            load_rows(engine, self.rows)
        return url  # on SQLite, closing the last connection checkpointed the WAL into the file

    def fresh(self) -> str:
        if self.dbs.kind == "postgresql":
            return self._build()
        if self.template is None:
            self.template = Path(self._build().removeprefix("sqlite:///"))
        url = self.dbs.fresh()
        shutil.copyfile(self.template, url.removeprefix("sqlite:///"))
        self.pack.joinpath("pack.yaml").write_text(ITEM_PACK)
        return url


@dataclass(frozen=True)
class TableState:
    rows: int
    min_id: int
    max_id: int
    sum_id: int
    storage: int  # SQLite: root page of the table's b-tree; PostgreSQL: relfilenode

    @classmethod
    def of(cls, engine: sa.Engine) -> TableState:
        sqlite = engine.dialect.name == "sqlite"
        key = "rowid" if sqlite else "id"
        storage = ("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'item'" if sqlite
                   else "SELECT pg_relation_filenode('item')")
        with engine.connect() as conn:
            count, low, high, total = conn.exec_driver_sql(
                f"SELECT count(*), min({key}), max({key}), sum({key}) FROM item").one()
            return cls(count, low, high, int(total), conn.exec_driver_sql(storage).scalar_one())


def columns_of_item(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in sa.inspect(conn).get_columns("item")]


@dataclass
class AddFieldResult:
    plan: list[float] = field(default_factory=list)
    apply: list[float] = field(default_factory=list)
    plan_apply: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    rendered: str = ""
    ddl_issued: list[str] = field(default_factory=list)  # by Packwork's apply, on the item table
    batch_copy: bool = False
    unchanged: bool = True
    problems: list[str] = field(default_factory=list)


def check_untouched(engine: sa.Engine, before: TableState, label: str, result: AddFieldResult) -> None:
    after = TableState.of(engine)
    if after != before:
        result.unchanged = False
        result.problems.append(f"{label}: table changed {before} -> {after}")
    if "note" not in columns_of_item(engine):
        result.problems.append(f"{label}: column note missing after the upgrade")


def add_field_packwork(tables: ItemTables, result: AddFieldResult | None) -> None:
    """(i) and (ii) on one fresh table: plan and apply timed separately."""
    url = tables.fresh()
    with connected_engine(url) as engine:
        before = TableState.of(engine)
        tables.pack.joinpath("pack.yaml").write_text(ITEM_PACK + NEW_FIELD)
        with captured_sql(engine) as issued:
            start = time.perf_counter()
            plan = plan_packs(engine, [tables.pack], "upgrade")
            planned = time.perf_counter()
            apply(engine, plan)
            done = time.perf_counter()
        if result is None:
            return
        check_untouched(engine, before, "packwork", result)
    ddl = [s for s in issued if s.split(" ", 1)[0].upper() in ("ALTER", "CREATE", "DROP")
           or "_alembic_tmp" in s or s.upper().startswith("INSERT INTO ITEM")]
    result.ddl_issued = ddl
    result.batch_copy = result.batch_copy or any(
        "_alembic_tmp" in s or s.upper().startswith(("CREATE TABLE", "DROP TABLE", "INSERT INTO ITEM"))
        for s in ddl)
    result.rendered = plan.render()
    result.plan.append(planned - start)
    result.apply.append(done - planned)
    result.plan_apply.append(done - start)


def add_field_raw(tables: ItemTables, result: AddFieldResult | None, statements: list[str]) -> None:
    """(iii): the plan's DDL as text on an identical fresh table."""
    url = tables.fresh()
    with connected_engine(url) as engine:
        before = TableState.of(engine)
        with captured_sql(engine):  # the same listener as the Packwork side, for symmetry
            elapsed = timed(lambda: run_raw(engine, statements))
        if result is None:
            return
        check_untouched(engine, before, "raw", result)
    result.raw.append(elapsed)


def upgrade_statements(tables: ItemTables) -> list[str]:
    """The DDL the upgrade plan renders (planned on a throwaway copy, so the raw side runs the
    very statements Packwork would)."""
    url = tables.fresh()
    with connected_engine(url) as engine:
        tables.pack.joinpath("pack.yaml").write_text(ITEM_PACK + NEW_FIELD)
        return plan_ddl(plan_packs(engine, [tables.pack], "upgrade"))


def bench_add_field(dbs: Databases, rows: int) -> AddFieldResult:
    pack = dbs.folder / "item_pack"
    pack.mkdir(exist_ok=True)
    warm = ItemTables(dbs, pack, min(rows, 1000))
    warm_statements = upgrade_statements(warm)
    add_field_packwork(warm, None)  # warm-up on a small table, untimed
    add_field_raw(warm, None, warm_statements)
    tables = ItemTables(dbs, pack, rows)
    statements = upgrade_statements(tables)
    result = AddFieldResult()
    for _ in range(REPEATS):  # interleaved so drift in the machine hits both sides alike
        add_field_packwork(tables, result)
        add_field_raw(tables, result, statements)
    return result


# -- report ----------------------------------------------------------------------------------

def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def spread(values: list[float]) -> str:
    return "/".join(f"{v * 1000:.1f}" for v in values)


def report(kind: str, rows: int, install: InstallResult, added: AddFieldResult) -> list[tuple[str, str]]:
    """Print one database's results; return (label, cell) rows for the summary table."""
    raw_i, raw_b = ms(install.raw), ms(added.raw)
    lines = [
        ("install standard_crm: raw DDL "
         f"({install.statements} statements)", f"{raw_i:8.1f} ms"),
        ("  packwork plan + apply", f"{ms(install.plan_apply):8.1f} ms  {ms(install.plan_apply) / raw_i:6.2f}x"),
        ("  packwork apply only", f"{ms(install.apply):8.1f} ms  {ms(install.apply) / raw_i:6.2f}x"),
        (f"add 1 nullable field, {rows:,} rows: raw ALTER", f"{raw_b:8.1f} ms"),
        ("  (i) packwork apply only", f"{ms(added.apply):8.1f} ms  {ms(added.apply) / raw_b:6.2f}x"),
        ("  (ii) packwork plan + apply", f"{ms(added.plan_apply):8.1f} ms  {ms(added.plan_apply) / raw_b:6.2f}x"),
    ]
    print(f"\n== {kind} ==")
    for label, cell in lines:
        print(f"  {label:<48} {cell}")
    print(f"  per repetition (ms): install raw {spread(install.raw)}, packwork plan+apply "
          f"{spread(install.plan_apply)}; add field raw {spread(added.raw)}, apply {spread(added.apply)}, "
          f"plan {spread(added.plan)}")
    print("  upgrade plan:\n" + "\n".join("    " + line for line in added.rendered.splitlines()))
    print(f"  DDL Packwork's apply issued on item: {added.ddl_issued}")
    print(f"  rows, ids and storage ({'root page' if kind == 'sqlite' else 'relfilenode'}) unchanged "
          f"on every repetition: {'yes' if added.unchanged else 'NO'}")
    if kind == "sqlite":
        print("  batch table copy on SQLite: " + ("YES - the nullable add rebuilt the table" if added.batch_copy
                                                   else "no (plain ALTER TABLE ... ADD COLUMN)"))
    for problem in added.problems:
        print(f"  PROBLEM: {problem}")
    target = max(ms(added.apply), ms(added.plan_apply)) / raw_b
    print(f"  2x target for the nullable add: {'met' if target <= 2 else 'NOT met'} "
          f"(worst of (i), (ii): {target:.2f}x)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the upgraded table")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    run_id = uuid.uuid4().hex[:8]
    print(f"rows={args.rows:,}  repeats={REPEATS} (median, after an untimed warm-up)  run={run_id}")
    summary: dict[str, list[tuple[str, str]]] = {}
    started = time.perf_counter()
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="pw_bench_") as folder:
            dbs = Databases(kind, Path(folder), run_id)
            try:
                install = bench_install(dbs)
                added = bench_add_field(dbs, args.rows)
            finally:
                dbs.drop_all()
        summary[kind] = report(kind, args.rows, install, added)
    print("\n== summary (median ms, ratio vs raw) ==")
    labels = [label for label, _ in next(iter(summary.values()))]
    print(f"  {'':<48} " + " ".join(f"{kind:>20}" for kind in summary))
    for index, label in enumerate(labels):
        print(f"  {label:<48} " + " ".join(f"{summary[kind][index][1]:>20}" for kind in summary))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
