"""`packwork db check`: the pure comparison on plain data (no database), then real SQLite and
PostgreSQL databases: a fresh install is clean, and each way of breaking it by hand is
reported by name."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import TEST_PACKS
from packwork.cli import main
from packwork.metadata.fieldtypes import Storage
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.physical import ColumnSpec, IndexSpec, TableSpec, physical_schema
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import db_check as dc
from packwork.runtime import packstore
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.system import system_metadata


# -- pure: expected specs against snapshots as plain data -----------------------------------

def mini_world() -> tuple[dict[str, dc.TableState], dc.Recorded]:
    """What a clean database holding the mini pack looks like, built without one."""
    sources, problems = read_pack_folders([TEST_PACKS / "mini"])
    assert not problems
    schema = physical_schema(resolve_sources(sources))
    packs = tuple(dc.PackState("mini", "1.0.0", (), {f.path: f.text for f in s.files}, packstore.checksum(s))
                  for s in sources)
    recorded = dc.Recorded(packs, dc.VersionState(1, "v1", {"mini": "1.0.0"}, schema))
    snapshot = {name: dc.expected_table(spec) for name, spec in schema.tables.items()}
    snapshot |= {name: dc.system_table(table) for name, table in system_metadata.tables.items()}
    return snapshot, recorded


def lines(report: dc.Report) -> list[str]:
    return [p.format() for p in report.problems]


def without(table: dc.TableState, **drop) -> dc.TableState:
    """`table` less the columns, index names or foreign-key columns named in `drop`."""
    return dataclasses.replace(
        table, columns=tuple(c for c in table.columns if c.name not in drop.get("columns", ())),
        indexes=tuple(i for i in table.indexes if i.name not in drop.get("indexes", ())),
        foreign_keys=tuple(k for k in table.foreign_keys if k.column not in drop.get("keys", ())))


def test_a_snapshot_equal_to_the_metadata_is_clean():
    snapshot, recorded = mini_world()
    report = dc.compare_database(snapshot, recorded, "postgresql")
    assert report.ok, lines(report)
    assert report.summary.startswith("metadata version v1 (#1; mini 1.0.0): 4 tables, ")


def test_each_difference_is_one_line_naming_table_and_column():
    snapshot, recorded = mini_world()
    widget = snapshot["widget"]
    snapshot["widget"] = dataclasses.replace(
        without(widget, columns={"notes"}, indexes={"uq_widget_code"}, keys={"bin"}),
        columns=tuple(dc.ColumnState("count", "text", "VARCHAR(10)") if c.name == "count" else c
                      for c in widget.columns if c.name != "notes") + (dc.ColumnState("extra", "text"),))
    del snapshot["widget_stock"]
    snapshot["stray"] = dc.TableState("stray", ())
    assert lines(dc.compare_database(snapshot, recorded, "postgresql")) == [
        "widget.notes: column missing (expected text) [DB-E002]",
        "widget.count: column is VARCHAR(10), expected integer [DB-E003]",
        "widget.extra: column not in the installed metadata [DB-E004]",
        "widget.code: unique index on (code) over live rows missing (uq_widget_code) [DB-E005]",
        "widget.bin: foreign key to bin ON DELETE SET NULL missing [DB-E007]",
        "widget_stock: table missing [DB-E001]",
        "stray: table not in the installed metadata [DB-E009]",
    ]


def test_sqlite_is_not_blamed_for_foreign_keys_it_cannot_add_but_a_wrong_one_is_reported():
    snapshot, recorded = mini_world()
    snapshot["widget"] = without(snapshot["widget"], keys={"bin"})
    assert dc.compare_database(snapshot, recorded, "sqlite").ok
    link = snapshot["widget_link"]
    snapshot["widget_link"] = dataclasses.replace(link, foreign_keys=tuple(
        dc.ForeignKeyState("source_id", "bin", "CASCADE") if k.column == "source_id" else k for k in link.foreign_keys))
    assert lines(dc.compare_database(snapshot, recorded, "sqlite")) == [
        "widget_link.source_id: foreign key goes to bin ON DELETE CASCADE, expected widget ON DELETE CASCADE "
        "[DB-E008]"]


def test_an_index_of_the_right_name_but_the_wrong_shape_is_reported():
    table = TableSpec("thing", "entity", (ColumnSpec("id", Storage("integer")), ColumnSpec("deleted_at", Storage(
        "datetime")), ColumnSpec("code", Storage("string", 10))), (IndexSpec("uq_thing_code", ("code",), True, True),))
    expected = dc.expected_table(table)
    assert expected.indexes == (dc.IndexState("uq_thing_code", ("code",), True, True),)
    actual = dataclasses.replace(expected, indexes=(dc.IndexState("uq_thing_code", ("code",), False),))
    assert [p.format() for p in dc.compare_table(expected, actual)] == [
        "thing.code: uq_thing_code is wrong: index on (code), expected unique index on (code) over live rows "
        "[DB-E006]"]


def test_orphaned_columns_and_tables_are_expected_to_exist():
    spec = TableSpec("thing", "entity", (ColumnSpec("id", Storage("integer")),),
                     orphans=(ColumnSpec("old", Storage("decimal", None, 12, 2)),), orphaned=True)
    expected = dc.expected_table(spec)
    assert [c.name for c in expected.columns] == ["id", "old"]
    actual = dc.TableState("thing", (dc.ColumnState("id", "integer"),))
    assert [p.format() for p in dc.compare_table(expected, actual)] == [
        "thing.old: column missing (expected decimal(12,2)) [DB-E002]"]


def test_half_written_pack_and_version_rows_are_reported():
    snapshot, recorded = mini_world()
    mini = recorded.packs[0]
    broken = dc.Recorded((dataclasses.replace(mini, version="1.1.0", checksum="0" * 64),
                          dc.PackState("extra", "2.0.0", ("base",), {}, packstore.checksum(
                              dc._source(dc.PackState("extra", "", (), {}, ""))))), recorded.version)
    assert lines(dc.compare_database(snapshot, broken, "postgresql")) == [
        "pw_pack.mini: version 1.1.0 recorded, metadata version #1 has 1.0.0 [DB-E013]",
        "pw_pack.mini: checksum does not match the recorded files [DB-E014]",
        "pw_pack.extra: recorded but not part of metadata version #1 [DB-E012]",
        "pw_pack.extra: depends on base, which is not recorded [DB-E015]",
    ]
    missing = dc.Recorded((), recorded.version)
    assert "pw_pack.mini: listed by metadata version #1 but not recorded [DB-E011]" in lines(
        dc.compare_database(snapshot, missing, "postgresql"))


def test_packs_whose_fields_the_recorded_schema_lacks_were_written_without_their_version():
    snapshot, recorded = mini_world()
    schema = recorded.version.schema
    widget = schema.tables["widget"]
    older = dataclasses.replace(schema, tables={**schema.tables, "widget": dataclasses.replace(
        widget, columns=tuple(c for c in widget.columns if c.name != "site"))})
    stale = dc.Recorded(recorded.packs, dataclasses.replace(recorded.version, schema=older))
    snapshot["widget"] = without(snapshot["widget"], columns={"site"})
    assert lines(dc.compare_database(snapshot, stale, "postgresql")) == [
        "widget.site: defined by the recorded packs as string(2048) but not so by metadata version #1 [DB-E017]"]


def test_an_unreadable_schema_and_an_empty_database_are_reported():
    snapshot, recorded = mini_world()
    unreadable = dc.Recorded(recorded.packs, dataclasses.replace(recorded.version, schema=None,
                                                                 schema_error="KeyError: 'columns'"))
    assert lines(dc.compare_database(snapshot, unreadable, "sqlite")) == [
        "pw_meta_version.#1: recorded schema cannot be read (KeyError: 'columns') [DB-E016]"]
    assert lines(dc.compare_database({}, None, "sqlite")) == [
        "pw_meta_version: no Packwork tables here: nothing is installed [DB-E010]"]
    assert lines(dc.compare_database(snapshot, dc.Recorded(recorded.packs, None), "sqlite")) == [
        "pw_meta_version: no metadata version recorded: yet pw_pack lists mini [DB-E010]"]


def test_type_families_of_declared_and_reflected_types():
    assert [dc.type_family(t) for t in (sa.BigInteger(), sa.INTEGER(), sa.VARCHAR(3), sa.Text(), sa.Numeric(9, 2),
                                        sa.Float(), sa.Boolean(), sa.Date(), sa.DateTime(True), sa.JSON())] == [
        "integer", "integer", "text", "text", "decimal", "float", "boolean", "date", "datetime", "json"]


# -- real databases ---------------------------------------------------------------------------

@pytest.fixture
def installed(engine):
    apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
    return engine


def check(engine) -> dc.Report:
    with engine.connect() as conn:
        return dc.check_database(conn)


def ddl(engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def cli(engine, *args: str):
    return CliRunner().invoke(main, ["db", "check", "--db", engine.url.render_as_string(hide_password=False), *args])


def test_a_fresh_install_is_clean(installed):
    report = check(installed)
    assert report.ok, lines(report)
    result = cli(installed)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "ok"
    assert "metadata version " in result.output and "(#1; mini 1.0.0): 4 tables, " in result.output


def test_raw_ddl_breakage_is_reported_by_name(installed):
    ddl(installed, "ALTER TABLE widget DROP COLUMN notes", "DROP INDEX uq_widget_code", "DROP TABLE widget_stock",
        "ALTER TABLE widget DROP COLUMN count", "ALTER TABLE widget ADD COLUMN count VARCHAR(10)")
    result = cli(installed)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "widget.notes: column missing (expected text) [DB-E002]",
        "widget.count: column is VARCHAR(10), expected integer [DB-E003]",
        "widget.code: unique index on (code) over live rows missing (uq_widget_code) [DB-E005]",
        "widget_stock: table missing [DB-E001]",
    ]


def test_a_dropped_foreign_key_is_reported_on_postgresql(installed):
    if installed.dialect.name != "postgresql":
        pytest.skip("SQLite cannot drop a foreign key (and a column added later never has one)")
    ddl(installed, "ALTER TABLE widget DROP CONSTRAINT fk_widget_bin")
    assert lines(check(installed)) == ["widget.bin: foreign key to bin ON DELETE SET NULL missing [DB-E007]"]


def test_a_dropped_system_table_and_a_stray_table_are_reported(installed):
    ddl(installed, "DROP TABLE pw_saved_view", "CREATE TABLE stray (id INTEGER)")
    assert lines(check(installed)) == ["pw_saved_view: table missing [DB-E001]",
                                       "stray: table not in the installed metadata [DB-E009]"]


def test_hand_edited_pack_rows_are_reported(installed):
    ddl(installed, "UPDATE pw_pack SET version = '9.9.9'")
    assert lines(check(installed)) == ["pw_pack.mini: version 9.9.9 recorded, metadata version #1 has 1.0.0 "
                                       "[DB-E013]"]
    ddl(installed, "DELETE FROM pw_pack")
    assert lines(check(installed)) == ["pw_pack.mini: listed by metadata version #1 but not recorded [DB-E011]"]


def test_orphaned_columns_stay_expected_until_purged(engine, pack_copy):
    mini = pack_copy("mini")
    apply(engine, plan_packs(engine, [mini], "install"))
    entities = mini / "entities.yaml"
    entities.write_text(entities.read_text(encoding="utf-8").replace("      site: {type: url}\n", ""),
                        encoding="utf-8")
    apply(engine, plan_packs(engine, [mini], "upgrade"))
    assert check(engine).ok, lines(check(engine))
    if engine.dialect.name == "sqlite":
        ddl(engine, "ALTER TABLE widget DROP COLUMN site")
    else:
        ddl(engine, "ALTER TABLE widget DROP COLUMN site CASCADE")
    assert lines(check(engine)) == ["widget.site: column missing (expected string(2048)) [DB-E002]"]


def test_an_empty_database_says_nothing_is_installed(engine):
    result = cli(engine)
    assert result.exit_code == 1
    assert result.stdout == "pw_meta_version: no Packwork tables here: nothing is installed [DB-E010]\n"


def test_an_unreachable_database_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["db", "check", "--db", f"sqlite:///{tmp_path / 'no' / 'such.db'}"])
    assert result.exit_code == 1
    assert str(result.exception).startswith("cannot read the database sqlite:///")
