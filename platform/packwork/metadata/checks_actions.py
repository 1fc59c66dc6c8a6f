"""Checks of what rule actions and pack settings declare; the rest of the semantic checks are in
`checks`, whose helpers these build on. Like them, each returns problems and never raises.

- a setting's default must be a value of its type (PACK-E046);
- rule code may read only declared settings (`settings.NAME`) and, in an action, only declared
  inputs (`inputs.NAME`) (PACK-E047): a misspelt name would otherwise fail on every run;
- an action's condition is a filter (PACK-E043), its roles are declared (PACK-E033), the fields
  it `writes` are fields the engine writes (PACK-E037, PACK-E045), and its inputs are fields a
  person can fill in (PACK-E045, and every field check).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from packwork.metadata import checks
from packwork.metadata.fieldtypes import FieldTypes
from packwork.metadata.model import Entity, Metadata, Rule, Setting
from packwork.metadata.problems import Problem, json_path

NOT_INPUT_TYPES = frozenset({"computed", "stage"})  # nothing a person types in
_DEFAULT_TYPES = {"integer": int, "decimal": (int, float), "text": str, "boolean": bool, "choice": str}


def check_actions_and_settings(metadata: Metadata, field_types: FieldTypes) -> list[Problem]:
    problems: list[Problem] = []
    for setting in metadata.settings.values():
        problems += _check_setting(setting)
    for rule in metadata.rules:
        entity = metadata.entities.get(rule.entity)
        if entity is None:
            continue  # reported by checks._check_rules
        problems += _code_names(rule, metadata)
        if rule.action is not None:
            problems += _check_action(rule, entity, metadata, field_types)
    return problems


def _check_setting(setting: Setting) -> Iterator[Problem]:
    origin, value = setting.origin, setting.default
    if setting.type == "choice" and not setting.choices:
        yield checks._p("PACK-E032", origin, "a choice setting needs 'options'")
    elif setting.type != "choice" and setting.choices:
        yield checks._p("PACK-E012", origin, "'options' applies to choice settings only", "options")
    expected = _DEFAULT_TYPES[setting.type]
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        yield checks._p("PACK-E046", origin, f"default {value!r} is not a valid {setting.type}", "default")
    elif setting.type == "choice" and setting.choices and value not in {c.value for c in setting.choices}:
        yield checks._p("PACK-E046", origin, f"default {value!r} is not one of the setting's options", "default")


def _code_names(rule: Rule, metadata: Metadata) -> Iterator[Problem]:
    """`settings.NAME` and `inputs.NAME` in rule code name something declared."""
    try:
        tree = ast.parse(rule.code, mode="exec")
    except SyntaxError:
        return  # reported by checks._check_rules
    inputs = {f.name for f in rule.action.inputs} if rule.action is not None else None
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        line = checks.code_line(rule.origin, node.lineno)
        where = json_path(rule.origin.path + ("code",))
        if node.value.id == "settings" and node.attr not in metadata.settings:
            known = ", ".join(sorted(metadata.settings)) or "none are declared"
            yield Problem("PACK-E047", rule.origin.file, line, where,
                          f"rule code reads setting {node.attr!r}, which no pack declares (settings: {known})")
        elif node.value.id == "inputs" and inputs is None:
            yield Problem("PACK-E047", rule.origin.file, line, where,
                          "rule code reads `inputs`, which only actions are given")
        elif node.value.id == "inputs" and node.attr not in inputs:
            yield Problem("PACK-E047", rule.origin.file, line, where,
                          f"rule code reads input {node.attr!r}, which the action does not declare")


def _check_action(rule: Rule, entity: Entity, metadata: Metadata, field_types: FieldTypes) -> Iterator[Problem]:
    action, origin = rule.action, rule.origin
    if action.condition:
        yield from checks._check_filter(action.condition, entity, metadata, origin, "condition")
    for index, role in enumerate(action.roles):
        if role not in metadata.roles:
            yield checks._p("PACK-E033", origin, f"role {role!r} is not declared", "roles", index)
    for index, name in enumerate(action.writes):
        field = entity.field(name)
        if name == "owner_id":
            continue
        if field is None:
            yield checks._p("PACK-E037", origin, f"writes {name!r}, which is not a field of {entity.name!r}",
                            "writes", index)
        elif field.type == "computed" or field.read_only:
            why = "computed" if field.type == "computed" else "read_only in the pack, so nothing writes it"
            yield checks._p("PACK-E045", origin, f"writes {name!r}, which is {why}", "writes", index)
    fillable = []
    for field in action.inputs:
        if field.type in NOT_INPUT_TYPES:
            yield checks._p("PACK-E045", field.origin, f"an input cannot be a {field.type} field", "type")
        else:
            fillable.append(field)
    yield from checks._check_fields(rule, tuple(fillable), metadata, field_types)
