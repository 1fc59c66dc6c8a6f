"""The pack lifecycle on the command line, on SQLite and PostgreSQL: new, validate, test, build,
install (from a folder or an archive), uninstall (keeping or purging the data), and conflicts
between packs reported when planning. Real processes, exit codes, no tracebacks."""

from __future__ import annotations

import shutil
import subprocess
import sys

import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.runtime.db import make_engine
from test_cli import ROOT, packwork


def rows(db_url: str, table: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    finally:
        engine.dispose()


def tables(db_url: str) -> set[str]:
    engine = make_engine(db_url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = packwork(*args)
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    return result


def test_uninstall_refuses_a_needed_pack_keeps_data_and_purges_on_request(db_url):
    run("pack", "install", str(TEST_PACKS / "depot_plus"), "--db", db_url, "--yes")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO rack (created_at, updated_at, version, label, slots) "
                             "VALUES (CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 'R1', 3)"))
    engine.dispose()

    refused = run("pack", "uninstall", "depot", "--db", db_url, "--yes", ok=False)
    assert ("Error: pack 'depot' is needed by the installed pack(s) 'depot_plus', which depend on it; "
            "uninstall them first") in refused.stderr

    kept = run("pack", "uninstall", "depot_plus", "--db", db_url, "--yes")
    assert "uninstall pack depot_plus: remove its metadata" in kept.stdout
    assert "entity behind table rack is gone from the packs: the table and its data are kept" in kept.stdout
    assert "DROP TABLE" not in kept.stdout
    assert rows(db_url, "rack") == 1
    assert run("db", "check", "--db", db_url).stdout.startswith("ok")
    assert "Installed packs: depot 1.0.0" in run("db", "status", "--db", db_url).stdout

    again = run("pack", "install", str(TEST_PACKS / "depot_plus"), "--db", db_url, "--yes")
    assert "orphaned table rack is used again, with its data" in again.stdout

    asked = subprocess.run([sys.executable, "-m", "packwork", "pack", "uninstall", "depot_plus", "--purge",
                            "--db", db_url], input="n\n", capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert asked.returncode == 1 and "Drop this data for good?" in asked.stdout and "Aborted" in asked.stderr
    assert rows(db_url, "rack") == 1

    purged = run("pack", "uninstall", "depot_plus", "--purge", "--db", db_url, "--yes")
    assert "drop orphaned table rack and its data" in purged.stdout
    assert not {"rack", "rack_neighbour"} & tables(db_url) and "bin" in tables(db_url)
    assert run("db", "check", "--db", db_url).stdout.startswith("ok")


def test_build_install_from_the_archive_and_refuse_a_tampered_one(db_url, tmp_path):
    out = tmp_path / "dist"
    built = run("pack", "build", str(TEST_PACKS / "depot"), "--out", str(out))
    archive = out / "depot-1.0.0.tar.gz"
    assert f"Built {archive} (1 files" in built.stdout and "sha256 " in built.stdout
    assert run("pack", "validate", str(archive)).stdout.startswith("OK: depot 1.0.0")

    tampered = tmp_path / "tampered"
    shutil.copytree(out, tampered)
    data = bytearray((tampered / archive.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / archive.name).write_bytes(bytes(data))
    refused = run("pack", "install", str(tampered / archive.name), "--db", db_url, "--yes", ok=False)
    assert f"Error: pack archive {tampered / archive.name} refused: its sha256 does not match" in refused.stderr
    assert "no packs installed" in run("db", "status", "--db", db_url).stdout

    installed = run("pack", "install", str(archive), "--db", db_url, "--yes")
    assert "create table bin" in installed.stdout
    assert "Installed packs: depot 1.0.0" in run("db", "status", "--db", db_url).stdout


def test_a_new_pack_validates_passes_its_tests_and_installs_on_its_base(db_url, tmp_path):
    shutil.copytree(TEST_PACKS / "depot", tmp_path / "depot")
    created = run("pack", "new", "acme_depot", "--extends", "depot", "--out", str(tmp_path))
    folder = tmp_path / "acme_depot"
    assert f"Created pack acme_depot in {folder}: pack.yaml, acme_depot_item.yaml." in created.stdout
    manifest = (folder / "pack.yaml").read_text(encoding="utf-8")
    assert "depends: [depot]" in manifest
    assert run("pack", "validate", str(folder)).stdout.startswith("OK: depot 1.0.0, acme_depot 0.1.0")
    assert run("pack", "test", str(folder)).stdout.endswith("2 passed, 0 failed.\n")

    run("pack", "install", str(tmp_path / "depot"), "--db", db_url, "--yes")
    installed = run("pack", "install", str(folder), "--db", db_url, "--yes")
    assert "create table acme_depot_item" in installed.stdout
    assert "Installed packs: acme_depot 0.1.0, depot 1.0.0" in run("db", "status", "--db", db_url).stdout


def test_conflicting_packs_are_reported_when_planning_with_both_places(db_url):
    case = TEST_PACKS / "conflicts" / "change_same_field_differently"
    run("pack", "install", str(case / "left"), "--db", db_url, "--yes")  # base comes along
    planned = run("pack", "plan", str(case / "right"), "--db", db_url, ok=False)
    assert (f"{case}/right/extends.yaml:5: $.extends.thing.change_fields.name.max_length: 'max_length' of field "
            "thing.name is set to 80 here but to 50 by pack 'left' at left/extends.yaml:5;") in planned.stderr
    assert planned.stderr.endswith("3 problem(s) found.\n")
