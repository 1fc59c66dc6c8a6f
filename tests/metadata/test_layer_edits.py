"""The studio's structured edits of the admin layer text, without a database: where each edit
goes (the layer's own entity, or an extension of a pack's), the path it reports for the
resolver's problems, and text that reads back as the same data."""

from __future__ import annotations

import pytest
import yaml

from packwork.metadata.layer_edits import DraftError, LayerDraft
from packwork.web.studio_forms import field_changes, field_inputs, field_spec, options_text, parse_options
from packwork.metadata.model import Choice, Field, Label


def data(draft: LayerDraft) -> dict:
    return yaml.safe_load(draft.text()) or {}


def test_a_new_entity_and_its_fields_live_in_the_layers_own_entities():
    draft = LayerDraft("")
    assert draft.add_entity("project", {"label": "Project", "fields": {"name": {"type": "text"}}}) == "$.entities.project"
    assert draft.owns("project") and not draft.owns("account")
    assert draft.add_field("project", "budget", {"type": "money"}) == "$.entities.project.fields.budget"
    assert data(draft)["entities"]["project"]["fields"] == {"name": {"type": "text"}, "budget": {"type": "money"}}
    with pytest.raises(DraftError, match="already declared"):
        draft.add_entity("project", {})


def test_a_pack_entity_is_changed_through_extends():
    draft = LayerDraft("")
    assert draft.add_field("account", "tier", {"type": "text"}) == "$.extends.account.add_fields.tier"
    assert draft.change_field("account", "name", {"label": "Customer"}) == "$.extends.account.change_fields.name"
    assert draft.set_entity("account", {"icon": "star", "label": None}) == "$.extends.account"
    assert data(draft) == {"extends": {"account": {"add_fields": {"tier": {"type": "text"}},
                                                   "change_fields": {"name": {"label": "Customer"}}, "icon": "star"}}}
    with pytest.raises(DraftError, match="already exists"):
        draft.add_field("account", "tier", {"type": "text"})


def test_hiding_and_showing_a_pack_field():
    draft = LayerDraft("")
    draft.hide_field("account", "industry", True)
    assert draft.hides("account", "industry")
    assert data(draft)["extends"]["account"]["hide_fields"] == ["industry"]
    draft.hide_field("account", "industry", False)
    assert not draft.hides("account", "industry") and data(draft) == {}
    draft.hide_field("account", "legacy", False, hidden_by_packs=True)  # a pack hid it: the layer shows it
    assert data(draft)["extends"]["account"]["change_fields"]["legacy"] == {"hidden": False}


def test_a_layer_field_is_replaced_or_removed_and_leaves_the_layers_views():
    draft = LayerDraft("")
    draft.add_field("account", "tier", {"type": "text"})
    draft.set_view("account", "layouts", "default",
                   {"tabs": {"main": {"sections": {"basics": {"fields": ["name", "tier"]}}}}})
    draft.set_view("account", "list_views", "all", {"columns": ["name", "tier"]})
    assert draft.set_field("account", "tier", {"type": "long_text"}) == "$.extends.account.add_fields.tier"
    assert draft.remove_field("account", "tier") == "$.extends.account.add_fields.tier"
    extension = data(draft)["extends"]["account"]
    assert extension["layouts"]["default"]["tabs"]["main"]["sections"]["basics"]["fields"] == ["name"]
    assert extension["list_views"]["all"]["columns"] == ["name"] and "add_fields" not in extension
    with pytest.raises(DraftError, match="can be hidden, not removed"):
        draft.remove_field("account", "name")
    with pytest.raises(DraftError, match="change it, don't replace it"):
        draft.set_field("account", "name", {"type": "text"})


def test_pipelines_grants_and_named_items():
    draft = LayerDraft("")
    draft.add_entity("project", {"fields": {"phase": {"type": "stage"}}})
    assert draft.set_pipeline("project", {"field": "phase", "stages": {}}) == "$.entities.project.pipeline"
    with pytest.raises(DraftError, match="new stages"):
        draft.set_pipeline("opportunity", {})
    assert draft.add_stage("opportunity", "pilot", {"probability": 30, "outcome": "open", "after": "qualify"}) \
        == "$.extends.opportunity.add_stages.pilot"
    assert draft.set_grant("rep", "project", {"read": "own"}) == "$.permissions.rep.project"
    assert draft.layer_grant("rep", "project") == {"read": "own"}
    draft.set_grant("rep", "project", {})
    assert draft.layer_grant("rep", "project") == {}
    assert draft.set_named("dictionaries", "tone", {"options": [{"value": "warm"}]}) == "$.dictionaries.tone"
    assert list(draft.named("dictionaries")) == ["tone"]
    with pytest.raises(ValueError):
        draft.set_named("entities", "x", {})


def test_text_keeps_code_readable_and_rejects_what_is_not_a_layer():
    draft = LayerDraft("")
    draft.set_named("rules", "check", {"entity": "project", "code": "if x:\n    refuse('no')\n"})
    assert "code: |" in draft.text()
    assert LayerDraft(draft.text()).data == draft.data  # the text reads back as the same data
    with pytest.raises(DraftError, match="must be a mapping"):
        LayerDraft("- a list\n")
    broken = LayerDraft("extends: [account]\n")
    with pytest.raises(DraftError, match="raw editor"):
        broken.add_field("account", "x", {"type": "text"})


def test_field_form_reads_into_a_spec_with_errors_per_input():
    spec, errors = field_spec({"type": "choice", "label_en": "Tone", "label_zh": "语气", "required": "1",
                               "options": "warm, Warm, 暖\ncold"})
    assert errors == {} and spec == {"type": "choice", "label": {"en": "Tone", "zh": "语气"}, "required": True,
                                     "options": [{"value": "warm", "label": {"en": "Warm", "zh": "暖"}},
                                                 {"value": "cold"}]}
    assert field_spec({"type": "reference"})[1] == {"entity": ["choose the entity it refers to"]}
    assert field_spec({"type": "text", "max_length": "lots"})[1] == {"max_length": ["must be a whole number"]}
    assert field_spec({"type": ""})[1] == {"type": ["choose a type"]}
    assert field_spec({"type": "integer", "default": "7"})[0]["default"] == 7
    assert field_spec({"type": "money", "currency": "cny"})[0]["currency"] == "CNY"
    assert parse_options(", Label only")[1] == ["line 1: starts with no value"]


def test_a_pack_fields_form_changes_only_what_differs():
    field = Field("code", "text", Label("Code", "编号"), max_length=20,
                  choices=(Choice("a", Label("A", "A")),))
    values = field_inputs(field)
    assert field_changes(values, field) == ({}, {})  # the form as shown changes nothing
    changes, errors = field_changes(values | {"label_en": "Serial", "required": "1", "max_length": "30"}, field)
    assert errors == {} and changes == {"label": {"en": "Serial", "zh": "编号"}, "required": True, "max_length": 30}
    assert options_text(field.choices) == "a, A"
