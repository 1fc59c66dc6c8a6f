"""Packs that extend the same thing: two packs that do not depend on each other may not set it
differently, nor add the same name; each case in tests/data/packs/conflicts/<case>/ (packs base,
left and right, left and right both depending on base) yields exactly its expected.txt, naming
both places. A pack that depends on another may override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TEST_PACKS
from packwork.errors import PackError
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources

from packtext import resolve, source

CASES = sorted(p for p in (TEST_PACKS / "conflicts").iterdir() if p.is_dir())


def problems(case: Path) -> list[str]:
    sources, found = read_pack_folders([case / "left", case / "right"])
    assert found == []
    try:
        resolve_sources(sources)
    except PackError as exc:
        return [p.format().replace(f"{case}/", "") for p in exc.problems]
    return []


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_each_conflict_names_both_files_and_lines(case: Path):
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert problems(case) == expected
    for line in expected:  # reported at right's file, naming left's
        assert line.startswith("right/") and "left/" in line, line


BASE = """
entities:
  thing:
    label: Thing
    fields:
      name: {type: text, max_length: 100}
"""
LEFT = """
extends:
  thing:
    label: Device
    change_fields:
      name: {max_length: 50, required: true}
"""
RIGHT = """
extends:
  thing:
    label: Article
    change_fields:
      name: {max_length: 80, required: true}
"""


def test_a_pack_that_depends_on_the_other_overrides_it():
    metadata = resolve(source("base", {"e.yaml": BASE}), source("left", {"x.yaml": LEFT}, depends=("base",)),
                       source("right", {"x.yaml": RIGHT}, depends=("left",)))
    thing = metadata.entity("thing")
    assert thing.label.en == "Article" and thing.field("name").max_length == 80


def test_unrelated_packs_may_set_the_same_value():
    same = RIGHT.replace("Article", "Device").replace("80", "50")
    metadata = resolve(source("base", {"e.yaml": BASE}), source("left", {"x.yaml": LEFT}, depends=("base",)),
                       source("right", {"x.yaml": same}, depends=("base",)))
    assert metadata.entity("thing").field("name").max_length == 50


def test_the_conflict_is_found_whichever_pack_comes_first():
    packs = [source("base", {"e.yaml": BASE}), source("left", {"x.yaml": LEFT}, depends=("base",)),
             source("right", {"x.yaml": RIGHT}, depends=("base",))]
    for order in (packs, [packs[0], packs[2], packs[1]]):
        with pytest.raises(PackError) as error:
            resolve_sources(list(order))
        lines = [p.format() for p in error.value.problems]
        assert len(lines) == 2 and all("[PACK-E028]" in line for line in lines)
        assert any("left/x.yaml:6" in line and "right/x.yaml:6" in line for line in lines), lines


def test_a_record_type_added_twice_names_the_first():
    base = BASE.replace("    fields:", "    record_types:\n      big: {label: Big}\n    fields:")
    ext = "extends:\n  thing:\n    add_record_types:\n      big: {label: Large}\n"
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": base}), source("more", {"x.yaml": ext}, depends=("base",)))
    assert [p.format() for p in error.value.problems] == [
        "more/x.yaml:4: $.extends.thing.add_record_types.big: record type 'big' already exists in 'thing' "
        "(declared at base/e.yaml:6) [PACK-E025]"]
