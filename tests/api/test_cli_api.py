"""Users, tokens and `packwork serve` from the command line, as an integrator meets them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from conftest import TEST_PACKS
from packwork.runtime.db import make_engine
from test_cli import packwork


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base: str) -> None:
    """Until the server at `base` (…/api/v1) answers, for at most 10 s."""
    for _ in range(100):
        try:
            _get(base + "/openapi.json")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)


def test_user_token_serve_and_revoke(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert packwork("pack", "install", str(TEST_PACKS / "mini"), "--db", db, "--yes").returncode == 0
    refused = packwork("user", "create", "bob", "--role", "wizard", "--db", db)
    assert refused.returncode == 1 and "unknown role(s) wizard" in refused.stderr
    assert packwork("user", "create", "bob", "--role", "keeper", "--db", db).returncode == 0
    made = packwork("token", "create", "bob", "--db", db)
    assert made.returncode == 0
    secret = made.stdout.strip()
    assert secret.startswith("pwt_") and secret not in packwork("token", "list", "--db", db).stdout

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "packwork", "serve", "--db", db, "--port", str(port),
                               "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        wait_until_up(base)
        assert _get(base + "/widget", secret)[0] == 200
        assert packwork("token", "revoke", "1", "--db", db).returncode == 0
        status, problem = _get(base + "/widget", secret)
        assert status == 401 and problem["title"] == "Not authenticated"
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "gunicorn" in errors.lower() and "Traceback" not in errors


def test_teams_and_the_effective_matrix(tmp_path):
    db = f"sqlite:///{tmp_path / 'teams.db'}"
    assert packwork("pack", "install", str(TEST_PACKS / "mini"), "--db", db, "--yes").returncode == 0
    assert packwork("team", "create", "north", "--db", db).returncode == 0
    assert "under north" in packwork("team", "create", "north_east", "--parent", "north", "--db", db).stdout
    missing = packwork("team", "create", "x", "--parent", "atlantis", "--db", db)
    assert missing.returncode == 1 and "no team named 'atlantis'" in missing.stderr
    made = packwork("user", "create", "fay", "--role", "foreman", "--team", "north_east", "--db", db)
    assert made.returncode == 0 and "in team north_east" in made.stdout
    assert "no team" in packwork("user", "team", "fay", "--db", db).stdout

    shown = packwork("perms", "show", "maker", "--db", db)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].split() == ["entity", "read", "create", "update", "delete", "export", "import", "transfer"]
    assert lines[2].split() == ["widget", "all", "own", "own", "none", "own", "own", "none"]
    assert "hidden: notes" in shown.stdout and "read-only: weight" in shown.stdout
    assert "move to shipped: none" in shown.stdout
    foreman = packwork("perms", "show", "foreman", "--pack", str(TEST_PACKS / "mini")).stdout
    assert "rows also: maker = $me" in foreman
    unknown = packwork("perms", "show", "wizard", "--db", db)
    assert unknown.returncode == 1 and "there is no role 'wizard'" in unknown.stderr


def test_transferring_a_leavers_records_from_the_command_line(tmp_path):
    db = f"sqlite:///{tmp_path / 'leaver.db'}"
    assert packwork("pack", "install", str(TEST_PACKS / "mini"), "--db", db, "--yes").returncode == 0
    for name in ("leaver", "heir"):
        assert packwork("user", "create", name, "--role", "keeper", "--db", db).returncode == 0
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO widget (name, owner_id, created_at, updated_at, version) "
                             "VALUES ('a', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1), "
                             "('b', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)")
    moved = packwork("user", "transfer", "leaver", "heir", "--db", db)
    assert moved.returncode == 0 and "Moved 2 record(s)" in moved.stdout and "widget: 2" in moved.stdout
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT owner_id, version FROM widget").all() == [(2, 2), (2, 2)]
        assert conn.exec_driver_sql("SELECT count(*) FROM pw_audit WHERE action = 'transfer'").scalar() == 2
    engine.dispose()
    missing = packwork("user", "transfer", "leaver", "ghost", "--db", db)
    assert missing.returncode == 1 and "no user named 'ghost'" in missing.stderr
