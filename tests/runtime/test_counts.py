"""A list's capped count (`count_up_to`): exact up to the cap, cap + 1 beyond it, within the
actor's scope and the filter, on SQLite and PostgreSQL; and the list page shows it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.installer import plan_packs
from packwork.runtime.listing import ListQuery
from packwork.runtime.migrate import apply
from packwork.runtime.permissions import Actor
from packwork.runtime.users import create_user


@pytest.fixture
def widgets(engine):
    apply(engine, plan_packs(engine, [TEST_PACKS / "mini"], "install"))
    with engine.begin() as conn:
        max_id = create_user(conn, "max", ["maker"], ["maker"])
        mia_id = create_user(conn, "mia", ["foreman"], ["foreman"])
        now = sa.func.now() if engine.dialect.name == "postgresql" else sa.text("CURRENT_TIMESTAMP")
        conn.execute(sa.text("INSERT INTO widget (name, code, count, owner_id, created_by, created_at, updated_at, "
                             "version, active) VALUES (:name, :code, :count, :owner, :owner, :now, :now, 1, true)"),
                     [{"name": f"W{n}", "code": f"C{n}", "count": n % 3, "owner": max_id if n < 30 else mia_id,
                       "now": "2026-01-01 00:00:00"} for n in range(45)])
        conn.execute(sa.text("INSERT INTO bin (label_text, owner_id, created_by, created_at, updated_at, version) "
                             "VALUES (:label, :owner, :owner, :now, :now, 1)"),
                     [{"label": f"B{n}", "owner": max_id if n < 12 else mia_id, "now": "2026-01-01 00:00:00"}
                      for n in range(20)])
    return engine, max_id


def _count(engine, user_id, entity="widget", **query) -> int | None:
    with engine.connect() as conn:
        ctx = records.Context.start(conn, load_catalog(conn), Actor(user_id, frozenset({"maker"})) if user_id
                                    else Actor(None))
        return records.list_records(ctx, entity, ListQuery(**query)).count


@pytest.mark.parametrize(("query", "expected"), [
    ({"limit": 50, "count_up_to": 1000}, 45),  # all on the first page: no count query
    ({"limit": 10, "count_up_to": 1000}, 45),
    ({"limit": 10, "count_up_to": 20}, 21),  # more than 20
    ({"limit": 10, "count_up_to": 45}, 45),
    ({"limit": 10, "count_up_to": 44}, 45),
    ({"limit": 5, "count_up_to": 1000, "filter": "count = 0"}, 15),
    ({"limit": 5}, None),
])
def test_capped_counts(widgets, query, expected):
    engine, _ = widgets
    assert _count(engine, None, **query) == expected


def test_a_capped_count_is_within_the_readers_scope(widgets):
    engine, max_id = widgets
    assert _count(engine, None, "bin", limit=5, count_up_to=1000) == 20
    assert _count(engine, max_id, "bin", limit=5, count_up_to=1000) == 12  # makers read their own bins
    assert _count(engine, max_id, "bin", limit=5, count_up_to=10) == 11
