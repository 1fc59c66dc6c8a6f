"""API throughput against bare Flask endpoints, measured in one run with wrk over loopback.

Seeds N accounts (default 1,000,000) of packs/standard_crm, then serves the same database twice
under gunicorn with the same workers: `packwork serve`, and bench/bare_app.py (the same
statements as raw SQL, no auth, no metadata, no audit). For each of (a) a list page of 50 with
a filter and a sort, (b) get one record, (c) create one record, wrk reports requests/s for both
and the ratio Packwork / bare. Targets: list >= 0.6, get >= 0.5, create >= 0.5.

    apt-get install -y wrk
    python bench/api.py [--rows N] [--db postgresql|sqlite] [--workers 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user

from migrations import Databases

ROOT = Path(__file__).resolve().parent.parent
INDUSTRIES = ("manufacturing", "retail", "finance", "education", "healthcare", "technology", "real_estate",
              "other")
POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"name": "Bench account"}'
wrk.headers["Content-Type"] = "application/json"
"""


def seed(url: str, rows: int) -> str:
    """Install standard_crm, insert `rows` accounts, return an API token."""
    engine = make_engine(url)
    apply(engine, plan_packs(engine, [ROOT / "packs" / "standard_crm"], "install"))
    industry = "CASE {} {} END".format("mod(x, 8)" if engine.dialect.name == "postgresql" else "x % 8",
                                       " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(INDUSTRIES)))
    source = f"generate_series(1, {rows}) AS x" if engine.dialect.name == "postgresql" else "n"
    prefix = ("" if engine.dialect.name == "postgresql" else
              f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows}) ")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO account (name, code, level, industry, employees, created_at, updated_at, version, "
            f"owner_id) {prefix}SELECT 'Account ' || x, 'A' || x, 'potential', {industry}, x, "
            f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, NULL FROM {source}")
        user_id = create_user(conn, "bench", ["system_admin"], ["system_admin"])
        secret = create_token(conn, user_id, "bench")[1]
    with engine.begin() as conn:  # statistics are transactional: commit them
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return secret


@contextmanager
def database(kind: str, folder: Path):
    databases = Databases(kind, folder)
    try:
        yield databases.fresh()
    finally:
        if kind == "postgresql":
            databases.drop_all()


@contextmanager
def server(command: list[str], port: int, env: dict | None = None):
    # the per-token rate limit stays on (its cost is part of a request's) but never refuses:
    # one token makes every request of a benchmark
    env = {**(os.environ if env is None else env), "PACKWORK_API_RATE": "1000000000/1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except urllib.error.HTTPError:
                break  # it answers (404 is fine)
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # not up yet, or a busy machine
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server on port {port} did not start: {process.stderr.read()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(url: str, seconds: int, headers: dict[str, str], script: Path | None = None) -> float:
    """Requests per second; refuses a run with any non-2xx answer or socket error."""
    command = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "30s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors for {url}:\n{output}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every HTTP benchmark takes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    return parser


def main() -> None:
    args = arguments(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as folder, database(args.db, Path(folder)) as url:
        started = time.perf_counter()
        secret = seed(url, args.rows)
        print(f"{args.db}: seeded {args.rows:,} accounts in {time.perf_counter() - started:.0f} s; "
              f"gunicorn sync workers={args.workers}; wrk -t2 -c8 -d{args.seconds}s")
        script = Path(folder) / "post.lua"
        script.write_text(POST_SCRIPT)
        auth = {"Authorization": f"Bearer {secret}"}
        middle = args.rows // 2
        packwork_paths = {"list": "/api/v1/account?filter=industry%20%3D%20%27retail%27&sort=name&limit=50",
                          "get": f"/api/v1/account/{middle}", "create": "/api/v1/account"}
        bare_paths = {"list": "/list?industry=retail", "get": f"/get/{middle}", "create": "/create"}
        results = {}
        packwork_cmd = [sys.executable, "-m", "packwork", "serve", "--db", url, "--port", "8871",
                        "--workers", str(args.workers)]
        bare_cmd = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", "127.0.0.1:8872",
                    "--chdir", str(ROOT / "bench"), "bare_app:create_app()"]
        with server(packwork_cmd, 8871) as packwork_base, \
                server(bare_cmd, 8872, dict(os.environ, BARE_DATABASE_URL=url)) as bare_base:
            for name in ("list", "get", "create"):
                post = script if name == "create" else None
                wrk(packwork_base + packwork_paths[name], 2, auth, post)  # warm up both
                wrk(bare_base + bare_paths[name], 2, {}, post)
                results[name] = (wrk(packwork_base + packwork_paths[name], args.seconds, auth, post),
                                 wrk(bare_base + bare_paths[name], args.seconds, {}, post))
    targets = {"list": 0.6, "get": 0.5, "create": 0.5}
    print(f"{'':8}{'packwork req/s':>16}{'bare req/s':>14}{'ratio':>8}{'target':>8}")
    for name, (ours, bare) in results.items():
        print(f"{name:8}{ours:16.0f}{bare:14.0f}{ours / bare:8.2f}{targets[name]:8.1f}")


if __name__ == "__main__":
    main()
