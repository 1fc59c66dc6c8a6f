"""A real `packwork serve` (gunicorn) on a fresh database with the mini pack, for the tests
that load or break a running system."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conftest import TEST_PACKS, fresh_database
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user


@pytest.fixture(params=["sqlite", "postgresql"])
def mini_db(request, tmp_path) -> Iterator[str]:
    """A fresh database (each kind in turn) with the mini pack installed."""
    with fresh_database(request.param, tmp_path, request) as url:
        engine = make_engine(url)
        apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
        engine.dispose()
        yield url


def token_for(url: str, username: str, role: str) -> str:
    engine = make_engine(url)
    with engine.begin() as conn:
        user_id = create_user(conn, username, [role], [role])
        secret = create_token(conn, user_id, "tests")[1]
    engine.dispose()
    return secret


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server stopped: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"the server at {base} did not answer within {seconds} s")


@contextmanager
def served(url: str, workers: int = 4, threads: int = 4, own_group: bool = False
           ) -> Iterator[tuple[str, list[str], subprocess.Popen]]:
    """`packwork serve` on `url`: yields (the API base URL, the server's stderr lines, filled
    once it stopped, the server process). `own_group`: the server and its workers are a
    process group of their own, which a test may kill as a whole."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "packwork", "serve", "--db", url, "--port", str(port),
                               "--workers", str(workers), "--threads", str(threads)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=own_group)
    log: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        _wait_until_up(base, server)
        yield base, log, server
    finally:
        server.terminate()
        try:
            _, errors = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, errors = server.communicate()
        log += errors.splitlines()


@pytest.fixture
def served_api(mini_db) -> Iterator[tuple[str, str, list[str]]]:
    """(API base URL, a keeper's token, the server log) of `packwork serve` on `mini_db`: 4
    workers of 4 threads. The server must log no traceback."""
    secret = token_for(mini_db, "keeper", "keeper")
    with served(mini_db) as (base, log, _):
        yield base, secret, log
    problems = [line for line in log if "Traceback" in line or "locked" in line or "Error" in line]
    assert not problems, "\n".join(log[-60:])
