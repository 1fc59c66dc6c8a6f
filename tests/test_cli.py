"""The command line, run as a user runs it: a real process, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def packwork(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "packwork", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=300, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_validate_standard_crm_prints_ok():
    result = packwork("pack", "validate", "packs/standard_crm")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: standard_crm ")


def test_validate_reports_problems_with_file_and_line(tmp_path):
    pack = tmp_path / "broken"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: broken\nversion: 1.0.0\nentities:\n  thing:\n    label: Thing\n"
                                    "    fields:\n      amount: {type: monye}\n")
    result = packwork("pack", "validate", str(pack))
    assert result.returncode == 1
    assert (f"{pack}/pack.yaml:7: $.entities.thing.fields.amount.type: 'monye' is not an allowed value; "
            "did you mean 'money'? [PACK-E010]") in result.stderr


def test_plan_install_status_upgrade_and_refusal(db_url, pack_copy):
    stock = pack_copy("stock")
    plan = packwork("pack", "plan", str(stock), "--db", db_url)
    assert plan.returncode == 0, plan.stderr
    assert "create table item" in plan.stdout and "CREATE TABLE item" in plan.stdout

    installed = packwork("pack", "install", str(stock), "--db", db_url, "--yes")
    assert installed.returncode == 0, installed.stderr
    assert "[1/2] create table item" in installed.stdout

    status = packwork("db", "status", "--db", db_url)
    assert "Installed packs: stock 1.0.0" in status.stdout and "entity item:" in status.stdout

    again = packwork("pack", "install", str(stock), "--db", db_url, "--yes")
    assert again.returncode == 1 and "already installed" in again.stderr

    manifest = stock / "pack.yaml"
    manifest.write_text(manifest.read_text().replace("max_length: 100", "max_length: 10"))
    refused = packwork("pack", "upgrade", str(stock), "--db", db_url, "--yes")
    assert refused.returncode == 1
    assert "item.name from string(100) to string(10)" in refused.stderr
    assert "Nothing was changed" in refused.stderr


def test_database_url_from_environment(tmp_path, pack_copy):
    import os
    url = f"sqlite:///{tmp_path / 'env.db'}"
    env = dict(os.environ, PACKWORK_DATABASE_URL=url)
    assert packwork("pack", "install", str(pack_copy("stock")), "--yes", env=env).returncode == 0
    assert (tmp_path / "env.db").exists()


def test_install_asks_before_applying(tmp_path, pack_copy):
    url = f"sqlite:///{tmp_path / 'ask.db'}"
    result = subprocess.run([sys.executable, "-m", "packwork", "pack", "install", str(pack_copy("stock")),
                             "--db", url], input="n\n", capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Aborted" in result.stderr
    status = packwork("db", "status", "--db", url)
    assert "no packs installed" in status.stdout


@pytest.mark.parametrize("args", [["pack", "validate", "/nonexistent"], ["pack", "install"], ["nope"]])
def test_bad_invocations_exit_non_zero_without_traceback(args):
    assert packwork(*args).returncode != 0
