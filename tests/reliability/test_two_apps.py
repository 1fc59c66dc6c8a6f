"""Past one machine (docs/deploy.md): two app processes and a job worker on one PostgreSQL
database see one state. A write through one app is read through the other; a pack upgrade
applied while all three run is served by both apps and acted on by the worker, with no
restart; a scheduled rule the worker runs (through the Redis job queue) is seen by both."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from conftest import TEST_PACKS, fresh_database
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from reliability.conftest import served, token_for

REDIS_URL = os.environ.get("PACKWORK_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def pg_url(request, tmp_path):
    with fresh_database("postgresql", tmp_path, request) as url:
        engine = make_engine(url)
        apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
        engine.dispose()
        yield url


@pytest.fixture
def redis_queue():
    """A queue name of its own on the Redis the job worker uses; its keys removed afterwards."""
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.RedisError as exc:
        if os.environ.get("PACKWORK_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (PACKWORK_REQUIRE_REDIS=1) but not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    name = f"pwtest_{uuid.uuid4().hex[:12]}"
    yield name
    for key in connection.scan_iter(f"*{name}*"):
        connection.delete(key)
    connection.close()


class Api:
    def __init__(self, base: str, secret: str):
        parts = urlsplit(base)
        self.prefix, self.host, self.port = parts.path, parts.hostname, parts.port
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, self.prefix + path, body=json.dumps(body) if body is not None else None,
                               headers=self.headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else {}
        finally:
            connection.close()


def _eventually(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.2)


def _next_version(tmp_path: Path) -> Path:
    """The mini pack one version on: a new field, and a scheduled rule that sets it on the
    widget named 'tagged' (made before the upgrade, so the rule finds it whenever it first runs)."""
    folder = tmp_path / "mini_next"
    shutil.copytree(TEST_PACKS / "mini", folder)
    pack, entities = folder / "pack.yaml", folder / "entities.yaml"
    pack.write_text(pack.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8")
    text, anchor = entities.read_text(encoding="utf-8"), "      total: {type: computed"
    assert text.count(anchor) == 1 and text.count("\nrules:\n") == 1
    text = text.replace(anchor, "      serial: {type: text, max_length: 40}\n" + anchor)
    text = text.replace("\nrules:\n", "\nrules:\n"
                        "  serials_get_noted:\n"
                        "    entity: widget\n"
                        "    kind: scheduled\n"
                        "    every: 1d\n"
                        "    filter: name = 'tagged'\n"
                        "    code: |\n"
                        "      record.serial = 'set by the worker'\n")
    entities.write_text(text, encoding="utf-8")
    return folder


def test_two_apps_and_a_worker_see_one_state(pg_url, redis_queue, tmp_path):
    secret = token_for(pg_url, "keeper", "keeper")
    worker = None
    try:
        with served(pg_url, workers=2, threads=2) as (base_a, log_a, _), \
                served(pg_url, workers=2, threads=2) as (base_b, log_b, _):
            a, b = Api(base_a, secret), Api(base_b, secret)

            # a write through one app, read through the other (any of its workers)
            status, made = a.call("POST", "/widget", {"name": "idle", "active": False, "count": 5})
            assert status == 201, made
            for _ in range(4):
                status, seen = b.call("GET", f"/widget/{made['id']}")
                assert status == 200 and seen["version"] == made["version"] and seen["count"] == 5, seen

            # the worker's scheduled rule (idle widgets count nothing: due at once, never run yet)
            worker = subprocess.Popen([sys.executable, "-m", "packwork", "jobs", "run", "--db", pg_url, "--redis",
                                       REDIS_URL, "--queue", redis_queue, "--sleep", "1"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for api in (a, b):
                _eventually(lambda api=api: api.call("GET", f"/widget/{made['id']}")[1].get("count") == 0, 60,
                            "the worker's daily rule set count to 0")

            status, tagged = a.call("POST", "/widget", {"name": "tagged"})
            assert status == 201, tagged

            # a pack upgrade while everything runs: both apps serve the new field at once
            upgrade = subprocess.run([sys.executable, "-m", "packwork", "pack", "upgrade", str(_next_version(tmp_path)),
                                      "--db", pg_url, "--yes"], capture_output=True, text=True, timeout=120)
            assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
            for api in (a, b):
                for _ in range(4):  # several requests: each may reach another worker process
                    status, meta = api.call("GET", "/meta/widget")
                    assert status == 200 and "serial" in {f["name"] for f in meta["fields"]}, meta
            status, other = b.call("POST", "/widget", {"name": "other", "serial": "S-1"})
            assert status == 201 and other["serial"] == "S-1", other
            status, read = a.call("GET", f"/widget/{other['id']}")
            assert status == 200 and read["serial"] == "S-1", read

            # the worker runs the rule the upgrade added, on the field it added, without a restart
            for api in (a, b):
                _eventually(lambda api=api: api.call("GET", f"/widget/{tagged['id']}")[1].get("serial")
                            == "set by the worker", 60, "the new scheduled rule ran")
        for log in (log_a, log_b):
            assert not [line for line in log if "Traceback" in line], "\n".join(log[-40:])
    finally:
        if worker is not None:
            worker.terminate()
            output, _ = worker.communicate(timeout=30)
    assert "Traceback" not in output, output
    assert "serials_get_noted" in output and "idle_widgets_count_nothing" in output, output
