"""A soak: 50 concurrent keep-alive connections doing mixed list, get, create and update
requests against `packwork serve` for 10 minutes over loopback. Passes only with zero 5xx
answers and the server's memory stable: the resident set of the server's processes at the end
within 10% of what it was after the first minute (the warm-up: caches, compiled statements).

Seeds N accounts (default 10,000) of packs/standard_crm like bench/api.py. The mix per request:
40% a list page (one of several filters and sorts), 30% get one record, 15% create, 15% update
(read, then PATCH with the version read: a 409 when another connection got there first is a
correct answer, counted apart).

    python bench/soak.py [--db sqlite|postgresql] [--minutes 10] [--connections 50] [--rows N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from api import database, seed, server

LISTS = ("/api/v1/account?sort=name&limit=50", "/api/v1/account?filter=industry%20%3D%20%27retail%27&limit=20",
         "/api/v1/account?sort=-employees&limit=50", "/api/v1/account?filter=employees%20%3E%20500&sort=name",
         "/api/v1/account?fields=name,industry&limit=100")
WARM_UP = 60.0


def process_tree_rss(root: int) -> int:
    """Resident memory (bytes) of `root` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue  # the process ended while we looked
        children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            rss = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        total += int(rss.split()[1]) * 1024
    return total


class Connection:
    def __init__(self, port: int, secret: str):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        self.http.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers | (headers or {}))
        response = self.http.getresponse()
        data = response.read()
        return response.status, data


def one_request(rng: random.Random, connection: Connection, rows: int, statuses: Counter) -> None:
    roll = rng.random()
    if roll < 0.40:
        status, _ = connection.call("GET", rng.choice(LISTS))
        statuses[("list", status)] += 1
    elif roll < 0.70:
        status, _ = connection.call("GET", f"/api/v1/account/{rng.randint(1, rows)}")
        statuses[("get", status)] += 1
    elif roll < 0.85:
        status, _ = connection.call("POST", "/api/v1/account", {"name": f"Soak {rng.random():.12f}",
                                                                 "employees": rng.randint(1, 5000)})
        statuses[("create", status)] += 1
    else:
        record_id = rng.randint(1, rows)
        status, data = connection.call("GET", f"/api/v1/account/{record_id}")
        if status == 200:
            version = json.loads(data)["version"]
            status, _ = connection.call("PATCH", f"/api/v1/account/{record_id}", {"employees": rng.randint(1, 5000)},
                                        {"If-Match": f'"{version}"'})
        statuses[("update", status)] += 1


def client(number: int, port: int, secret: str, rows: int, until: float, statuses: Counter,
           failures: list[str]) -> None:
    rng, connection = random.Random(number), Connection(port, secret)
    while time.monotonic() < until:
        try:
            one_request(rng, connection, rows, statuses)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            connection = Connection(port, secret)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(args.db, Path(folder)) as url:
        secret = seed(url, args.rows)
        port = 8874
        command = [sys.executable, "-m", "packwork", "serve", "--db", url, "--port", str(port),
                   "--workers", str(args.workers), "--threads", str(args.threads)]
        with server(command, port) as _base, _server_pid(port) as pid:
            statuses: Counter = Counter()
            failures: list[str] = []
            started = time.monotonic()
            until = started + args.minutes * 60
            threads = [threading.Thread(target=client, args=(n, port, secret, args.rows, until, statuses, failures))
                       for n in range(args.connections)]
            for thread in threads:
                thread.start()
            time.sleep(min(WARM_UP, args.minutes * 30))
            warm, samples = process_tree_rss(pid), []
            while time.monotonic() < until:
                time.sleep(10)
                samples.append(process_tree_rss(pid))
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
    report(args, statuses, failures, warm, samples, elapsed)


class _server_pid:
    """The pid of the gunicorn master listening on `port` (the `server` helper started it):
    of the processes holding the listening socket (the master and the workers it forked),
    the one whose parent does not hold it."""

    def __init__(self, port: int):
        self.port = port

    def __enter__(self) -> int:
        socket = f"socket:[{_listening_inode(self.port)}]"
        holders = set()
        for fd in Path("/proc").glob("[0-9]*/fd/*"):
            try:
                if fd.readlink().name == socket:
                    holders.add(int(fd.parent.parent.name))
            except OSError:
                continue
        roots = [pid for pid in holders if _parent(pid) not in holders]
        if len(roots) != 1:
            raise RuntimeError(f"cannot tell the server on port {self.port} among {sorted(holders)}")
        return roots[0]

    def __exit__(self, *exc) -> None:
        return None


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def _listening_inode(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[1].endswith(f":{port:04X}") and parts[3] == "0A":  # LISTEN
            return parts[9]
    raise RuntimeError(f"nothing listens on port {port}")


def report(args, statuses: Counter, failures: list[str], warm: int, samples: list[int], elapsed: float) -> None:
    total = sum(statuses.values())
    server_errors = sum(n for (_, status), n in statuses.items() if status >= 500)
    end = samples[-1] if samples else warm
    growth = end / warm - 1 if warm else 0.0
    print(f"{args.db}: {args.connections} connections for {elapsed / 60:.1f} min, gunicorn {args.workers} workers "
          f"x {args.threads} threads, {args.rows:,} accounts seeded")
    print(f"    requests     {total:,} ({total / elapsed:,.0f}/s)")
    for (kind, status), n in sorted(statuses.items()):
        print(f"    {kind:8} {status}  {n:,}")
    print(f"    5xx          {server_errors}   socket errors {len(failures)}"
          + (f" (first: {failures[0]})" if failures else ""))
    print(f"    server RSS   after warm-up {warm / 2**20:.1f} MiB, end {end / 2**20:.1f} MiB, "
          f"max {max(samples or [warm]) / 2**20:.1f} MiB: growth {growth:+.1%} (limit +10%)")
    ok = server_errors == 0 and not failures and growth < 0.10
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
