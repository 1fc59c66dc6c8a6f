"""CSV import through the record service against a raw `executemany` of the same rows, SQLite.

The entity has a required text, a unique code, an integer, money, a boolean, a date, a choice
and an email, and one validation rule. The file has N rows (--rows, default 100,000), 1% of
them bad in four ways (not a number, a choice that does not exist, a rule's refusal, a
duplicate unique code). The import runs in `skip_bad` mode; the run checks that exactly the
bad rows are reported and exactly the others written, with one audit entry each.

The baseline inserts the good rows, already typed, with one `executemany` of the same INSERT
into the same table (no parsing, no checks, no rules, no audit). Target: import >= 0.3x raw.

    python bench/import.py [--rows N] [--batch 500] [--repeat N]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from packwork.runtime import importer, records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.users import create_user

PACK = """entities:
  item:
    label: {en: Item, zh: 物品}
    title_field: name
    fields:
      name: {type: text, label: {en: Name, zh: 名称}, required: true}
      code: {type: text, unique: true}
      qty: {type: integer}
      price: {type: money, currency: EUR}
      active: {type: boolean}
      made_on: {type: date}
      size: {type: choice, options: [{value: s, label: Small}, {value: m, label: Medium}, {value: l}]}
      email: {type: email}
rules:
  qty_not_negative:
    entity: item
    kind: validation
    code: |
      if record.qty is not None and record.qty < 0:
          error('qty', 'must not be negative')
"""
HEADER = "名称,code,qty,price,active,made_on,size,email\n"


def make_pack(folder: Path) -> Path:
    pack = folder / "bench_import"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: bench_import\nversion: 1.0.0\n")
    (pack / "entities.yaml").write_text(PACK)
    return pack


def make_csv(rows: int) -> tuple[bytes, set[int], list[tuple]]:
    """The file, the row numbers of its bad rows (header = row 1), and the good rows typed."""
    lines, bad, good = [HEADER], set(), []
    for n in range(rows):
        number = n + 2
        qty, size, code = str(n % 50), ("Medium", "m", "l")[n % 3], f"C{n}"
        if n % 100 == 37:  # 1%, spread evenly, four kinds of fault
            fault = (n // 100) % 4
            qty = "many" if fault == 0 else "-5" if fault == 2 else qty
            size = "huge" if fault == 1 else size
            code = f"C{n - 1}" if fault == 3 else code  # the previous row's code: unique clash
            bad.add(number)
        lines.append(f"Item {n},{code},{qty},12.50,{'yes' if n % 2 else 'no'},2024-02-{n % 28 + 1:02d},"
                     f"{size},i{n}@example.org\n")
        if number not in bad:
            good.append((f"Item {n}", code, int(qty), Decimal("12.50"), "EUR", n % 2 == 1,
                         f"2024-02-{n % 28 + 1:02d}", {"Medium": "m"}.get(size, size), f"i{n}@example.org"))
    return "".join(lines).encode("utf-8-sig"), bad, good


def raw_insert(path: Path, good: list[tuple], owner: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM item")
    conn.commit()
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO item (name, code, qty, price, price_currency, active, made_on, size, email, owner_id, "
        "created_by, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
        [(*row[:3], str(row[3]), *row[4:], owner, owner, "2026-01-01 00:00:00", "2026-01-01 00:00:00")
         for row in good])
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.execute("DELETE FROM item")
    conn.commit()
    conn.close()
    return elapsed


def run_import(engine, catalog, owner: int, data: bytes, batch: int) -> tuple[float, importer.ImportReport]:
    options = importer.ImportOptions(mode="skip_bad", batch_size=batch)
    started = time.perf_counter()
    with engine.begin() as conn:
        ctx = records.Context.start(conn, catalog, Actor(owner, frozenset({"admin"})))
        report = importer.import_file(ctx, "item", data, "items.csv", options)
    return time.perf_counter() - started, report


def one_round(data: bytes, bad: set[int], good: list[tuple], batch: int) -> tuple[float, float]:
    """Raw executemany and import, each into a fresh database: (raw seconds, import seconds)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "import.db"
        engine = make_engine(f"sqlite:///{path}")
        apply(engine, plan_packs(engine, [make_pack(Path(folder))], "install"))
        with engine.begin() as conn:
            owner = create_user(conn, "importer", ["admin"], [])
            catalog = load_catalog(conn)
        raw = raw_insert(path, good, owner)
        elapsed, report = run_import(engine, catalog, owner, data, batch)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM item").scalar()
            audited = conn.exec_driver_sql("SELECT count(*) FROM pw_audit WHERE entity = 'item'").scalar()
        engine.dispose()
    assert set(report.failed_rows()) == bad, "the report must name exactly the bad rows"
    assert report.created == stored == audited == len(good), (report.created, stored, audited, len(good))
    return raw, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=importer.BATCH)
    parser.add_argument("--repeat", type=int, default=1, help="rounds, each on a fresh database; the median counts")
    args = parser.parse_args()
    data, bad, good = make_csv(args.rows)
    print(f"{args.rows:,} rows, {len(bad):,} bad (reported exactly), {len(good):,} written, SQLite, "
          f"batches of {args.batch}")
    ratios = []
    for _ in range(args.repeat):
        raw, elapsed = one_round(data, bad, good, args.batch)
        raw_rate, import_rate = len(good) / raw, len(good) / elapsed
        ratios.append(import_rate / raw_rate)
        print(f"    raw executemany   {raw:8.2f} s   {raw_rate:10,.0f} rows/s")
        print(f"    import            {elapsed:8.2f} s   {import_rate:10,.0f} rows/s   (parse, permissions, "
              "validation, rules, audit)")
        print(f"    ratio             {ratios[-1]:8.3f}x   (target >= 0.3x)")
    if args.repeat > 1:
        print(f"median ratio of {args.repeat} rounds: {statistics.median(ratios):.3f}x "
              f"({', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
