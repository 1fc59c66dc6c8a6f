"""How grants combine into one policy per user and entity. Pure: no database."""

from __future__ import annotations

import pytest

from packtext import resolve, source
from packwork.metadata.access import ADMIN_ROLE, EVERYTHING, NOTHING, Reach, entity_policy, role_matrix

PACK = """
entities:
  deal:
    label: {en: Deal, zh: 交易}
    title_field: name
    fields:
      name: {type: text, required: true}
      margin: {type: percent}
      secret: {type: text}
      note: {type: text}
      helper: {type: user}
      phase: {type: stage}
    pipeline:
      field: phase
      stages:
        open: {probability: 10, outcome: open}
        won: {probability: 100, outcome: won}
        lost: {probability: 0, outcome: lost}
roles:
  rep: {label: Rep}
  helper: {label: Helper}
  boss: {label: Boss}
  auditor: {label: Auditor}
permissions:
  rep:
    deal:
      read: own
      create: own
      update: own
      rows: helper = $me
      fields: {secret: hidden, margin: read_only, note: read_only}
      stages: {won: none}
  helper:
    deal: {read: own, update: none, rows: "phase = 'open'", fields: {secret: hidden, note: hidden}}
  boss:
    deal: {read: team, update: team, delete: team, fields: {margin: read_only}, stages: {lost: own}}
  auditor:
    deal: {read: all, export: all, fields: {secret: hidden}}
"""


@pytest.fixture(scope="module")
def metadata():
    return resolve(source("acl", {"deal.yaml": PACK}))


def test_one_role_gets_its_grant(metadata):
    policy = entity_policy(metadata, ["rep"], "deal")
    assert policy.reach("read") == Reach("own", ("helper = $me",))
    assert policy.reach("delete") == NOTHING and not policy.reach("delete").granted
    assert policy.hidden == {"secret"} and policy.read_only == {"margin", "note"}


def test_scopes_take_the_widest_and_row_rules_add_up(metadata):
    policy = entity_policy(metadata, ["rep", "helper", "boss"], "deal")
    assert policy.reach("read") == Reach("team", ("helper = $me", "phase = 'open'"))
    # the helper role grants no update, so its row rule does not widen updates
    assert policy.reach("update") == Reach("team", ("helper = $me",))
    assert policy.reach("delete") == Reach("team")


def test_a_field_is_hidden_only_if_every_reading_role_hides_it(metadata):
    assert entity_policy(metadata, ["rep", "helper"], "deal").hidden == {"secret"}
    assert entity_policy(metadata, ["rep", "boss"], "deal").hidden == frozenset()
    assert entity_policy(metadata, ["rep", "auditor"], "deal").hidden == {"secret"}


def test_a_field_is_read_only_unless_some_writing_role_may_write_it(metadata):
    assert entity_policy(metadata, ["rep", "boss"], "deal").read_only == {"margin"}
    # auditor writes nothing, so it cannot lift the rep's read-only fields
    assert entity_policy(metadata, ["rep", "auditor"], "deal").read_only == {"margin", "note"}


def test_stage_moves_use_the_stage_grant_in_place_of_update(metadata):
    rep = entity_policy(metadata, ["rep"], "deal")
    assert rep.stage_reach("won") == NOTHING
    assert rep.stage_reach("open") == rep.reach("update")
    both = entity_policy(metadata, ["rep", "boss"], "deal")
    assert both.stage_reach("won") == Reach("team")  # boss may move to won with its update scope
    assert both.stage_reach("lost") == Reach("own", ("helper = $me",))


def test_no_grant_means_nothing_and_admin_means_everything(metadata):
    assert not entity_policy(metadata, ["nobody"], "deal").actions
    admin = entity_policy(metadata, [ADMIN_ROLE], "deal")
    assert all(admin.reach(a) == EVERYTHING for a in ("read", "create", "update", "delete", "transfer"))
    assert admin.hidden == frozenset() and admin.read_only == frozenset()


def test_role_matrix_lists_every_entity(metadata):
    matrix = role_matrix(metadata, "auditor")
    assert matrix["deal"].reach("export") == EVERYTHING and not matrix["deal"].reach("update").granted
