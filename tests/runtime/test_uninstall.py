"""Uninstalling a pack on SQLite and PostgreSQL: refused while another pack depends on it; its
metadata goes and its tables, columns and data stay (orphaned, the database check clean); installing
it again gives the data back through the record service; with purge its tables and columns go,
and only those."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.errors import NotFound
from packwork.metadata import diff as d
from packwork.runtime import packstore, records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db_check import check_database
from packwork.runtime.installer import PackStateError, plan_packs, plan_uninstall
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor


def install(engine, *paths, mode="install"):
    apply(engine, plan_packs(engine, list(paths), mode))


def as_platform(conn):
    return records.Context.start(conn, load_catalog(conn), Actor(None))


def seed(engine) -> dict:
    with engine.begin() as conn:
        ctx = as_platform(conn)
        bin_ = records.create_record(ctx, "bin", {"name": "B1", "code": "b1", "colour": "red"})
        rack = records.create_record(ctx, "rack", {"label": "R1", "home": bin_["id"], "slots": 3})
        other = records.create_record(ctx, "rack", {"label": "R2"})
        records.update_record(ctx, "bin", bin_["id"], {"rack": rack["id"]}, bin_["version"])
        records.link(ctx, "rack", rack["id"], "rack_neighbour", {"id": other["id"]})
    return {"bin": bin_["id"], "rack": rack["id"]}


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def tables(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def columns(engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def check(engine):
    with engine.connect() as conn:
        return check_database(conn)


def test_uninstall_keeps_the_data_and_reinstalling_gives_it_back(engine):
    install(engine, TEST_PACKS / "depot_plus")  # depot found beside it
    ids = seed(engine)

    with pytest.raises(PackStateError, match=r"pack 'depot' is needed by the installed pack\(s\) 'depot_plus'"):
        plan_uninstall(engine, "depot")

    plan = plan_uninstall(engine, "depot_plus")
    assert "uninstall pack depot_plus" in plan.render()
    assert not any(isinstance(c, (d.DropTable, d.DropColumn)) for c in plan.changes)
    assert {c.table for c in plan.changes if isinstance(c, d.OrphanTable)} == {"rack", "rack_neighbour"}
    apply(engine, plan)

    with engine.connect() as conn:
        assert packstore.installed_packs(conn) == {"depot": "1.0.0"}
        assert "rack" not in load_catalog(conn).metadata.entities
    assert {"rack", "rack_neighbour"} <= tables(engine) and {"colour", "rack"} <= columns(engine, "bin")
    assert (count(engine, "rack"), count(engine, "rack_neighbour")) == (2, 1)
    report = check(engine)
    assert report.ok, [p.format() for p in report.problems]
    with engine.connect() as conn, pytest.raises(NotFound):
        records.get_record(as_platform(conn), "rack", ids["rack"])

    install(engine, TEST_PACKS / "depot_plus")
    with engine.connect() as conn:
        ctx = as_platform(conn)
        rack = records.get_record(ctx, "rack", ids["rack"])
        bin_ = records.get_record(ctx, "bin", ids["bin"])
        links = records.list_links(ctx, "rack", ids["rack"], "rack_neighbour")
    assert (rack["label"], rack["slots"], rack["home"]) == ("R1", 3, ids["bin"])
    assert (bin_["colour"], bin_["rack"]) == ("red", ids["rack"])
    assert links["total"] == 1
    assert check(engine).ok


def test_uninstall_with_purge_drops_the_packs_tables_and_columns_only(engine, pack_copy):
    depot = pack_copy("depot")
    plus = pack_copy("depot_plus")
    install(engine, depot)
    manifest = depot / "pack.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("      capacity: {type: integer}\n", ""),
                        encoding="utf-8")
    install(engine, depot, mode="upgrade")  # capacity: an orphan from before, to be kept
    install(engine, plus)
    seed(engine)

    plan = plan_uninstall(engine, "depot_plus", purge=True)
    drops = [c.describe() for c in plan.changes if isinstance(c, (d.DropTable, d.DropColumn))]
    assert drops == ["drop orphaned column bin.colour and its data", "drop orphaned column bin.rack and its data",
                     "drop orphaned table rack_neighbour and its data", "drop orphaned table rack and its data"]
    apply(engine, plan)

    assert not {"rack", "rack_neighbour"} & tables(engine)
    assert columns(engine, "bin") >= {"name", "code", "capacity"} and not {"colour", "rack"} & columns(engine, "bin")
    assert count(engine, "bin") == 1
    with engine.connect() as conn:
        kept = packstore.current_version(conn).schema.tables
    assert set(kept) == {"bin"} and [c.name for c in kept["bin"].orphans] == ["capacity"]
    report = check(engine)
    assert report.ok, [p.format() for p in report.problems]


def test_uninstalling_the_last_pack_and_an_unknown_one(engine):
    install(engine, TEST_PACKS / "depot")
    with pytest.raises(PackStateError, match=r"pack 'nope' is not installed \(installed: depot\)"):
        plan_uninstall(engine, "nope")
    apply(engine, plan_uninstall(engine, "depot"))
    with engine.connect() as conn:
        assert packstore.installed_packs(conn) == {}
    assert "bin" in tables(engine) and check(engine).ok
    install(engine, TEST_PACKS / "depot")  # adopts the orphaned table
    assert plan_packs(engine, [TEST_PACKS / "depot"], "upgrade").empty


def test_purging_tables_that_reference_each_other(engine, tmp_path):
    """No order drops either first on PostgreSQL: the foreign key between them goes first."""
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "pack.yaml").write_text(
        "name: loop\nversion: 1.0.0\nentities:\n"
        "  hen:\n    label: Hen\n    fields:\n      egg: {type: reference, entity: egg}\n"
        "  egg:\n    label: Egg\n    fields:\n      hen: {type: reference, entity: hen}\n", encoding="utf-8")
    install(engine, loop)
    with engine.begin() as conn:
        ctx = as_platform(conn)
        hen = records.create_record(ctx, "hen", {})
        egg = records.create_record(ctx, "egg", {"hen": hen["id"]})
        records.update_record(ctx, "hen", hen["id"], {"egg": egg["id"]}, hen["version"])
    apply(engine, plan_uninstall(engine, "loop", purge=True))
    assert not {"hen", "egg"} & tables(engine)
    assert check(engine).ok
