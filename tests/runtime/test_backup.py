"""Backup and restore on SQLite and PostgreSQL: what is restored is exactly what was backed
up (records and audit rows), the restored database checks clean, a database with data is not
overwritten unless forced, and a backup of the other kind is refused without changing anything."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from conftest import ROOT, TEST_PACKS
from packwork.cli import main
from packwork.runtime import backup as bk
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor

COMPARED = ("widget", "bin", "pw_audit", "pw_pack", "pw_meta_version")


@contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A fresh PostgreSQL database of its own. (conftest's fresh_database gives a schema in a
    shared database; a whole-database dump and restore needs a database per side.)"""
    name = f"pw_backup_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases of one kind: the one backed up and one to restore into."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.db'}", f"sqlite:///{tmp_path / 'spare.db'}"
        return
    server = request.getfixturevalue("pg_server")
    with pg_database(server) as live, pg_database(server) as spare:
        yield live, spare


@contextmanager
def service(url: str) -> Iterator[records.Context]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            yield records.Context.start(conn, load_catalog(conn), Actor(None))
    finally:
        engine.dispose()


def install_with_records(url: str) -> list[dict]:
    engine = make_engine(url)
    apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
    engine.dispose()
    with service(url) as ctx:
        made = [records.create_record(ctx, "widget", {"name": f"W{n}", "code": f"C{n}", "count": n, "price": "9.50",
                                                      "tags": ["new"]}) for n in range(3)]
        records.create_record(ctx, "bin", {"label_text": "Small bin", "location": "A1"})
        records.update_record(ctx, "widget", made[0]["id"], {"count": 7}, made[0]["version"])
    return made


def change_everything(url: str, made: list[dict]) -> None:
    with service(url) as ctx:
        records.delete_record(ctx, "widget", made[1]["id"])
        records.update_record(ctx, "widget", made[2]["id"], {"name": "renamed"}, made[2]["version"])
        records.create_record(ctx, "widget", {"name": "new after backup", "code": "NEW"})


def contents(url: str) -> dict[str, list[tuple]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t: [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY 1")] for t in COMPARED}
    finally:
        engine.dispose()


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_restore_gives_back_exactly_the_backed_up_data(databases, tmp_path):
    live, spare = databases
    made = install_with_records(live)
    backed_up = contents(live)
    assert len(backed_up["widget"]) == 3 and len(backed_up["pw_audit"]) == 5
    out = tmp_path / "crm.backup"
    result = invoke("backup", "--db", live, str(out))
    assert result.exit_code == 0, result.output
    assert f"to {out} ({bk.KINDS[make_url(live).get_backend_name()]}, " in result.output
    assert out.stat().st_mode & 0o077 == 0  # a backup holds password hashes: the owner's only

    change_everything(live, made)
    assert contents(live) != backed_up
    for target, flags in ((spare, ()), (live, ("--force",))):
        result = invoke("restore", "--db", target, str(out), *flags)
        assert result.exit_code == 0, result.output
        assert "Checking it:\nok\nmetadata version " in result.output
        assert contents(target) == backed_up
    with service(live) as ctx:  # ids carry on after the restored ones (sequences came back too)
        assert records.create_record(ctx, "widget", {"name": "next"})["id"] == 4


def test_a_database_with_data_is_not_overwritten_unless_forced(databases, tmp_path):
    live, spare = databases
    install_with_records(live)
    out = tmp_path / "crm.backup"
    bk.backup(live, out)
    install_with_records(spare)
    before = contents(spare)
    with pytest.raises(bk.RestoreRefused, match=r"already holds data \(.*\); restoring would replace it. "
                                                r"Re-run with --force"):
        bk.restore(spare, out)
    assert contents(spare) == before


def test_a_backup_of_the_other_kind_is_refused_and_changes_nothing(databases, tmp_path):
    live, _ = databases
    install_with_records(live)
    before = contents(live)
    kind = make_url(live).get_backend_name()
    other = tmp_path / "other.backup"
    if kind == "sqlite":
        other.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 64)
        expected = "is a PostgreSQL dump (pg_dump custom format): it can only be restored into a PostgreSQL " \
                   "database, not into this SQLite one; nothing was changed"
    else:
        bk.backup(_sqlite_db(tmp_path / "lite.db"), other)
        expected = "is an SQLite database file: it can only be restored into a SQLite database, not into this " \
                   "PostgreSQL one; nothing was changed"
    result = invoke("restore", "--db", live, str(other), "--force")
    assert result.exit_code == 1 and isinstance(result.exception, bk.RestoreRefused)
    assert str(result.exception) == f"{other} {expected}"
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    with pytest.raises(bk.RestoreRefused, match="is not a Packwork backup"):
        bk.restore(live, junk, force=True)
    assert contents(live) == before


def _sqlite_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    engine.dispose()
    return url


def test_the_user_sees_a_refusal_as_one_line(tmp_path):
    dump = tmp_path / "crm.dump"
    dump.write_bytes(b"PGDMP" + b"\x00" * 32)
    result = subprocess.run([sys.executable, "-m", "packwork", "restore", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                             str(dump)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: {dump} is a PostgreSQL dump (pg_dump custom format): it can only "
                                          "be restored into a PostgreSQL database, not into this SQLite one; "
                                          "nothing was changed"]
    assert not (tmp_path / "x.db").exists()


def test_sqlite_backup_runs_beside_an_open_write_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    install_with_records(url)
    engine = make_engine(url)
    with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, held during the backup
        writer.exec_driver_sql("DELETE FROM pw_audit")
        bk.backup(url, tmp_path / "during.backup")
    engine.dispose()
    copy = f"sqlite:///{tmp_path / 'during.backup'}"
    assert len(contents(copy)["pw_audit"]) == 5  # the committed state, not the uncommitted delete
    assert not list(tmp_path.glob("during.backup-*"))  # one self-contained file (no -wal beside it)


def test_a_failed_backup_keeps_the_older_one_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "crm.backup"
    out.write_bytes(b"older backup")
    with pytest.raises(bk.BackupError, match="no SQLite database at"):
        bk.backup(f"sqlite:///{tmp_path / 'missing.db'}", out)
    assert out.read_bytes() == b"older backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.backup"]


def test_the_postgresql_password_travels_in_the_environment_only(tmp_path, monkeypatch):
    calls = []

    def fake_run(args, env, **kwargs):
        calls.append((args, env))
        return subprocess.CompletedProcess(args, 1, "", "pg_dump: error: connection to server failed\nmore\n")

    monkeypatch.setattr(bk.subprocess, "run", fake_run)
    url = "postgresql+psycopg://ann:s3cret@db.example:5433/crm?options=-csearch_path%3Dcrm"
    with pytest.raises(bk.BackupError, match=r"^pg_dump failed: pg_dump: error: connection to server failed$"):
        bk.backup(url, tmp_path / "crm.dump")
    (args, env), = calls
    assert not any("s3cret" in a for a in args) and env["PGPASSWORD"] == "s3cret"
    assert "--dbname=postgresql://ann@db.example:5433/crm?options=-csearch_path%3Dcrm" in args
    assert {"--format=custom", "--no-owner"} <= set(args)
    assert not list(tmp_path.iterdir())
