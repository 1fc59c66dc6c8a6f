"""Resolution: dependency order, extensions, frozen results, content hash."""

import dataclasses
from pathlib import Path

import pytest

from packwork.errors import PackError
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources

from packtext import resolve, source

MINI = Path(__file__).resolve().parents[1] / "data" / "packs" / "mini"

BASE = """
entities:
  thing:
    label: {en: Thing, zh: 东西}
    fields:
      name: {type: text}
      fax: {type: phone}
      state: {type: stage}
    pipeline:
      field: state
      stages:
        new: {probability: 10, outcome: open}
        done: {probability: 100, outcome: won}
    layouts:
      default: {sections: {main: {fields: [name, fax]}}}
"""

EXTENSION = """
extends:
  thing:
    label: {en: Gadget, zh: 小工具}
    add_fields:
      serial: {type: text, max_length: 40}
    change_fields:
      name: {label: {en: Title, zh: 标题}, required: true}
    hide_fields: [fax]
    add_stages:
      review: {probability: 50, outcome: open, after: new}
    layouts:
      default: {sections: {main: {fields: [name, serial]}}}
"""


def test_mini_pack_resolves_to_frozen_metadata():
    sources, problems = read_pack_folders([MINI])
    assert problems == []
    metadata = resolve_sources(sources)
    widget = metadata.entity("widget")
    assert [c.value for c in widget.field("colour").choices] == ["red", "blue"]
    assert [c.value for c in widget.field("phase").choices] == ["draft", "ready", "shipped", "scrapped"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        widget.label = None
    with pytest.raises(TypeError):
        metadata.entities["x"] = widget


def test_extension_adds_changes_hides_relabels_and_adds_stages():
    metadata = resolve(source("vertical", {"x.yaml": EXTENSION}, depends=("base",)),
                       source("base", {"e.yaml": BASE}))  # order given does not matter
    thing = metadata.entity("thing")
    assert [p.name for p in metadata.packs] == ["base", "vertical"]
    assert thing.label.en == "Gadget" and thing.label.zh == "小工具"
    assert [f.name for f in thing.fields] == ["name", "fax", "state", "serial"]
    assert thing.field("name").label.en == "Title" and thing.field("name").required
    assert thing.field("fax").hidden
    assert [s.name for s in thing.pipeline.stages] == ["new", "review", "done"]
    assert [c.value for c in thing.field("state").choices] == ["new", "review", "done"]
    assert thing.layouts[0].field_names() == ["name", "serial"]


STAGE_CHANGES = """
extends:
  thing:
    change_stages:
      new: {label: {en: Fresh, zh: 新}, probability: 20, required_fields: [name]}
"""


def test_extension_changes_a_stage_but_not_its_name_or_place():
    thing = resolve(source("base", {"e.yaml": BASE}),
                    source("vertical", {"x.yaml": STAGE_CHANGES}, depends=("base",))).entity("thing")
    new = thing.pipeline.stage("new")
    assert [s.name for s in thing.pipeline.stages] == ["new", "done"] and new.outcome == "open"
    assert (new.label.en, new.probability, new.required_fields) == ("Fresh", 20, ("name",))
    assert [c.label.en for c in thing.field("state").choices] == ["Fresh", "Done"]
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": BASE}),
                source("vertical", {"x.yaml": STAGE_CHANGES.replace("new:", "gone:")}, depends=("base",)))
    assert [p.format() for p in error.value.problems] == [
        "vertical/x.yaml:5: $.extends.thing.change_stages.gone: 'thing' has no stage 'gone' to change [PACK-E026]"]


TONES = """
dictionaries:
  tone: {options: [{value: warm}, {value: cold}]}
entities:
  toned:
    label: Toned
    fields:
      tone: {type: choice, dictionary: tone}
"""
MORE_TONES = """
extend_dictionaries:
  tone:
    add_options: [{value: mild, label: {en: Mild, zh: 温和}}]
"""


def test_a_pack_adds_options_to_a_dictionary_it_depends_on():
    metadata = resolve(source("base", {"e.yaml": TONES}), source("v", {"x.yaml": MORE_TONES}, depends=("base",)))
    assert [c.value for c in metadata.dictionaries["tone"].choices] == ["warm", "cold", "mild"]
    assert [c.label.zh for c in metadata.entity("toned").field("tone").choices] == ["Warm", "Cold", "温和"]
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": TONES}), source("v", {"x.yaml": MORE_TONES.replace("mild", "warm")},
                                                          depends=("base",)))
    assert [p.format() for p in error.value.problems] == [
        "v/x.yaml:4: $.extend_dictionaries.tone.add_options[0]: dictionary 'tone' already has the option "
        "'warm' [PACK-E025]"]
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": TONES}), source("stray", {"x.yaml": MORE_TONES}))
    assert "no pack that 'stray' depends on declares [PACK-E024]" in error.value.problems[0].format()


def test_extension_needs_a_dependency_on_the_declaring_pack():
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": BASE}), source("stray", {"x.yaml": EXTENSION}))
    assert [p.format() for p in error.value.problems] == [
        "stray/x.yaml:3: $.extends.thing: extends entity 'thing', which no pack that 'stray' depends on "
        "declares [PACK-E024]"]


def test_same_entity_in_two_packs_names_both_places():
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": BASE}), source("copy", {"e.yaml": BASE}, depends=("base",)))
    assert [p.format() for p in error.value.problems] == [
        "copy/e.yaml:3: $.entities.thing: entity 'thing' is declared twice (first at base/e.yaml:3) [PACK-E023]"]


def test_version_is_a_content_hash_blind_to_positions():
    one = resolve(source("base", {"e.yaml": BASE}))
    moved = resolve(source("base", {"other_name.yaml": "\n\n# comment\n" + BASE}))
    relabelled = resolve(source("base", {"e.yaml": BASE.replace("Thing", "Object")}))
    assert one.version == moved.version
    assert one.version != relabelled.version
    assert len(one.version) == 16


def test_all_problems_are_reported_at_once():
    broken = BASE.replace("type: text", "type: txt").replace("type: phone", "type: fone")
    with pytest.raises(PackError) as error:
        resolve(source("base", {"e.yaml": broken}))
    assert [p.line for p in error.value.problems] == [6, 7]
