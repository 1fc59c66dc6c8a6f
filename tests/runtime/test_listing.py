"""Keyset pages: walking `next` cursors visits every row exactly once, in the database's order
(NULLs largest on PostgreSQL, smallest on SQLite), whatever the sort, the NULLs and the ties."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packwork.errors import BadRequest
from packwork.metadata.model import Entity, Label
from packwork.runtime.listing import after, decode_cursor, encode_cursor, nulls_largest, order_by, parse_sort

ENTITY = Entity("thing", Label("Thing", "Thing"), Label("Things", "Things"), ())
KINDS = {"id": "integer", "rank": "integer", "name": "text"}
rows_strategy = st.lists(st.tuples(st.none() | st.integers(-3, 3), st.none() | st.sampled_from("abc")),
                         max_size=25)
sorts = st.sampled_from(["rank", "-rank", "name,-rank", "-name,rank", "-id", "rank,name"])


@pytest.fixture
def things(engine):
    table = sa.Table("thing", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("rank", sa.Integer), sa.Column("name", sa.String(5)))
    table.create(engine)
    return engine, table


def expected_order(rows: list[dict], keys, largest: bool) -> list[int]:
    def key(row):
        parts = []
        for k in keys:
            value = row[k.column]
            rank = ((1 if largest else -1), 0) if value is None else (0, value)
            parts.append(_Reversed(rank) if k.descending else rank)
        return parts
    return [row["id"] for row in sorted(rows, key=key)]


class _Reversed:
    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return other.value < self.value

    def __eq__(self, other):
        return self.value == other.value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows_strategy, sort=sorts, limit=st.integers(1, 4))
def test_pages_visit_every_row_once_in_order(things, data, sort, limit):
    engine, table = things
    with engine.begin() as conn:
        conn.execute(table.delete())
        if data:
            conn.execute(table.insert(), [{"id": i + 1, "rank": r, "name": n} for i, (r, n) in enumerate(data)])
    keys = parse_sort(sort, ENTITY, KINDS)
    largest = nulls_largest(engine.dialect)
    seen, cursor = [], None
    with engine.connect() as conn:
        while True:
            query = sa.select(table).order_by(*order_by(table, keys)).limit(limit)
            if cursor:
                query = query.where(after(table, keys, decode_cursor(cursor, keys), largest))
            page = conn.execute(query).mappings().all()
            seen += [row["id"] for row in page]
            if len(page) < limit:
                break
            cursor = encode_cursor(keys, page[-1])
    rows = [{"id": i + 1, "rank": r, "name": n} for i, (r, n) in enumerate(data)]
    assert seen == expected_order(rows, keys, largest)


@pytest.mark.parametrize("sort", ["name;drop table thing", "nope", "rank,rank", "-"])
def test_unknown_or_repeated_sort_fields_are_refused(sort):
    with pytest.raises(BadRequest):
        parse_sort(sort, ENTITY, KINDS)


def test_a_cursor_only_works_for_the_sort_it_was_made_for():
    cursor = encode_cursor(parse_sort("rank", ENTITY, KINDS), {"rank": 1, "id": 2})
    with pytest.raises(BadRequest):
        decode_cursor(cursor, parse_sort("-rank", ENTITY, KINDS))
    for garbage in ("", "!!!", "eyJ4Ijox", cursor[:-2]):
        with pytest.raises(BadRequest):
            decode_cursor(garbage, parse_sort("rank", ENTITY, KINDS))
