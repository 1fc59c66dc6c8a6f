"""Upgrading a pack that holds data, on SQLite and PostgreSQL: `fleet` 1.0.0
(tests/data/packs/upgrade_v1) with 300 vehicles made through the record service, upgraded to
2.0.0 (upgrade_v2): fields and an entity added, a field hidden, labels renamed, a stage added,
and two data migrations that fill the new fields from the old ones. No row or value is lost,
the migrations run once, and a migration that fails rolls the whole upgrade back."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.errors import PackError
from packwork.metadata.resolver import resolve_sources
from packwork.metadata.loader import read_pack_folders
from packwork.runtime import data_migrations, packstore, records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.data_migrations import MigrationFailed
from packwork.runtime.db_check import check_database
from packwork.runtime.installer import plan_packs, plan_uninstall
from packwork.runtime.listing import ListQuery
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.system import pw_audit, pw_data_migration
from test_cli import ROOT, packwork

V1, V2 = TEST_PACKS / "upgrade_v1", TEST_PACKS / "upgrade_v2"
COUNT = 300
MODELS = [("BYD", "Han"), ("Toyota", "Hiace"), ("Iveco", "Daily"), ("Tesla", "Model Y"), ("五菱", "宏光")]
OLD = ["id", "plate", "make", "model", "year", "mileage_km", "fuel", "purchased_on", "price", "price_currency",
       "notes", "status", "owner_id", "created_by", "created_at"]
FAILING_PLATE = "FL-00150"


def vehicle(i: int) -> dict:
    make, model = MODELS[i % len(MODELS)]
    return {"plate": f"FL-{i:05d}", "make": make, "model": model, "year": 1990 + i % 35,
            "mileage_km": None if i % 10 == 0 else (i * 7919) % 300_000,
            "fuel": ("petrol", "diesel", "electric")[i % 3], "purchased_on": f"20{10 + i % 15}-0{1 + i % 9}-1{i % 10}",
            "price": f"{100_000 + i * 37}.50", "notes": None if i % 4 == 0 else f"note {i}，备注",
            "status": ("ordered", "in_service", "sold", "scrapped")[i % 4]}


def as_platform(conn):
    return records.Context.start(conn, load_catalog(conn), Actor(None))


def install(engine, path, mode="install"):
    plan = plan_packs(engine, [path], mode)
    apply(engine, plan)
    return plan


def seed(engine) -> None:
    with engine.begin() as conn:
        made = records.create_many(as_platform(conn), "vehicle", [vehicle(i) for i in range(1, COUNT + 1)])
    assert not [r for r in made if isinstance(r, Exception)]


def select(engine, table: str, names: list[str]) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.text(f"SELECT {', '.join(names)} FROM {table} ORDER BY id"))
                .mappings()]


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar()


def migrations_run(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {row.name: (row.pack, row.version, row.pack_version, row.visited, row.changed)
                for row in conn.execute(sa.select(pw_data_migration))}


def mileage_band(km: int | None) -> str | None:
    return None if km is None else "low" if km < 50_000 else "medium" if km < 150_000 else "high"


def test_the_upgrade_keeps_every_row_and_value_and_runs_each_migration_once(engine, pack_copy):
    install(engine, V1)
    seed(engine)
    before = select(engine, "vehicle", OLD)
    assert len(before) == COUNT

    plan = plan_packs(engine, [V2], "upgrade")
    shown = plan.render()
    assert (f"  * run data migration fleet.fill_display_name (2.0.0, on upgrade from 1.0.0) over the vehicle "
            f"records ({V2}/migrations.yaml:4)") in shown
    assert ("  * run data migration fleet.service_old_vehicles (2.0.0, on upgrade from 1.0.0) over the vehicle "
            f"records where year < 2000 and status = 'in_service' ({V2}/migrations.yaml:24)") in shown
    steps = []
    apply(engine, plan, lambda step, total, text: steps.append(f"[{step}/{total}] {text}"))
    serviced = [r for r in before if r["year"] < 2000 and r["status"] == "in_service"]
    assert steps[-3:] == [f"[{len(plan.changes) + 1}/{len(plan.changes) + 3}] record metadata version",
                          f"[{len(plan.changes) + 2}/{len(plan.changes) + 3}] data migration fleet.fill_display_name: "
                          f"{COUNT} of {COUNT} vehicle record(s) changed",
                          f"[{len(plan.changes) + 3}/{len(plan.changes) + 3}] data migration "
                          f"fleet.service_old_vehicles: {len(serviced)} of {len(serviced)} vehicle record(s) changed"]

    after = select(engine, "vehicle", OLD + ["display_name", "display_key", "mileage_band", "has_notes", "version"])
    assert len(after) == COUNT and [r["id"] for r in after] == [r["id"] for r in before]
    moved = {r["id"] for r in serviced}
    for old, new in zip(before, after):
        expected = old | {"status": "maintenance"} if old["id"] in moved else old
        assert {k: new[k] for k in OLD} == expected  # every old value kept, hidden `notes` included
        name = f"{old['year']} {old['make']} {old['model']}"
        assert (new["display_name"], new["display_key"], new["mileage_band"], bool(new["has_notes"])) == \
            (name, name.upper(), mileage_band(old["mileage_km"]), old["notes"] is not None)
        assert new["version"] == (3 if old["id"] in moved else 2)
    assert "notes" in columns(engine, "vehicle")
    assert migrations_run(engine) == {"fill_display_name": ("fleet", "2.0.0", "2.0.0", COUNT, COUNT),
                                      "service_old_vehicles": ("fleet", "2.0.0", "2.0.0", len(moved), len(moved))}
    with engine.connect() as conn:  # audited as the platform's writes
        audits = conn.execute(sa.select(pw_audit.c.action, pw_audit.c.actor_id, sa.func.count())
                              .group_by(pw_audit.c.action, pw_audit.c.actor_id)).all()
    assert sorted(audits) == [("create", None, COUNT), ("update", None, COUNT + len(moved))]

    with engine.begin() as conn:  # the new metadata serves: labels, hidden field, stage, entity
        ctx = as_platform(conn)
        entity = ctx.catalog.metadata.entities["vehicle"]
        assert (entity.label.en, entity.label.zh) == ("Fleet vehicle", "车队车辆")
        assert (entity.field("make").label.en, entity.field("make").label.zh) == ("Manufacturer", "制造商")
        assert entity.field("notes").hidden and not entity.field("plate").hidden
        in_service = next(r for r in after if r["status"] == "in_service")
        records.update_record(ctx, "vehicle", in_service["id"], {"status": "maintenance"}, in_service["version"])
        listed = records.list_records(ctx, "vehicle", ListQuery(filter="status = 'maintenance'", count=True))
        assert listed.count == len(moved) + 1
        visit = records.create_record(ctx, "service_visit", {"summary": "Brakes", "vehicle": in_service["id"],
                                                             "visited_on": "2026-03-02", "cost": "880.00"})
        assert visit["vehicle"] == in_service["id"]

    assert plan_packs(engine, [V2], "upgrade").empty  # the same pack again: nothing to do
    relabelled = pack_copy("upgrade_v2")  # the same version with a changed label: upgraded, not migrated
    vehicle_file = relabelled / "vehicle.yaml"
    vehicle_file.write_text(vehicle_file.read_text(encoding="utf-8").replace("zh: 车队车辆}", "zh: 公司车辆}"),
                            encoding="utf-8")
    plan = plan_packs(engine, [relabelled], "upgrade")
    assert not plan.empty and not plan.migrations and "data migration" not in plan.render()
    apply(engine, plan)
    assert count(engine, pw_audit.name) == 2 * COUNT + len(moved) + 2  # the stage move and the visit only
    assert migrations_run(engine)["fill_display_name"][3:] == (COUNT, COUNT)
    with engine.connect() as conn:
        assert load_catalog(conn).metadata.entities["vehicle"].label.zh == "公司车辆"
        report = check_database(conn)
    assert report.ok, [p.format() for p in report.problems]


BREAKAGES = {
    "error": ("          error('plate', 'cannot be migrated')\n",
              "{file}:8: data migration fleet.fill_display_name failed on vehicle {id}: the code called error(): "
              "plate: cannot be migrated"),
    "broken": ("          record.year = 1 / 0\n",
               "{file}:11: data migration fleet.fill_display_name failed on vehicle {id}: the code broke: "
               "ZeroDivisionError: division by zero"),
    "refused": ("          record.display_name = 'ab'\n",  # the pack's validation display_name_given refuses it
                "{file}:8: data migration fleet.fill_display_name failed on vehicle {id}: a rule refused the "
                "write: display_name: is too short"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_failing_migration_rolls_the_whole_upgrade_back(engine, pack_copy, breakage):
    install(engine, V1)
    seed(engine)
    everything = OLD + ["version", "updated_at"]
    before, schema = select(engine, "vehicle", everything), columns(engine, "vehicle")
    with engine.connect() as conn:
        version = packstore.current_version(conn)
    audits = count(engine, pw_audit.name)

    broken = pack_copy("upgrade_v2", "fleet_v2b")
    text = (broken / "migrations.yaml").read_text(encoding="utf-8")
    line, message = BREAKAGES[breakage]
    anchor = "      record.has_notes = record.notes is not None\n"
    (broken / "migrations.yaml").write_text(
        text.replace(anchor, anchor + f"      if record.plate == '{FAILING_PLATE}':\n" + line), encoding="utf-8")
    failing = next(r["id"] for r in before if r["plate"] == FAILING_PLATE)  # half-way: records before it changed
    with pytest.raises(MigrationFailed) as raised:
        install(engine, broken, "upgrade")
    assert str(raised.value) == message.format(file=f"{broken}/migrations.yaml", id=failing) + \
        "; the upgrade was rolled back and nothing was changed"

    with engine.connect() as conn:
        now = packstore.current_version(conn)
        assert (now.id, now.version) == (version.id, version.version)
        assert packstore.installed_packs(conn) == {"fleet": "1.0.0"}
    assert columns(engine, "vehicle") == schema and "service_visit" not in sa.inspect(engine).get_table_names()
    assert select(engine, "vehicle", everything) == before
    assert count(engine, pw_audit.name) == audits and migrations_run(engine) == {}

    install(engine, V2, "upgrade")  # the fixed pack upgrades
    assert len(migrations_run(engine)) == 2


def test_a_migration_declared_on_install_runs_over_data_already_there(engine, pack_copy):
    """A plain install runs no migration; one declared `on_install` runs when the pack is
    installed, here over the records an uninstall kept (installing again adopts them)."""
    assert plan_packs(engine, [V2], "plan").migrations == []
    v1 = pack_copy("upgrade_v1")
    install(engine, v1)
    with engine.begin() as conn:
        records.create_many(as_platform(conn), "vehicle", [vehicle(i) for i in range(1, 5)])  # 4 has no notes
    apply(engine, plan_uninstall(engine, "fleet"))
    (v1 / "migrations.yaml").write_text(
        "migrations:\n  mark_notes:\n    version: 1.0.0\n    entity: vehicle\n    on_install: true\n"
        "    filter: notes is null\n    code: |\n      record.notes = concat('imported ', record.plate)\n",
        encoding="utf-8")
    plan = plan_packs(engine, [v1], "install")
    assert [p.describe() for p in plan.migrations] == [
        "run data migration fleet.mark_notes (1.0.0, on install) over the vehicle records where notes is null "
        f"({v1}/migrations.yaml:2)"]
    apply(engine, plan)
    assert [r["notes"] for r in select(engine, "vehicle", ["notes"])] == [
        "note 1，备注", "note 2，备注", "note 3，备注", "imported FL-00004"]
    assert migrations_run(engine) == {"mark_notes": ("fleet", "1.0.0", "1.0.0", 1, 1)}


def test_migration_code_the_sandbox_refuses_is_found_when_validating_and_planning(engine, pack_copy):
    pack = pack_copy("upgrade_v2")
    text = (pack / "migrations.yaml").read_text(encoding="utf-8")
    (pack / "migrations.yaml").write_text(text.replace("      record.status = 'maintenance'\n",
                                                       "      import os\n"), encoding="utf-8")
    sources, problems = read_pack_folders([str(pack)])
    assert not problems
    found = [p.format() for p in data_migrations.code_problems(resolve_sources(sources).migrations)]
    assert found == [f"{pack}/migrations.yaml:29: $.migrations.service_old_vehicles.code: migration code refused: "
                     "import is not available to rules [PACK-E040]"]
    install(engine, V1)
    with pytest.raises(PackError) as raised:
        plan_packs(engine, [pack], "upgrade")
    assert [p.format() for p in raised.value.problems] == found


def test_upgrade_on_the_command_line_then_purge_after_confirming(db_url):
    """The CLI prints the migrations in the plan and as it runs them; `uninstall --purge`,
    confirmed with "y", drops the data and forgets the migrations, so a new install of the
    pack would run them again."""
    assert packwork("pack", "install", str(V1), "--db", db_url, "--yes").returncode == 0
    planned = packwork("pack", "plan", str(V2), "--db", db_url)
    assert "* run data migration fleet.fill_display_name (2.0.0, on upgrade from 1.0.0)" in planned.stdout
    upgraded = packwork("pack", "upgrade", str(V2), "--db", db_url, "--yes")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "data migration fleet.fill_display_name: 0 of 0 vehicle record(s) changed" in upgraded.stdout
    again = packwork("pack", "upgrade", str(V2), "--db", db_url, "--yes")
    assert again.stdout.endswith("Nothing to do.\n")

    purged = subprocess.run([sys.executable, "-m", "packwork", "pack", "uninstall", "fleet", "--purge", "--db", db_url],
                            input="y\n", capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert purged.returncode == 0, purged.stderr
    assert "Drop this data for good?" in purged.stdout and "drop orphaned table vehicle and its data" in purged.stdout
    engine = make_engine(db_url)
    try:
        assert not {"vehicle", "service_visit"} & set(sa.inspect(engine).get_table_names())
        assert count(engine, pw_data_migration.name) == 0
    finally:
        engine.dispose()
