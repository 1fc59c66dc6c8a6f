"""Migration cost against its own DDL, measured in one run on SQLite and PostgreSQL.

(a) install: `packwork pack install packs/standard_crm` (plan + apply: DDL and the recorded
    version) against executing the same rendered DDL statements raw in one transaction; both
    start from a database holding only Packwork's system tables.
(b) upgrade: adding one nullable field to a table of N rows (default 1,000,000): Packwork's apply
    alone, and plan + apply, against the raw `ALTER TABLE ... ADD COLUMN` the plan issues, each
    on an identical fresh copy of the table. Median of 5 (--repeats). Target: within 2x of the
    raw ALTER.

    python bench/migrations.py [--rows N] [--db sqlite|postgresql|both] [--repeats N]
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
from pathlib import Path

import sqlalchemy as sa

from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import Plan, apply
from packwork.runtime.system import system_metadata

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("PACKWORK_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ITEM_PACK = """name: bench
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
NEW_FIELD = "      note: {type: text}\n"
WARM_UP_FIELD = "      tag: {type: text}\n"


class Databases:
    """Fresh empty databases of one kind: SQLite files in a temp dir, or PostgreSQL schemas."""

    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder, self.schemas = kind, folder, []

    def fresh(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / name}.db"
        with sa.create_engine(PG_URL).begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        self.schemas.append(name)
        return f"{PG_URL}?options=-csearch_path%3D{name}"

    def drop_all(self) -> None:
        engine = sa.create_engine(PG_URL)
        for name in self.schemas:  # one transaction each: all at once runs out of lock slots
            with engine.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def run_raw(engine: sa.Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def all_statements(plan: Plan) -> list[str]:
    return [s for index in sorted(plan.statements) for s in plan.statements[index]]


def bench_install(dbs: Databases, repeats: int) -> dict[str, float]:
    """Both sides start from a database holding only the system tables (which the DDL references)."""
    packwork_times, raw_times = [], []
    for _ in range(repeats):
        with engine_for(dbs.fresh()) as engine:
            system_metadata.create_all(engine)
            packwork_times.append(timed(lambda: apply(engine, plan_packs(engine, [ROOT / "packs/standard_crm"],
                                                                         "install"))))
        with engine_for(dbs.fresh()) as engine:
            system_metadata.create_all(engine)
            statements = all_statements(plan_packs(engine, [ROOT / "packs/standard_crm"], "install"))
            raw_times.append(timed(lambda: run_raw(engine, statements)))
    return {"packwork": statistics.median(packwork_times), "raw": statistics.median(raw_times)}


def load_rows(engine: sa.Engine, rows: int) -> None:
    columns = "name, qty, price, created_at, updated_at, version"
    if engine.dialect.name == "sqlite":
        sql = (f"INSERT INTO item ({columns}) WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
               f"WHERE x < {rows}) SELECT 'item ' || x, x % 100, x * 0.01, datetime('now'), datetime('now'), 1 "
               "FROM n")
    else:
        sql = (f"INSERT INTO item ({columns}) SELECT 'item ' || x, mod(x, 100), x * 0.01, now(), now(), 1 "
               f"FROM generate_series(1, {rows}) AS x")
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)


class ItemTables:
    """Makes identical installed databases whose `item` table holds N rows."""

    def __init__(self, dbs: Databases, pack: Path, rows: int):
        self.dbs, self.pack, self.rows = dbs, pack, rows
        self.template: Path | None = None

    def fresh(self) -> str:
        if self.dbs.kind == "sqlite" and self.template is not None:
            url = self.dbs.fresh()
            shutil.copy(self.template, url.removeprefix("sqlite:///"))
            return url
        url = self.dbs.fresh()
        self.pack.joinpath("pack.yaml").write_text(ITEM_PACK)
        with engine_for(url) as engine:
            apply(engine, plan_packs(engine, [self.pack], "install"))
            load_rows(engine, self.rows)
        if self.dbs.kind == "sqlite":  # closing the last connection checkpointed the WAL into the file
            self.template = Path(url.removeprefix("sqlite:///"))
            return self.fresh()
        return url


def bench_add_field(dbs: Databases, rows: int, repeats: int) -> dict[str, object]:
    """Every measure starts from an identical table of `rows` rows that has already had one
    field added by Packwork (untimed). "warm" then times a second upgrade on that engine, as a
    running server applies an administrator's change; "cold" times it on a new engine, as the
    CLI does; "raw" executes the DDL the plan issues."""
    pack = dbs.folder / "item_pack"
    pack.mkdir(exist_ok=True)
    tables = ItemTables(dbs, pack, rows)
    times: dict[str, list[float]] = {"cold": [], "warm": [], "warm plan+apply": [], "raw": []}
    statements: list[str] = []
    for _ in range(repeats):
        for measure in times:
            url = tables.fresh()
            pack.joinpath("pack.yaml").write_text(ITEM_PACK + WARM_UP_FIELD)
            with engine_for(url) as engine:
                apply(engine, plan_packs(engine, [pack], "upgrade"))
            pack.joinpath("pack.yaml").write_text(ITEM_PACK + WARM_UP_FIELD + NEW_FIELD)
            with engine_for(url) as engine:
                if measure.startswith("warm"):
                    pack.joinpath("pack.yaml").write_text(ITEM_PACK)  # warm the engine: add, then drop,
                    apply(engine, plan_packs(engine, [pack], "upgrade"))  # the warm-up field's
                    pack.joinpath("pack.yaml").write_text(ITEM_PACK + WARM_UP_FIELD)  # metadata
                    apply(engine, plan_packs(engine, [pack], "upgrade"))
                    pack.joinpath("pack.yaml").write_text(ITEM_PACK + WARM_UP_FIELD + NEW_FIELD)
                if measure in ("cold", "warm"):
                    plan = plan_packs(engine, [pack], "upgrade")
                    times[measure].append(timed(lambda: apply(engine, plan)))
                elif measure == "warm plan+apply":
                    times[measure].append(timed(lambda: apply(engine, plan_packs(engine, [pack], "upgrade"))))
                else:
                    statements = all_statements(plan_packs(engine, [pack], "upgrade"))
                    times[measure].append(timed(lambda: run_raw(engine, statements)))
                with engine.connect() as conn:
                    kept = conn.exec_driver_sql("SELECT count(*), min(id), max(id) FROM item").one()
                assert tuple(kept) == (rows, 1, rows), f"rows changed: {kept}"
    return {name: statistics.median(values) for name, values in times.items()} | {"ddl": statements}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"rows={args.rows:,} repeats={args.repeats} (median)")
    for kind in kinds:
        with tempfile.TemporaryDirectory() as folder:
            dbs = Databases(kind, Path(folder))
            try:
                install = bench_install(dbs, args.repeats)
                added = bench_add_field(dbs, args.rows, args.repeats)
            finally:
                if kind == "postgresql":
                    dbs.drop_all()
        print(f"\n{kind}")
        print(f"  install standard_crm   packwork {install['packwork'] * 1000:8.1f} ms   raw DDL "
              f"{install['raw'] * 1000:8.1f} ms   ratio {install['packwork'] / install['raw']:.2f}x")
        raw = added["raw"]
        print(f"  add nullable field     raw ALTER {raw * 1000:7.1f} ms")
        for name in ("cold", "warm", "warm plan+apply"):
            print(f"    packwork {name:16} {added[name] * 1000:7.1f} ms   ratio {added[name] / raw:.2f}x")
        print(f"  DDL issued: {' '.join(added['ddl'])}")


if __name__ == "__main__":
    main()
