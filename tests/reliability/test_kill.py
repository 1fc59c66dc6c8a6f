"""Crash safety: a process killed (SIGKILL, no chance to clean up) in the middle of a
100,000-row import over the API, or in the middle of a pack upgrade, leaves the old state
whole — no record, audit entry, column or metadata version of the unfinished work — and
`packwork db check` finds nothing wrong. On SQLite and on PostgreSQL."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.runtime.db import make_engine
from reliability.conftest import served, token_for

ROWS = 100_000


def _csv(rows: int) -> bytes:
    lines = ["name,code,count"] + [f"widget {n},K{n},{n}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _counts(url: str) -> dict[str, object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = {"widgets": conn.exec_driver_sql("SELECT count(*) FROM widget").scalar(),
                 "audit": conn.exec_driver_sql("SELECT count(*) FROM pw_audit WHERE entity = 'widget'").scalar(),
                 "versions": conn.exec_driver_sql("SELECT count(*) FROM pw_meta_version").scalar(),
                 "columns": sorted(c["name"] for c in sa.inspect(conn).get_columns("widget")),
                 "tables": sorted(sa.inspect(conn).get_table_names())}
    engine.dispose()
    return found


def _db_check(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "packwork", "db", "check", "--db", url],
                          capture_output=True, text=True, timeout=120)


def _kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _import_is_writing(url: str) -> bool:
    """Whether the import's transaction has begun writing: on PostgreSQL another session holds
    the lock its first INSERT takes on the table (until it ends); SQLite's write-ahead log has
    grown past a megabyte."""
    if url.startswith("sqlite"):
        wal = Path(sa.engine.make_url(url).database + "-wal")
        return wal.exists() and wal.stat().st_size > 1_000_000
    engine = make_engine(url)
    with engine.connect() as conn:
        running = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE relation = to_regclass('widget') AND mode = 'RowExclusiveLock' "
            "AND pid <> pg_backend_pid()").scalar()
    engine.dispose()
    return bool(running)


def test_a_killed_import_leaves_nothing(mini_db):
    secret = token_for(mini_db, "keeper", "keeper")
    before = _counts(mini_db)
    outcome: dict[str, object] = {}
    with served(mini_db, workers=1, threads=2, own_group=True) as (base, log, server):
        parts = urlsplit(base)

        def send() -> None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
            try:
                connection.request("POST", parts.path + "/widget/import", body=_csv(ROWS),
                                   headers={"Authorization": f"Bearer {secret}", "Content-Type": "text/csv"})
                outcome["status"] = connection.getresponse().status
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                outcome["error"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 120
        while not _import_is_writing(mini_db):
            assert time.monotonic() < deadline and sender.is_alive(), f"the import never got going: {outcome}"
            time.sleep(0.05)
        time.sleep(0.5)  # well into the rows
        assert sender.is_alive(), f"the import finished before the kill: {outcome}"
        _kill_group(server)
        sender.join(timeout=60)
    assert "status" not in outcome, f"the server answered although it was killed: {outcome}"

    after = _counts(mini_db)
    assert after == before, "a killed import must leave exactly what was there before"
    check = _db_check(mini_db)
    assert check.returncode == 0, check.stdout + check.stderr

    # the restarted server takes the same import whole
    with served(mini_db, workers=1, threads=2) as (base, log, _):
        parts = urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        connection.request("POST", parts.path + "/widget/import", body=_csv(1_000),
                           headers={"Authorization": f"Bearer {secret}", "Content-Type": "text/csv"})
        assert connection.getresponse().status == 200
    assert _counts(mini_db)["widgets"] == before["widgets"] + 1_000


def _upgraded_pack(tmp_path: Path) -> Path:
    """The mini pack, one version on: new columns on the widget table, an index on a column
    that holds a value in every row (a step long enough to be killed in), then a new table."""
    folder = tmp_path / "mini_next"
    shutil.copytree(TEST_PACKS / "mini", folder)
    pack = folder / "pack.yaml"
    pack.write_text(pack.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8")
    entities = folder / "entities.yaml"
    text = entities.read_text(encoding="utf-8")
    anchor = "      total: {type: computed"
    assert "version: 1.1.0" in pack.read_text(encoding="utf-8") and text.count(anchor) == 1
    assert text.count("      email: {type: email}\n") == 1
    text = text.replace("      email: {type: email}\n", "      email: {type: email, indexed: true}\n")
    entities.write_text(text.replace(anchor, "      serial: {type: text, max_length: 40, indexed: true}\n"
                                             "      grade: {type: integer, default: 3, indexed: true}\n" + anchor),
                        encoding="utf-8")
    (folder / "later.yaml").write_text(
        "entities:\n"
        "  gizmo:\n"
        "    label: {en: Gizmo, zh: 小器}\n"
        "    group: work\n"
        "    title_field: name\n"
        "    fields:\n"
        "      name: {type: text, required: true}\n", encoding="utf-8")
    return folder


def _fill(url: str, rows: int) -> None:
    """Rows enough that the upgrade's DDL takes a while (written directly: they are ballast)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO widget (name, code, email, count, active, version, created_at, updated_at) "
                             "VALUES (:name, :code, :email, 0, true, 1, :now, :now)"),
                     [{"name": f"w{n}", "code": f"C{n}", "email": f"someone.{n * 7919 % rows}@example.com", "now": datetime(2026, 1, 1, tzinfo=timezone.utc)} for n in range(rows)])
    engine.dispose()


def test_a_killed_upgrade_leaves_the_old_version(mini_db, tmp_path):
    _fill(mini_db, 300_000)
    folder = _upgraded_pack(tmp_path)
    plan = subprocess.run([sys.executable, "-m", "packwork", "pack", "plan", str(folder), "--db", mini_db],
                          capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0 and "serial" in plan.stdout, plan.stdout + plan.stderr
    before = _counts(mini_db)
    upgrade = subprocess.Popen([sys.executable, "-m", "packwork", "pack", "upgrade", str(folder), "--db", mini_db,
                                "--yes"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    seen = []
    for line in upgrade.stdout:  # each step is printed as it starts: the columns are added by now
        seen.append(line)
        if line.startswith("[") and "ix_widget_email" in line:
            _kill_group(upgrade)
            break
    else:
        raise AssertionError("the upgrade ended before the index step:\n" + "".join(seen))
    assert any(line.startswith("[") and "add column widget.serial" in line for line in seen), "".join(seen)

    after = _counts(mini_db)
    assert after == before, "a killed upgrade must leave the old tables, columns and version"
    check = _db_check(mini_db)
    assert check.returncode == 0, check.stdout + check.stderr

    # run again, it completes: the new version, its columns, every row kept
    done = subprocess.run([sys.executable, "-m", "packwork", "pack", "upgrade", str(folder), "--db", mini_db, "--yes"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    upgraded = _counts(mini_db)
    assert {"serial", "grade"} <= set(upgraded["columns"]) and "gizmo" in upgraded["tables"]
    assert upgraded["widgets"] == before["widgets"] and upgraded["versions"] == before["versions"] + 1
    assert _db_check(mini_db).returncode == 0
