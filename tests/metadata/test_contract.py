"""Contracts between the JSON Schema, the field type registry and the real packs."""

import json
from pathlib import Path

import jsonschema
import pytest

from packwork.metadata.fieldtypes import COMPUTED_RESULTS, STORAGE_KINDS, builtin_field_types
from packwork.metadata.loader import DATA_FOLDER, read_pack_folders
from packwork.metadata.model import Field, Label
from packwork.metadata.resolver import resolve_sources
from packwork.metadata.schema import pack_schema

ROOT = Path(__file__).resolve().parents[2]
REAL_PACKS = sorted(p.parent for p in (ROOT / "packs").rglob("pack.yaml"))


def test_schema_is_valid_draft_2020_12():
    schema = pack_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_field_types_match_the_registry():
    types = builtin_field_types()
    assert pack_schema()["$defs"]["field"]["properties"]["type"]["enum"] == types.names()
    assert pack_schema()["$defs"]["field"]["properties"]["result"]["enum"] == list(COMPUTED_RESULTS)


@pytest.mark.parametrize("name", builtin_field_types().names())
def test_every_field_type_has_storage_and_documented_properties(name):
    field_type = builtin_field_types()[name]
    schema_properties = set(pack_schema()["$defs"]["field"]["properties"])
    assert field_type.properties <= schema_properties
    field = Field(name="f", type=name, label=Label("F", "F"), target="x", formula="1", result="money",
                  store=True)
    columns = list(field_type.columns(field))
    assert columns and columns[0][0] == "f"
    assert all(storage.kind in STORAGE_KINDS for _, storage in columns)
    docs = (ROOT / "docs" / "packs.md").read_text(encoding="utf-8")
    assert f"`{name}`" in docs, f"field type {name} is not documented in docs/packs.md"


@pytest.mark.parametrize("folder", REAL_PACKS, ids=lambda p: p.name)
def test_every_real_pack_validates(folder):
    sources, problems = read_pack_folders([folder])
    assert problems == []
    metadata = resolve_sources(sources)
    assert metadata.entities


def test_pack_files_carry_the_schema_modeline():
    for folder in REAL_PACKS:
        for path in folder.rglob("*.yaml"):
            if path.relative_to(folder).parts[0] == DATA_FOLDER:
                continue  # demo data, not a pack file (the loader skips it)
            first = path.read_text(encoding="utf-8").splitlines()[0]
            assert first.startswith("# yaml-language-server: $schema="), path
            target = (path.parent / first.split("$schema=")[1]).resolve()
            assert json.loads(target.read_text())["title"].startswith("Packwork pack file")
