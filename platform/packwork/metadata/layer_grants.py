"""What a grant of the admin layer does beside the packs' grants, without a database: the layer
grant is one more grant of the role (`metadata.access`), so an action's scope is the widest any
grant gives and a field is hidden (read-only) only if every grant that reads (writes) the entity
says so. The studio's permission pages build the layer grant that gives what the administrator
chose, or say why it cannot: the layer only adds to what packs grant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from packwork.metadata.access import ACTIONS, EntityPolicy, entity_policy
from packwork.metadata.layer_edits import LAYER, LAYER_FILE
from packwork.metadata.model import Grant, Metadata

LAYER_SOURCE = f"{LAYER}/{LAYER_FILE}"  # where the layer's grants come from
FIELD_STATES = ("editable", "read_only", "hidden")
WRITES = ("update", "create")


def policy_with(metadata: Metadata, role: str, entity: str, layer: Mapping) -> EntityPolicy:
    """The role's policy of `entity` were `layer` (pack data; empty: none) the layer's grant."""
    grants = [g for g in metadata.grants
              if not (g.role == role and g.entity == entity and g.origin.file == LAYER_SOURCE)]
    if layer:
        grants.append(Grant(role, entity, tuple((a, layer[a]) for a in ACTIONS if a in layer), layer.get("rows"),
                            tuple((layer.get("fields") or {}).items()), tuple((layer.get("stages") or {}).items())))
    return entity_policy(replace(metadata, grants=tuple(grants)), [role], entity)


def widened(layer: Mapping, packs: EntityPolicy, chosen: Mapping[str, str]) -> dict:
    """The layer grant giving the `chosen` scope per action, none narrower than the packs'. A
    scope the packs give already is dropped, unless the grant had it (its field list counts)."""
    grant = dict(layer)
    for action in ACTIONS:
        want = chosen[action]
        if want != packs.reach(action).scope or (action in layer and want != "none"):
            grant[action] = want
        else:
            grant.pop(action, None)
    return kept_stages(grant, packs)


def kept_stages(grant: dict, packs: EntityPolicy) -> dict:
    """The grant keeping the packs' stage restrictions (an update grant moves into every stage)."""
    if grant.get("update", "none") != "none" and packs.stages:
        grant["stages"] = {s: r.scope for s, r in packs.stages.items()} | dict(grant.get("stages") or {})
    return {key: grant[key] for key in (*ACTIONS, "rows", "fields", "stages") if key in grant}


def field_state(policy: EntityPolicy, name: str) -> str:
    writes = any(policy.reach(a).granted for a in WRITES)
    return "hidden" if name in policy.hidden else "read_only" if name in policy.read_only or not writes else "editable"


def field_grant(metadata: Metadata, role: str, entity: str, layer: Mapping,
                desired: Mapping[str, str]) -> tuple[dict, dict[str, list[str]]]:
    """The layer grant giving each field its `desired` state (first try: the grant without field
    restrictions; then with them, repeating the packs' read and write scopes so that they count),
    or why some field cannot have it."""
    others = {f: s for f, s in (layer.get("fields") or {}).items() if f not in desired}
    restricted = others | {f: s for f, s in desired.items() if s != "editable"}
    bare = {k: v for k, v in layer.items() if k != "fields"} | ({"fields": others} if others else {})
    packs = policy_with(metadata, role, entity, {})
    counted = dict(bare) | ({"fields": restricted} if restricted else {})
    if counted.get("read", "none") == "none" and packs.reach("read").granted:
        counted["read"] = packs.reach("read").scope
    if all(counted.get(a, "none") == "none" for a in WRITES):
        counted |= next(({a: packs.reach(a).scope} for a in WRITES if packs.reach(a).granted), {})
    for grant in (bare, kept_stages(counted, packs)):
        policy = policy_with(metadata, role, entity, grant)
        wrong = {f: s for f, s in desired.items() if field_state(policy, f) != s}
        if not wrong:
            return grant, {}
    return grant, {f"field.{f}": [WHY_NOT[want].format(role=role, entity=entity)] for f, want in wrong.items()}


WHY_NOT = {  # why a field cannot have the state chosen for a role
    "hidden": "the packs let {role} see this field, and the studio can only add to what packs grant: it cannot "
              "hide it for {role} here (hiding a field for everyone is on the field's page)",
    "read_only": "the packs let {role} edit this field, and the studio can only add to what packs grant: it "
                 "cannot make it read-only for {role} here",
    "editable": "{role} may not create or update {entity}: grant that in the permission matrix first",
}
