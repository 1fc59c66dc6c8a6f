"""`packwork pack new`'s scaffold: a pack that resolves (alone or on the pack it extends), whose
rule tests pass, whose modeline finds the schema from wherever it is written, and whose names
cannot clash with another scaffold's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT
from packwork.metadata import scaffold
from packwork.metadata.loader import PackSource, SourceFile
from packwork.metadata.resolver import resolve_sources
from packwork.rules.testing import run_pack_tests
from test_cli import packwork

from packtext import source


def scaffold_source(name: str, extends: str | None = None) -> PackSource:
    files = scaffold.scaffold_files(name, extends, "schema.json")
    return PackSource(name, tuple(SourceFile(p, t) for p, t in files.items()))


def test_the_scaffold_resolves_and_its_rule_tests_pass():
    metadata = resolve_sources([scaffold_source("acme")])
    assert [p.name for p in metadata.packs] == ["acme"] and list(metadata.entities) == ["acme_item"]
    outcomes = run_pack_tests(metadata)
    assert len(outcomes) == 2 and all(o.problem is None for o in outcomes), [o.describe() for o in outcomes]


def test_two_scaffolds_extending_one_base_install_together():
    base = source("base", {"e.yaml": "entities:\n  thing:\n    label: Thing\n    fields:\n      name: {type: text}\n"})
    metadata = resolve_sources([base, scaffold_source("north", "base"), scaffold_source("south", "base")])
    assert [p.name for p in metadata.packs] == ["base", "north", "south"]
    assert metadata.packs[1].depends == ("base",)
    assert set(metadata.entities) == {"thing", "north_item", "south_item"}


def test_a_long_name_gives_the_entity_the_packs_own_name():
    name = "a" * 38
    assert scaffold.entity_name(name) == name and scaffold.entity_name("acme") == "acme_item"
    assert list(resolve_sources([scaffold_source(name)]).entities) == [name]


@pytest.mark.parametrize("name, why", [
    ("Acme", "is not a valid name"), ("acme-crm", "is not a valid name"), ("1acme", "is not a valid name"),
    ("order", "is an SQL key word"), ("pw_acme", "reserved prefix"), ("a" * 41, "longer than 40"),
])
def test_bad_names_are_refused(name, why):
    assert why in scaffold.name_problem(name)


@pytest.mark.parametrize("folder", [ROOT / "packs" / "acme", ROOT / "packs" / "industry" / "acme", None],
                         ids=["packs", "industry", "elsewhere"])
def test_the_modeline_finds_the_schema(folder, tmp_path):
    folder = folder or tmp_path / "acme"
    reference = scaffold.schema_reference(folder)
    if folder.is_relative_to(ROOT):
        assert reference == "../" * (len(folder.relative_to(ROOT).parts)) + \
            "platform/packwork/metadata/schemas/pack-v1.schema.json"
    schema = (folder / reference).resolve()
    assert json.loads(schema.read_text(encoding="utf-8"))["title"].startswith("Packwork pack file")
    for text in scaffold.scaffold_files("acme", None, reference).values():
        assert text.splitlines()[0] == f"# yaml-language-server: $schema={reference}"


def test_the_cli_refuses_bad_names_and_an_existing_folder(tmp_path: Path):
    bad = packwork("pack", "new", "Acme-CRM", "--out", str(tmp_path))
    assert bad.returncode == 2
    assert "Invalid value for NAME: 'Acme-CRM' is not a valid name: use lowercase letters" in bad.stderr
    assert "cannot extend itself" in packwork("pack", "new", "acme", "--extends", "acme").stderr
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "pack.yaml").write_text("keep me\n")
    taken = packwork("pack", "new", "acme", "--out", str(tmp_path))
    assert taken.returncode == 1 and "exists already and is not an empty folder; nothing was written" in taken.stderr
    assert (tmp_path / "acme" / "pack.yaml").read_text() == "keep me\n"
    assert not list(tmp_path.iterdir())[1:]
