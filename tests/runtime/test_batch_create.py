"""Batched creates (`records.batch`, the path import takes) refuse exactly what `create_record`
refuses, with the same errors, and write the same rows and audit entries, on SQLite and
PostgreSQL: bad values, permissions, references, unique values inside a batch and against the
table, rules that read the database, triggers before and after the INSERT, a constraint only
the database knows."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.errors import PermissionDenied, RequestError
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.records import batch, core, writes
from packwork.runtime.system import pw_audit
from packwork.runtime.users import create_user

ROLES = {"kim": "keeper", "max": "maker", "mia": "maker"}
PARTS = """entities:
  part:
    label: {en: Part, zh: 零件}
    title_field: name
    fields:
      name: {type: text, required: true}
      code: {type: text, unique: true}
      serial: {type: text}
rules:
  number_parts:
    entity: part
    kind: trigger
    on: [create]
    code: |
      if record.name == 'refuse':
          error('name', 'refused after the insert')
      record.serial = 'P' + str(record.id)
"""


@pytest.fixture
def mini(engine):
    apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
    with engine.begin() as conn:
        users = {name: create_user(conn, name, [role], sorted(set(ROLES.values()))) for name, role in ROLES.items()}
    return engine, users


@contextmanager
def acting(mini, user: str = "kim", keep: bool = False, roles: frozenset[str] | None = None):
    """A unit of work as `user`, rolled back at the end unless `keep`."""
    engine, users = mini
    with engine.connect() as conn:
        transaction = conn.begin()
        actor = Actor(users[user], frozenset({ROLES[user]}) if roles is None else roles)
        ctx = records.Context.start(conn, load_catalog(conn), actor)
        yield ctx
        transaction.commit() if keep else transaction.rollback()


def outcome(result: object) -> tuple:
    if isinstance(result, RequestError):
        return type(result).__name__, result.detail, result.errors
    return ("created",)


def single(ctx, name: str, body: object, action: str = "create") -> tuple:
    """What one create does, as the API (create_record) or an import (the import grant) runs it."""
    try:
        with ctx.conn.begin_nested():
            if action == "create":
                return outcome(records.create_record(ctx, name, body))
            return outcome(writes.insert_row(ctx, core.target_for(ctx, name, "import"), body, "import"))
    except RequestError as exc:
        return outcome(exc)


def count(ctx, sql: str) -> int:
    return ctx.conn.exec_driver_sql(sql).scalar()


def good(name: str) -> dict:
    return {"name": name, "code": name.upper(), "count": 2}


BAD = [  # (user, body); "@user" stands for that user's id
    ("kim", {"code": "NONAME"}),
    ("kim", {"name": "w", "count": "x"}),
    ("kim", {"name": "w", "count": -1}),
    ("kim", {"name": "w", "size": "xl"}),
    ("kim", {"name": "w", "tags": ["new", "old"]}),
    ("kim", {"name": "w", "price": "1.234"}),
    ("kim", {"name": "w", "email": "not-an-address"}),
    ("kim", {"name": "w", "code": "x" * 21}),
    ("kim", {"name": "w", "nonsense": 1}),
    ("kim", {"name": "w", "id": 5}),
    ("kim", {"name": "w", "total": 5}),
    ("kim", {"name": "w", "record_type": "small"}),
    ("kim", "not an object"),
    ("kim", {"name": "w", "bin": 999_999}),
    ("kim", {"name": "w", "maker": 999_999}),
    ("kim", {"name": "w", "owner_id": 999_999}),
    ("kim", {"name": "w", "phase": "shipped"}),
    ("kim", {"name": "w", "phase": "ready"}),
    ("max", {"name": "w", "notes": "hidden from makers"}),
    ("max", {"name": "w", "weight": "1.5"}),
    ("max", {"name": "w", "owner_id": "@mia"}),
    ("max", {"name": "w", "owner_id": None}),
]


@pytest.mark.parametrize("action", ["create", "import"])
@pytest.mark.parametrize(("user", "body"), BAD)
def test_a_batch_refuses_a_row_exactly_as_a_single_create_does(mini, user, body, action):
    if isinstance(body, dict):
        body = {k: mini[1][v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in body.items()}
    if action == "import" and user == "kim" and body == "not an object":
        pytest.skip("the same as create")
    with acting(mini, user) as ctx:
        expected = single(ctx, "widget", body, action)
    assert expected[0] != "created"
    with acting(mini, user) as ctx:
        results = batch.create_many(ctx, "widget", [good("before"), body, good("after")], action)
        assert outcome(results[1]) == expected
        assert [r["name"] for r in (results[0], results[2])] == ["before", "after"]
        assert count(ctx, "SELECT count(*) FROM widget") == 2 == count(ctx, "SELECT count(*) FROM pw_audit")


def test_a_batch_writes_the_rows_and_audit_entries_single_creates_write(mini):
    bodies = [{"name": "plain"},
              {"name": "full", "code": "F1", "notes": "n", "count": 3, "weight": "1.5", "price": "12.5",
               "discount": "7.25", "active": False, "made_on": "2024-02-29", "checked_at": "2024-05-01T10:00:00+02:00",
               "colour": "red", "size": "m", "tags": ["new", "hot"], "email": "a@example.org", "phone": "+1 555",
               "site": "https://example.org", "record_type": "big", "phase": "draft"},
              {"name": "money", "price": 7, "price_currency": "USD", "count": None}]
    shown = []
    for make in (lambda ctx: [records.create_record(ctx, "widget", body) for body in bodies],
                 lambda ctx: batch.create_many(ctx, "widget", bodies)):
        with acting(mini) as ctx:
            made = make(ctx)
            stored = [dict(row) for row in ctx.conn.execute(sa.select(ctx.catalog.tables["widget"])
                                                            .order_by("id")).mappings()]
            changes = ctx.conn.execute(sa.select(pw_audit.c.action, pw_audit.c.changes)
                                       .order_by(pw_audit.c.id)).all()
            shown.append((_without_ids(made), _without_ids(stored), [tuple(c) for c in changes]))
    assert shown[0] == shown[1]
    assert shown[1][0][1]["total"] == "37.50" and shown[1][1][2]["price_currency"] == "USD"


def _without_ids(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")} for row in rows]


def test_a_unique_value_twice_in_a_batch_is_refused_naming_the_first(mini):
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [good("a"), good("b"), {"name": "again", "code": "A"}])
        assert outcome(results[2]) == ("Conflict", "a unique value is already taken",
                                       {"code": [f"'A' is already used by widget {results[0]['id']}"]})


def test_a_unique_value_already_stored_is_refused_naming_its_record(mini):
    with acting(mini, keep=True) as ctx:
        first = records.create_record(ctx, "widget", good("a"))
        gone = records.create_record(ctx, "widget", good("b"))
        records.delete_record(ctx, "widget", gone["id"])
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [good("c"), good("a"), good("b")])
        assert outcome(results[1]) == ("Conflict", "a unique value is already taken",
                                       {"code": [f"'A' is already used by widget {first['id']}"]})
        assert outcome(results[2]) == ("created",)  # a deleted record's value is free


def test_a_refused_row_does_not_hold_its_unique_value(mini):
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [{"name": "minus", "code": "A", "count": -1}, good("a")])
        assert outcome(results[0])[0] == "ValidationError" and outcome(results[1]) == ("created",)


def test_batches_see_the_batches_before_them(mini, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK", 3)
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [good(f"w{n}") for n in range(8)] + [good("w1")])
        assert [outcome(r)[0] for r in results] == ["created"] * 8 + ["Conflict"]
        assert results[8].errors == {"code": [f"'W1' is already used by widget {results[1]['id']}"]}


def test_rules_that_read_the_database_see_the_rows_before_them(mini):
    rows = [{"name": f"in small {n}", "bin": "small"} for n in range(3)] + [{"name": "in big", "bin": "big"}]
    found = []
    for create in (lambda ctx, bodies: [single(ctx, "widget", body) for body in bodies],
                   lambda ctx, bodies: [outcome(r) for r in batch.create_many(ctx, "widget", bodies)]):
        with acting(mini) as ctx:
            bins = {label: records.create_record(ctx, "bin", {"label_text": f"{label.title()} box"})["id"]
                    for label in ("small", "big")}
            found.append(create(ctx, [row | {"bin": bins[row["bin"]]} for row in rows]))
    assert found[0] == found[1]
    assert found[1][2] == ("ValidationError", "a rule refused the write",
                           {"bin": ["is full: a small bin holds 2 widgets"]})


def test_a_trigger_after_the_insert_creates_its_records(mini):
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [good("first"), {"name": "kit", "code": "KIT"}, good("last")])
        assert [outcome(r)[0] for r in results] == ["created"] * 3
        made = ctx.conn.exec_driver_sql("SELECT id, label_text FROM bin").all()
        assert [label for _, label in made] == ["Kit for kit"] and results[1]["bin"] == made[0][0]
        assert count(ctx, "SELECT count(*) FROM pw_audit WHERE entity = 'widget'") == 3


def test_a_trigger_refusing_after_the_insert_leaves_nothing_of_its_row(mini, tmp_path):
    pack = tmp_path / "parts"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: parts\nversion: 1.0.0\n")
    (pack / "entities.yaml").write_text(PARTS)
    apply(mini[0], plan_packs(mini[0], [pack], "install"))
    with acting(mini, roles=frozenset({"admin"})) as ctx:
        results = batch.create_many(ctx, "part", [{"name": "a", "code": "A"}, {"name": "refuse", "code": "R"},
                                                  {"name": "b", "code": "B"}])
        assert outcome(results[1]) == ("ValidationError", "a rule refused the write",
                                       {"name": ["refused after the insert"]})
        assert [r["serial"] for r in (results[0], results[2])] == [f"P{results[0]['id']}", f"P{results[2]['id']}"]
        assert count(ctx, "SELECT count(*) FROM part") == 2 == count(ctx, "SELECT count(*) FROM pw_audit")
        logged = ctx.conn.execute(sa.select(pw_audit.c.changes).order_by(pw_audit.c.id)).scalars().all()
        assert [entry["serial"][1] for entry in logged] == [results[0]["serial"], results[2]["serial"]]


def test_a_constraint_only_the_database_knows_refuses_exactly_its_row(mini):
    with mini[0].begin() as conn:
        conn.exec_driver_sql("CREATE UNIQUE INDEX one_of_each_name ON widget (name)")
    with acting(mini) as ctx:
        results = batch.create_many(ctx, "widget", [good("a"), good("b"), {"name": "a"}, good("c")])
        assert [outcome(r)[0] for r in results] == ["created", "created", "Conflict", "created"]
        assert results[2].detail.startswith("the database refused the row: ") and "name" in results[2].detail
        assert count(ctx, "SELECT count(*) FROM widget") == 3 == count(ctx, "SELECT count(*) FROM pw_audit")


def test_without_the_grants_every_row_is_refused(mini):
    with acting(mini, roles=frozenset()) as ctx:
        with pytest.raises(PermissionDenied) as caught:
            records.create_record(ctx, "widget", good("a"))
        results = batch.create_many(ctx, "widget", [good("a"), good("b")])
        assert [outcome(r) for r in results] == [outcome(caught.value)] * 2
    with acting(mini, "max") as ctx:
        with pytest.raises(PermissionDenied, match="import bin"):
            batch.create_many(ctx, "bin", [{"label_text": "Shelf"}], "import")
