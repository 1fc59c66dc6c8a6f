"""`packwork layer show | plan | apply | revert | export | import`, as an administrator runs
them, on SQLite and PostgreSQL: a bad layer is refused with `file:line` and nothing applied, a
revert is a new version, an export imports into another database to the same metadata."""

from __future__ import annotations

from conftest import TEST_PACKS
from packwork.runtime import packstore
from packwork.runtime.db import make_engine
from test_cli import packwork


def _version(url: str) -> str:
    engine = make_engine(url)
    with engine.connect() as conn:
        version = packstore.current_version(conn).version
    engine.dispose()
    return version


def test_layer_commands(db_url, tmp_path):
    assert packwork("pack", "install", str(TEST_PACKS / "mini"), "--db", db_url, "--yes").returncode == 0
    base = _version(db_url)
    assert packwork("layer", "show", "--db", db_url).stdout.startswith("No admin layer")

    bad = tmp_path / "bad.yaml"
    bad.write_text("extends:\n  widget:\n    add_fields:\n      select: {type: text}\n")
    refused = packwork("layer", "apply", str(bad), "--db", db_url, "--yes")
    assert refused.returncode == 1
    assert "admin_layer/layer.yaml:4: $.extends.widget.add_fields.select: 'select' is an SQL key word" in refused.stderr
    assert _version(db_url) == base

    good = tmp_path / "good.yaml"
    good.write_text("extends:\n  widget:\n    hide_fields: [notes]\n    add_fields:\n      serial: {type: text}\n")
    planned = packwork("layer", "plan", str(good), "--db", db_url)
    assert planned.returncode == 0 and "ALTER TABLE widget ADD COLUMN serial" in planned.stdout
    assert _version(db_url) == base
    applied = packwork("layer", "apply", str(good), "--db", db_url, "--yes", "--author", "alice")
    assert applied.returncode == 0, applied.stderr
    assert "Applied as layer version 1." in applied.stdout
    layered = _version(db_url)
    shown = packwork("layer", "show", "--db", db_url).stdout
    assert "Admin layer on mini:" in shown and "hide_fields: [notes]" in shown and "  1  " in shown and "alice" in shown

    assert packwork("layer", "export", str(tmp_path / "out"), "--db", db_url).returncode == 0
    assert (tmp_path / "out" / "admin_layer" / "layer.yaml").read_text() == good.read_text()

    reverted = packwork("layer", "revert", "0", "--db", db_url, "--yes", "--author", "bob")
    assert reverted.returncode == 0, reverted.stderr
    assert _version(db_url) == base
    assert "reverts to version 0" in packwork("layer", "show", "--db", db_url).stdout
    missing = packwork("layer", "revert", "7", "--db", db_url, "--yes")
    assert missing.returncode == 1 and "there is no admin layer version 7" in missing.stderr

    imported = packwork("layer", "import", str(tmp_path / "out" / "admin_layer"), "--db", db_url, "--yes")
    assert imported.returncode == 0, imported.stderr
    assert _version(db_url) == layered
