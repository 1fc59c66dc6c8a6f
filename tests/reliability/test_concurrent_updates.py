"""16 concurrent clients doing 2,000 mixed updates on the same 50 records over the API: every
accepted write is in the audit log, every refused one got a 409, the final values equal the last
accepted writes. A real `packwork serve` (gunicorn, several workers and threads), on SQLite and
on PostgreSQL."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa

from packwork.runtime.db import make_engine
from packwork.runtime.system import pw_audit

CLIENTS = 16
WRITES = 2000
RECORDS = 50
FIELDS = ("name", "notes", "count")


@dataclass(frozen=True)
class Write:
    record_id: int
    sent_version: int
    version: int  # the version the server answered with
    values: dict


class Client:
    """One HTTP/1.1 keep-alive connection of its own, as a separate integrator would have."""

    def __init__(self, base: str, secret: str):
        parts = urlsplit(base)
        self.prefix = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        self.connection.request(method, self.prefix + path, body=json.dumps(body) if body is not None else None,
                                headers=self.headers | (headers or {}))
        response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}

    def close(self) -> None:
        self.connection.close()


@dataclass
class Outcome:
    accepted: list
    refused: list
    unexpected: list
    errors: list


def _values(rng: random.Random, client: int, step: int) -> dict:
    """A mix of single- and multi-field updates, each value unique to this write."""
    unique = {"name": f"w{client}-{step}", "notes": f"note {client}/{step}", "count": client * 10_000 + step + 1}
    shape = rng.choice([("name",), ("notes",), ("count",), ("name", "count"), ("notes", "count", "name")])
    return {f: unique[f] for f in shape}


def _run_client(number: int, base: str, secret: str, ids: list[int], writes: int, outcome: Outcome) -> None:
    rng = random.Random(number)
    client = Client(base, secret)
    try:
        for step in range(writes):
            record_id = rng.choice(ids)
            status, record = client.call("GET", f"/widget/{record_id}")
            if status != 200:
                outcome.unexpected.append(("GET", status, record))
                continue
            version = record["version"]
            if version > 1 and rng.random() < 0.1:  # a client working from an old copy
                version -= 1
            values = _values(rng, number, step)
            if rng.random() < 0.5:
                status, answer = client.call("PATCH", f"/widget/{record_id}", values, {"If-Match": f'"{version}"'})
            else:
                status, answer = client.call("PATCH", f"/widget/{record_id}", values | {"version": version})
            if 200 <= status < 300:
                outcome.accepted.append(Write(record_id, version, answer["version"], values))
                assert all(answer[f] == v for f, v in values.items()), (values, answer)
            elif status == 409:
                outcome.refused.append((record_id, version, answer))
            else:
                outcome.unexpected.append(("PATCH", status, answer))
    except Exception as exc:  # noqa: BLE001 - reported by the test, with the others
        outcome.errors.append(repr(exc))
    finally:
        client.close()


def _create_records(base: str, secret: str) -> list[int]:
    client = Client(base, secret)
    try:
        made = [client.call("POST", "/widget", {"name": f"start {n}", "code": f"C{n}"}) for n in range(RECORDS)]
    finally:
        client.close()
    assert all(status == 201 for status, _ in made), made
    return [record["id"] for _, record in made]


def _audit(url: str) -> tuple[dict[int, list], dict[int, dict]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        entries = conn.execute(sa.select(pw_audit.c.record_id, pw_audit.c.action, pw_audit.c.changes)
                               .where(pw_audit.c.entity == "widget").order_by(pw_audit.c.id)).all()
        rows = {r.id: r._asdict() for r in conn.execute(sa.text("SELECT id, version, name, notes, count FROM widget"))}
    engine.dispose()
    by_record = defaultdict(list)
    for entry in entries:
        by_record[entry.record_id].append(entry)
    return by_record, rows


def _check_record(record_id: int, entries: list, writes: list[Write], row: dict) -> None:
    """The audit entries form an unbroken chain from the created values; the k-th update entry
    is the accepted write that produced version k + 1; the row holds the last values."""
    create, updates = entries[0], entries[1:]
    assert create.action == "create" and all(e.action == "update" for e in updates), record_id
    writes = sorted(writes, key=lambda w: w.version)
    assert [w.version for w in writes] == list(range(2, len(updates) + 2)), \
        f"widget {record_id}: accepted versions {[w.version for w in writes]} vs {len(updates)} audit entries"
    state = {field: new for field, (_, new) in create.changes.items()}
    for entry, write in zip(updates, writes):
        assert write.sent_version == write.version - 1, write
        for field, (old, new) in entry.changes.items():
            assert old == state.get(field), f"widget {record_id}: broken chain at {field}: {old!r} != {state.get(field)!r}"
            state[field] = new
        assert {f: entry.changes[f][1] for f in write.values} == write.values, (entry.changes, write)
    assert row["version"] == len(updates) + 1
    for field in FIELDS:
        assert row[field] == state.get(field), f"widget {record_id}.{field}: {row[field]!r} != {state.get(field)!r}"
        last = next((w.values[field] for w in reversed(writes) if field in w.values), None)
        if last is not None:
            assert row[field] == last


def test_concurrent_updates_are_all_audited_or_refused(mini_db, served_api):
    base, secret, log = served_api
    ids = _create_records(base, secret)
    outcome = Outcome([], [], [], [])
    threads = [threading.Thread(target=_run_client, args=(n, base, secret, ids, WRITES // CLIENTS, outcome))
               for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not outcome.errors, outcome.errors[:5]
    assert not outcome.unexpected, outcome.unexpected[:5]
    assert len(outcome.accepted) + len(outcome.refused) == WRITES
    assert outcome.refused, "16 clients on 50 records should collide at least once"
    for record_id, sent, problem in outcome.refused:
        assert problem["status"] == 409 and problem["current"]["version"] != sent, problem

    by_record, rows = _audit(mini_db)
    assert sum(1 for entries in by_record.values() for e in entries if e.action == "update") == len(outcome.accepted)
    writes = defaultdict(list)
    for write in outcome.accepted:
        writes[write.record_id].append(write)
    for record_id in ids:
        _check_record(record_id, by_record[record_id], writes[record_id], rows[record_id])
    print(f"\n{mini_db.split(':')[0]}: {len(outcome.accepted)} accepted, {len(outcome.refused)} refused "
          f"in {elapsed:.1f} s")
