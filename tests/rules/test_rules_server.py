"""Rules that never end cannot hold up the server: ten requests whose validation loops forever
run at once against a threaded gunicorn, and an ordinary request answers within a second
while they do; each looping request is refused (422, the rule timed out) and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from conftest import TEST_PACKS
from api.test_cli_api import _free_port, _get, wait_until_up
from test_cli import packwork


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_ten_endless_rules_do_not_block_other_requests(tmp_path):
    db = f"sqlite:///{tmp_path / 'loops.db'}"
    assert packwork("pack", "install", str(TEST_PACKS / "mini"), "--db", db, "--yes").returncode == 0
    assert packwork("user", "create", "lou", "--role", "keeper", "--db", db).returncode == 0
    token = packwork("token", "create", "lou", "--db", db).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "packwork", "serve", "--db", db, "--port", str(port),
                               "--workers", "1", "--threads", "16"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_until_up(base)
        answers: list[tuple[int, dict]] = []
        loops = [threading.Thread(target=lambda: answers.append(
            _post(base + "/bin", token, {"label_text": "loop forever"}))) for _ in range(10)]
        for thread in loops:
            thread.start()
        time.sleep(0.05)  # the loops are in flight
        started = time.perf_counter()
        status, body = _get(base + "/widget", token)
        waited = time.perf_counter() - started
        for thread in loops:
            thread.join(timeout=60)
        assert status == 200 and waited < 1.0, (status, waited)
        assert len(answers) == 10
        for status, problem in answers:
            assert status == 422 and problem["code"] in ("RULE-E003", "RULE-E004") \
                and "endless_for_one_label" in problem["detail"], \
                problem
        assert _get(base + "/bin?count=true", token)[1]["count"] == 0
        assert _post(base + "/bin", token, {"label_text": "ordinary"})[0] == 201
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "Traceback" not in errors
