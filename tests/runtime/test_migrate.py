"""Plan and apply on real databases (SQLite and PostgreSQL): install, upgrade with data,
refusals, orphans and purge, atomic failure."""

from __future__ import annotations

import hashlib
import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from packwork.errors import MigrationRefused
from packwork.metadata import diff as d
from packwork.runtime import packstore
from packwork.runtime.installer import PackStateError, installed_metadata, plan_packs, plan_purge
from packwork.runtime.migrate import PlanOutdated, apply
from packwork.runtime.tables import build_tables

ROWS = 100_000


def install(engine, path, mode="install", **kw):
    plan = plan_packs(engine, [path], mode, **kw)
    apply(engine, plan)
    return plan


def columns(engine, table):
    return {c["name"]: c for c in sa.inspect(engine).get_columns(table)}


def indexes(engine, table):
    return {i["name"] for i in sa.inspect(engine).get_indexes(table)}


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def seed_items(engine, count):
    with engine.connect() as conn:
        table = build_tables(packstore.current_version(conn).schema)["item"]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [{"created_at": now, "updated_at": now, "version": 1, "name": f"item {i}", "sku": f"S{i:06d}",
             "quantity": i, "price": Decimal(i) / 100, "price_currency": "CNY", "fax": f"+86 {i}",
             "note": "n" * (i % 7), "received_on": date(2025, 1 + i % 12, 1 + i % 28)} for i in range(count)]
    with engine.begin() as conn:
        for start in range(0, count, 10_000):
            conn.execute(table.insert(), rows[start:start + 10_000])


def fingerprint(engine, names):
    """A hash of every row's values in `names`, ordered by id: any lost or changed row shows."""
    digest = hashlib.sha256()
    count = 0
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT {', '.join(names)} FROM item ORDER BY id"))
        for row in result:
            digest.update(repr(tuple(str(v) for v in row)).encode())
            count += 1
    return count, digest.hexdigest()


def test_plan_touches_nothing_then_install_creates_tables(engine, pack_copy):
    mini = pack_copy("mini")
    plan = plan_packs(engine, [mini], "plan")
    assert not sa.inspect(engine).get_table_names()
    assert any(isinstance(c, d.CreateTable) and c.table == "widget" for c in plan.changes)
    assert any("CREATE TABLE widget" in s for stmts in plan.statements.values() for s in stmts)
    apply(engine, plan)
    assert {"widget", "bin", "widget_link", "pw_pack", "pw_meta_version"} <= set(sa.inspect(engine).get_table_names())
    cols = columns(engine, "widget")
    for name in ("id", "created_at", "updated_at", "created_by", "owner_id", "version", "deleted_at",
                 "record_type", "price", "price_currency", "total", "tags"):
        assert name in cols
    assert "uq_widget_code" in indexes(engine, "widget")
    assert installed_metadata(engine).version == plan.metadata.version


def test_install_twice_is_refused_and_upgrade_needs_install(engine, pack_copy):
    mini = pack_copy("mini")
    with pytest.raises(PackStateError, match="not installed"):
        plan_packs(engine, [mini], "upgrade")
    install(engine, mini)
    with pytest.raises(PackStateError, match="already installed"):
        plan_packs(engine, [mini], "install")
    assert plan_packs(engine, [mini], "upgrade").empty


def test_upgrade_with_100k_rows_loses_and_changes_nothing(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, ROWS)
    original = ["id", "name", "sku", "quantity", "price", "price_currency", "fax", "note", "received_on"]
    before = fingerprint(engine, original)
    assert before[0] == ROWS

    manifest = stock / "pack.yaml"
    edit(manifest, "version: 1.0.0", "version: 1.1.0")
    edit(manifest, "      fax: {type: phone}", "      fax: {type: phone, hidden: true}")  # hide
    edit(manifest, "      sku: {type: text, max_length: 30}", "      sku: {type: text, max_length: 30, indexed: true}")
    edit(manifest, "label: {en: Item, zh: 物品}", "label: {en: Article, zh: 物件}")  # relabel
    edit(manifest, "      received_on: {type: date}",
         "      received_on: {type: date}\n      colour: {type: choice, options: [{value: red}]}\n"
         "  shelf:\n    label: Shelf\n    fields:\n      code: {type: text}")  # add field, add entity
    plan = plan_packs(engine, [stock], "upgrade")
    described = [c.describe() for c in plan.changes] + [e.describe() for e in plan.edits]
    assert any(isinstance(c, d.AddColumn) and c.column.name == "colour" for c in plan.changes)
    assert any(isinstance(c, d.CreateTable) and c.table == "shelf" for c in plan.changes)
    assert any(isinstance(c, d.CreateIndex) and c.index.name == "ix_item_sku" for c in plan.changes)
    assert any("hidden" in text and "fax" in text for text in described)
    assert any("Article" in text for text in described)
    apply(engine, plan)

    assert fingerprint(engine, original) == before
    assert "colour" in columns(engine, "item") and "fax" in columns(engine, "item")
    assert "ix_item_sku" in indexes(engine, "item")
    assert "shelf" in sa.inspect(engine).get_table_names()
    metadata = installed_metadata(engine)
    assert metadata.entity("item").label.en == "Article"
    assert metadata.entity("item").field("fax").hidden
    with engine.connect() as conn:
        assert packstore.installed_packs(conn) == {"stock": "1.1.0"}


def test_narrowing_type_change_is_refused_with_reason_unless_forced(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 10)
    edit(stock / "pack.yaml", "sku: {type: text, max_length: 30}", "sku: {type: text, max_length: 5}")
    with pytest.raises(MigrationRefused) as refused:
        plan_packs(engine, [stock], "upgrade")
    assert "item.sku" in str(refused.value) and "longer than 5 characters would be cut" in str(refused.value)
    assert columns(engine, "item")["sku"]["type"].length == 30  # untouched


def test_widening_type_change_keeps_data(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 50)
    before = fingerprint(engine, ["id", "sku", "quantity"])
    edit(stock / "pack.yaml", "sku: {type: text, max_length: 30}", "sku: {type: text, max_length: 200}")
    edit(stock / "pack.yaml", "quantity: {type: integer}", "quantity: {type: decimal, precision: 24, scale: 2}")
    plan = install(engine, stock, "upgrade")
    assert sum(isinstance(c, d.AlterColumnType) for c in plan.changes) == 2
    assert columns(engine, "item")["sku"]["type"].length == 200
    count, _ = fingerprint(engine, ["id", "sku", "quantity"])
    assert count == 50
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT quantity FROM item WHERE id = (SELECT min(id) FROM item)")).scalar() == 0
    assert before[0] == 50


def test_removed_field_is_orphaned_then_purged(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 20)
    edit(stock / "pack.yaml", "      note: {type: long_text}\n", "")
    plan = install(engine, stock, "upgrade")
    assert any(isinstance(c, d.OrphanColumn) and c.column.name == "note" for c in plan.changes)
    assert all(not s for s in plan.statements.values())  # no DDL: the column stays
    assert "note" in columns(engine, "item")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(note) FROM item")).scalar() == 20
        table = packstore.current_version(conn).schema.tables["item"]
    assert [c.name for c in table.orphans] == ["note"]

    purge = plan_purge(engine)
    assert [c.describe() for c in purge.changes] == ["drop orphaned column item.note and its data"]
    apply(engine, purge)
    assert "note" not in columns(engine, "item")
    assert fingerprint(engine, ["id", "name"])[0] == 20


def test_readded_orphan_is_adopted_with_its_data(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 5)
    original = (stock / "pack.yaml").read_text(encoding="utf-8")
    edit(stock / "pack.yaml", "      note: {type: long_text}\n", "")
    install(engine, stock, "upgrade")
    (stock / "pack.yaml").write_text(original, encoding="utf-8")
    plan = install(engine, stock, "upgrade")
    assert [type(c) for c in plan.changes] == [d.AdoptColumn]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(note) FROM item")).scalar() == 5


def test_failed_apply_leaves_the_old_state(engine, pack_copy):
    """A unique index over duplicate data fails midway: nothing of the plan may remain."""
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 10)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE item SET sku = 'same'"))
    with engine.connect() as conn:
        version_before = packstore.current_version(conn).id
    edit(stock / "pack.yaml", "      received_on: {type: date}", "      received_on: {type: date}\n      extra: {type: text}")
    edit(stock / "pack.yaml", "sku: {type: text, max_length: 30}", "sku: {type: text, max_length: 30, unique: true}")
    plan = plan_packs(engine, [stock], "upgrade")
    assert [type(c) for c in plan.changes] == [d.AddColumn, d.CreateIndex]
    with pytest.raises(sa.exc.IntegrityError):
        apply(engine, plan)
    assert "extra" not in columns(engine, "item")
    with engine.connect() as conn:
        assert packstore.current_version(conn).id == version_before
        assert packstore.installed_packs(conn) == {"stock": "1.0.0"}


def recorded_state(engine):
    with engine.connect() as conn:
        version, packs = packstore.current_version(conn), packstore.installed_packs(conn)
    return version.id, version.version, packs, sorted(columns(engine, "item"))


def test_stale_plan_is_refused(engine, pack_copy):
    """Its DDL fails first (the tables exist): refused all the same, not a database error."""
    stock = pack_copy("stock")
    plan_a = plan_packs(engine, [stock], "install")
    plan_b = plan_packs(engine, [stock], "install")
    apply(engine, plan_a)
    before = recorded_state(engine)
    with pytest.raises(PlanOutdated, match="plan again"):
        apply(engine, plan_b)
    assert recorded_state(engine) == before


def two_plans_from_one_version(engine, stock):
    """Two upgrades planned against the same installed version: A adds a field to `item`,
    B adds an entity, so B's DDL does not wait for A's lock on `item`."""
    install(engine, stock)
    original = (stock / "pack.yaml").read_text(encoding="utf-8")
    plans = []
    for version, addition in (("1.1.0", "      colour: {type: text}"),
                              ("1.2.0", "  shelf:\n    label: Shelf\n    fields:\n      code: {type: text}")):
        edit(stock / "pack.yaml", "version: 1.0.0", f"version: {version}")
        edit(stock / "pack.yaml", "      received_on: {type: date}", "      received_on: {type: date}\n" + addition)
        plans.append(plan_packs(engine, [stock], "upgrade"))
        (stock / "pack.yaml").write_text(original, encoding="utf-8")
    return plans


def test_stale_plan_whose_ddl_runs_is_refused_and_changes_nothing(engine, pack_copy):
    """B's DDL succeeds; recording its version finds the plan stale, and the whole
    transaction, its CREATE TABLE included, rolls back."""
    plan_a, plan_b = two_plans_from_one_version(engine, pack_copy("stock"))
    apply(engine, plan_a)
    before = recorded_state(engine)
    with pytest.raises(PlanOutdated, match="plan again"):
        apply(engine, plan_b)
    assert recorded_state(engine) == before
    assert "colour" in before[3] and before[2] == {"stock": "1.1.0"}
    assert "shelf" not in sa.inspect(engine).get_table_names()


def test_concurrent_applies_are_serialised_and_the_later_is_refused(engine, pack_copy):
    """A is held just before it records its version (its DDL done, its transaction open);
    B, started then, waits for A, and once A commits is refused: never both."""
    plan_a, plan_b = two_plans_from_one_version(engine, pack_copy("stock"))
    holding, release = threading.Event(), threading.Event()

    def hold(step, total, text):
        if step == total:
            holding.set()
            release.wait(10)

    outcome = {}

    def run(name, plan, progress=None):
        try:
            apply(engine, plan, progress)
            outcome[name] = "applied"
        except PlanOutdated:
            outcome[name] = "refused"

    a = threading.Thread(target=run, args=("a", plan_a, hold))
    a.start()
    assert holding.wait(10)
    b = threading.Thread(target=run, args=("b", plan_b))
    b.start()
    b.join(0.5)
    assert b.is_alive() and not outcome, "B must wait while A applies"
    release.set()
    a.join(15)
    b.join(15)
    assert outcome == {"a": "applied", "b": "refused"}
    _, _, packs, names = recorded_state(engine)
    assert packs == {"stock": "1.1.0"} and "colour" in names
    assert "shelf" not in sa.inspect(engine).get_table_names()


def test_forced_narrowing_applies_when_the_data_fits(engine, pack_copy):
    stock = pack_copy("stock")
    install(engine, stock)
    seed_items(engine, 30)
    edit(stock / "pack.yaml", "sku: {type: text, max_length: 30}", "sku: {type: text, max_length: 10}")
    plan = install(engine, stock, "upgrade", force=True)
    assert plan.refused == ["change type of item.sku from string(30) to string(10) "
                            "(could lose data: text longer than 10 characters would be cut)"]
    assert columns(engine, "item")["sku"]["type"].length == 10
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT sku FROM item ORDER BY id")).scalars().all()[:2] == ["S000000", "S000001"]


def test_an_upgrade_creates_system_tables_a_newer_packwork_added(engine, pack_copy):
    """A database made by an older Packwork lacks newer system tables (here: the team tree);
    the next upgrade plan names them and creates them, with no pack change needed."""
    mini = pack_copy("mini")
    install(engine, mini)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pw_team_path")
    plan = plan_packs(engine, [mini], "upgrade")
    assert not plan.empty and "create system table pw_team_path" in plan.render()
    apply(engine, plan)
    assert "pw_team_path" in sa.inspect(engine).get_table_names()
    assert plan_packs(engine, [mini], "upgrade").empty
