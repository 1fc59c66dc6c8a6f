"""Pure diffing: type change safety, orphans, indexes, metadata-only edits."""

import dataclasses

import pytest

from packwork.metadata import diff as d
from packwork.metadata.fieldtypes import Storage
from packwork.metadata.physical import physical_schema, with_orphans

from packtext import resolve, source

S = Storage


@pytest.mark.parametrize("old, new, safe", [
    (S("string", 30), S("string", 200), True),
    (S("string", 200), S("string", 30), False),
    (S("string", 30), S("text"), True),
    (S("text"), S("string", 255), False),
    (S("integer"), S("decimal", precision=24, scale=2), True),
    (S("integer"), S("decimal", precision=10, scale=2), False),
    (S("decimal", precision=18, scale=2), S("decimal", precision=20, scale=4), True),
    (S("decimal", precision=18, scale=4), S("decimal", precision=18, scale=2), False),
    (S("decimal", precision=18, scale=2), S("integer"), False),
    (S("date"), S("datetime"), True),
    (S("datetime"), S("date"), False),
    (S("boolean"), S("integer"), True),
    (S("string", 40), S("json"), False),
])
def test_type_change_loss(old, new, safe):
    assert (d.type_change_loss(old, new) is None) == safe


PACK = """
entities:
  thing:
    label: Thing
    fields:
      name: {type: text}
      note: {type: long_text}
"""


def schema_of(text):
    return physical_schema(resolve(source("p", {"e.yaml": text})))


def test_removed_field_becomes_orphan_and_comes_back_adopted():
    v1 = schema_of(PACK)
    v2 = schema_of(PACK.replace("      note: {type: long_text}\n", ""))
    changes = d.diff_schema(v1, v2)
    assert [type(c) for c in changes] == [d.OrphanColumn]
    recorded = with_orphans(v1, v2)
    assert [c.name for c in recorded.tables["thing"].orphans] == ["note"]
    back = d.diff_schema(recorded, v1)
    assert [type(c) for c in back] == [d.AdoptColumn]
    assert not any(c.ddl for c in changes + back)


def test_new_field_index_and_entity():
    v1 = schema_of(PACK)
    v2 = schema_of(PACK.replace("name: {type: text}", "name: {type: text, indexed: true}")
                   + "  other:\n    label: Other\n    fields:\n      x: {type: integer}\n")
    kinds = {(type(c).__name__, c.table) for c in d.diff_schema(v1, v2)}
    assert kinds == {("CreateIndex", "thing"), ("CreateTable", "other")}


def test_removed_entity_is_orphaned_not_dropped():
    v1 = schema_of(PACK + "  other:\n    label: Other\n    fields:\n      x: {type: integer}\n")
    v2 = schema_of(PACK)
    assert [type(c) for c in d.diff_schema(v1, v2)] == [d.OrphanTable]
    assert with_orphans(v1, v2).tables["other"].orphaned


def test_document_edits_match_named_items():
    old = {"entities": {"thing": {"fields": [{"name": "a", "hidden": False}, {"name": "b", "hidden": False}]}}}
    new = {"entities": {"thing": {"fields": [{"name": "b", "hidden": True}, {"name": "a", "hidden": False}]}}}
    edits = d.diff_documents(old, new)
    assert [e.describe() for e in edits] == ["change entities.thing.fields.b.hidden: False -> True"]


def test_schema_json_round_trip():
    from packwork.metadata.physical import schema_from_json, schema_to_json
    schema = with_orphans(schema_of(PACK), schema_of(PACK.replace("      note: {type: long_text}\n", "")))
    again = schema_from_json(schema_to_json(schema))
    assert dict(again.tables) == dict(schema.tables)
    assert dataclasses.asdict(again.tables["thing"]) == dataclasses.asdict(schema.tables["thing"])
