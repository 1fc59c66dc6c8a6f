"""Semantic checks over resolved metadata. Each returns problems and never raises.

Shape was checked by the JSON Schema; here we check meaning: names that are SQL-safe, every
name that refers to something refers to something that exists, formulas and rule code that
parse, pipelines that make sense.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from packwork.metadata.fieldtypes import FieldTypes
from packwork.metadata.filters import FilterError, parse_filter, paths, settings_used
from packwork.metadata.model import Entity, Field, Metadata, Origin
from packwork.metadata.access import ADMIN_ROLE
from packwork.metadata.names import RESERVED_ENTITY_NAMES, SYSTEM_COLUMNS, field_name_problem, \
    identifier_problem
from packwork.metadata.problems import Problem, json_path

# Functions a formula may call; `packwork.rules` implements each (a contract test checks it).
FORMULA_FUNCTIONS = frozenset({
    "abs", "round", "min", "max", "len", "upper", "lower", "concat", "coalesce", "today", "now",
    "days_between", "add_days", "year", "month",
})
TEXT_TYPES = frozenset({"text", "long_text", "email", "phone", "url"})


def _p(code: str, origin: Origin, message: str, *subpath) -> Problem:
    return Problem(code, origin.file, origin.line_of(subpath), json_path(origin.path + subpath), message)


def check_metadata(metadata: Metadata, field_types: FieldTypes) -> list[Problem]:
    problems: list[Problem] = []
    problems += _check_table_names(metadata)
    for entity in metadata.entities.values():
        problems += _check_entity(entity, metadata, field_types)
    problems += _check_relations(metadata, field_types)
    problems += _check_access(metadata)
    problems += _check_rules(metadata)
    from packwork.metadata import checks_actions  # it builds on this module's checks
    problems += checks_actions.check_actions_and_settings(metadata, field_types)
    from packwork.metadata import checks_migrations  # it builds on this module's checks too
    problems += checks_migrations.check_migrations(metadata)
    return problems


def _check_table_names(metadata: Metadata) -> Iterator[Problem]:
    for kind, items in (("entity", metadata.entities), ("relation", metadata.relations),
                        ("dictionary", metadata.dictionaries), ("role", metadata.roles)):
        for item in items.values():
            reason = identifier_problem(item.name)
            if reason is None and kind == "entity" and item.name in RESERVED_ENTITY_NAMES:
                reason = f"{item.name!r} is a path of the API (/api/v1/{item.name}); choose another name"
            if reason is None and kind == "role" and item.name == ADMIN_ROLE:
                reason = f"{item.name!r} is the platform's administrator role; choose another name"
            if reason:
                yield _p("PACK-E030", item.origin, reason)
    for relation in metadata.relations.values():
        if relation.name in metadata.entities:
            yield _p("PACK-E023", relation.origin,
                     f"relation {relation.name!r} has the name of an entity; each needs its own table")


def _check_entity(entity: Entity, metadata: Metadata, field_types: FieldTypes) -> Iterator[Problem]:
    yield from _check_fields(entity, entity.fields, metadata, field_types)
    names = {f.name for f in entity.fields}
    yield from _check_field_refs(entity, metadata, names)
    yield from _check_pipeline(entity, names)
    yield from _check_formulas(entity)


def _owner_of(column: str, columns: dict[str, str]) -> str:
    owner = columns[column]
    return f"{owner!r}" if owner == column else f"the {column!r} column of field {owner!r}"


def _check_fields(owner, fields, metadata: Metadata, field_types: FieldTypes) -> Iterator[Problem]:
    columns: dict[str, str] = {}
    for field in fields:
        reason = field_name_problem(field.name)
        if reason:
            yield _p("PACK-E030", field.origin, reason)
            continue
        for column, _ in field_types[field.type].columns(field) if field.type != "computed" or field.result else ():
            if column in columns or column in SYSTEM_COLUMNS:
                yield _p("PACK-E031", field.origin,
                         f"column {column!r} of field {field.name!r} clashes with "
                         f"{'a system column' if column in SYSTEM_COLUMNS else _owner_of(column, columns)}")
            columns.setdefault(column, field.name)
        yield from _check_field(owner, field, metadata, field_types)


def _check_field(owner, field: Field, metadata: Metadata, field_types: FieldTypes) -> Iterator[Problem]:
    origin = field.origin
    if field.type == "reference":
        if not field.target:
            yield _p("PACK-E032", origin, "a reference field needs 'entity': the entity it points at")
        elif field.target not in metadata.entities:
            yield _p("PACK-E033", origin, f"references entity {field.target!r}, which no pack declares",
                     "entity")
    if field_types[field.type].has_choices and field.type != "stage":
        if field.dictionary and field.dictionary not in metadata.dictionaries:
            yield _p("PACK-E033", origin, f"dictionary {field.dictionary!r} is not declared", "dictionary")
        elif not field.dictionary and not field.choices:
            yield _p("PACK-E032", origin, f"a {field.type} field needs 'options' or a 'dictionary'")
    if field.type == "stage" and (not isinstance(owner, Entity) or owner.pipeline is None
                                  or owner.pipeline.field != field.name):
        yield _p("PACK-E034", origin, "a stage field must be the 'field' of its entity's pipeline")
    if field.type == "computed" and (not field.formula or not field.result):
        yield _p("PACK-E032", origin, "a computed field needs a 'formula' and a 'result' type")
    if field.unique and field.type in ("long_text", "multi_choice", "computed"):
        yield _p("PACK-E035", origin, f"a {field.type} field cannot be unique", "unique")
    yield from _check_default(field)


def _check_default(field: Field) -> Iterator[Problem]:
    value = field.default
    if value is None:
        return
    expected = {"integer": int, "decimal": (int, float), "money": (int, float), "percent": (int, float),
                "boolean": bool}.get(field.type)
    if expected and (not isinstance(value, expected) or (expected is not bool and isinstance(value, bool))):
        yield _p("PACK-E036", field.origin, f"default {value!r} is not a valid {field.type}", "default")
    elif field.type in ("choice", "stage") and field.choices and value not in {c.value for c in field.choices}:
        yield _p("PACK-E036", field.origin, f"default {value!r} is not one of the field's options", "default")
    elif field.type in ("reference", "user", "computed", "multi_choice") and not isinstance(value, list):
        if field.type != "multi_choice":
            yield _p("PACK-E036", field.origin, f"a {field.type} field cannot have a default", "default")


def _check_timeline(entity: Entity) -> Iterator[Problem]:
    if entity.timeline is None:
        return
    for key, name, types in (("date", entity.timeline.date, ("date", "datetime")),
                             ("done", entity.timeline.done, ("boolean",))):
        field = entity.field(name) if name else None
        if name and field is None:
            yield _p("PACK-E037", entity.origin, f"timeline {key} {name!r} is not a field of {entity.name!r}",
                     "timeline", key)
        elif field is not None and field.value_type not in types:
            yield _p("PACK-E044", entity.origin, f"timeline {key} {name!r} must be a {' or '.join(types)} field, "
                     f"not {field.value_type}", "timeline", key)


def _check_field_refs(entity: Entity, metadata: Metadata, names: set[str]) -> Iterator[Problem]:
    origin = entity.origin
    if entity.title_field and entity.title_field not in names:
        yield _p("PACK-E037", origin, f"title_field {entity.title_field!r} is not a field of {entity.name!r}",
                 "title_field")
    for index, name in enumerate(entity.search_fields):
        if name not in names:
            yield _p("PACK-E037", origin, f"search field {name!r} is not a field of {entity.name!r}",
                     "search_fields", index)
    yield from _check_timeline(entity)
    if entity.group and metadata.groups and entity.group not in {g.name for g in metadata.groups}:
        yield _p("PACK-E033", origin, f"group {entity.group!r} is not declared", "group")
    record_types = {r.name for r in entity.record_types}
    for layout in entity.layouts:
        if layout.record_type and layout.record_type not in record_types:
            yield _p("PACK-E037", layout.origin, f"record type {layout.record_type!r} is not declared",
                     "record_type")
        seen: set[str] = set()
        for tab in layout.tabs:
            for section in tab.sections:
                path = ("tabs", tab.name) if _declared_tabs(layout.origin) else ()
                for index, name in enumerate(section.fields):
                    where = path + ("sections", section.name, "fields", index)
                    if name not in names:
                        yield _p("PACK-E037", layout.origin,
                                 f"layout {layout.name!r} places {name!r}, which is not a field of "
                                 f"{entity.name!r}", *where)
                    elif name in seen:
                        yield _p("PACK-E038", layout.origin, f"{name!r} is placed twice in layout {layout.name!r}",
                                 *where)
                    seen.add(name)
    listable = names | set(SYSTEM_COLUMNS)
    for view in entity.list_views:
        if view.filter:
            yield from _check_filter(view.filter, entity, metadata, view.origin, "filter")
        for index, name in enumerate(view.columns):
            if name not in listable:
                yield _p("PACK-E037", view.origin, f"list view column {name!r} is not a field of {entity.name!r}",
                         "columns", index)
        for index, key in enumerate(view.sort):
            if key.field not in listable:
                yield _p("PACK-E037", view.origin, f"sort field {key.field!r} is not a field of {entity.name!r}",
                         "sort", index)
    for kanban in entity.kanbans:
        group_by = entity.field(kanban.group_by)
        if group_by is None or group_by.type not in ("choice", "stage"):
            yield _p("PACK-E037", kanban.origin, f"kanban groups by {kanban.group_by!r}, which is not a choice "
                     f"or stage field of {entity.name!r}", "group_by")
        total = entity.field(kanban.sum_field) if kanban.sum_field else None
        if kanban.sum_field and (total is None or total.type not in ("integer", "decimal", "money", "percent")):
            yield _p("PACK-E037", kanban.origin, f"kanban sums {kanban.sum_field!r}, which is not a number field",
                     "sum")
        for index, name in enumerate(kanban.card_fields):
            if name not in names:
                yield _p("PACK-E037", kanban.origin, f"card field {name!r} is not a field of {entity.name!r}",
                         "card_fields", index)


def _declared_tabs(origin: Origin) -> bool:
    return bool(origin.lines) and origin.path + ("tabs",) in origin.lines


def _check_pipeline(entity: Entity, names: set[str]) -> Iterator[Problem]:
    pipeline = entity.pipeline
    if pipeline is None:
        return
    field = entity.field(pipeline.field)
    if field is None or field.type != "stage":
        yield _p("PACK-E034", entity.origin, f"the pipeline's field {pipeline.field!r} must be a field of "
                 f"{entity.name!r} with type 'stage'", "pipeline", "field")
    if not any(s.outcome == "open" for s in pipeline.stages):
        yield _p("PACK-E034", entity.origin, "a pipeline needs at least one open stage", "pipeline", "stages")
    for stage in pipeline.stages:
        if stage.outcome == "won" and stage.probability != 100 or stage.outcome == "lost" and stage.probability:
            yield _p("PACK-E034", stage.origin, f"a {stage.outcome} stage must have probability "
                     f"{100 if stage.outcome == 'won' else 0}, not {stage.probability}", "probability")
        for index, name in enumerate(stage.required_fields):
            if name not in names:
                yield _p("PACK-E037", stage.origin, f"required field {name!r} is not a field of {entity.name!r}",
                         "required_fields", index)


def formula_names(formula: str) -> tuple[set[str], set[str]]:
    """(field names, function names) a formula uses; raises SyntaxError if it does not parse."""
    tree = ast.parse(formula, mode="eval")
    functions = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - functions
    return names, functions


def _check_formulas(entity: Entity) -> Iterator[Problem]:
    names = {f.name for f in entity.fields}
    graph: dict[str, set[str]] = {}
    for field in entity.fields:
        if field.type != "computed" or not field.formula:
            continue
        try:
            used, functions = formula_names(field.formula)
        except SyntaxError as exc:
            yield _p("PACK-E040", field.origin, f"formula does not parse: {exc.msg}", "formula")
            continue
        for name in sorted(used - names - {"True", "False", "None"}):
            yield _p("PACK-E041", field.origin, f"formula names {name!r}, which is not a field of "
                     f"{entity.name!r}", "formula")
        for name in sorted(functions - FORMULA_FUNCTIONS):
            yield _p("PACK-E041", field.origin, f"formula calls {name!r}, which is not a formula function "
                     f"({', '.join(sorted(FORMULA_FUNCTIONS))})", "formula")
        graph[field.name] = used & names
    yield from _formula_cycles(entity, graph)


def _formula_cycles(entity: Entity, graph: dict[str, set[str]]) -> Iterator[Problem]:
    state: dict[str, str] = {}
    reported: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> Iterator[Problem]:
        if state.get(name) == "visiting":
            cycle = chain[chain.index(name):] + (name,)
            if name not in reported:
                reported.update(cycle)
                yield _p("PACK-E042", entity.field(name).origin,
                         "computed fields depend on each other in a cycle: " + " -> ".join(cycle), "formula")
            return
        if state.get(name) == "done" or name not in graph:
            return
        state[name] = "visiting"
        for dep in sorted(graph[name]):
            yield from visit(dep, chain + (name,))
        state[name] = "done"

    for name in graph:
        yield from visit(name, ())


def _check_relations(metadata: Metadata, field_types: FieldTypes) -> Iterator[Problem]:
    for relation in metadata.relations.values():
        for key, entity in (("from", relation.source), ("to", relation.target)):
            if entity not in metadata.entities:
                yield _p("PACK-E033", relation.origin, f"relates entity {entity!r}, which no pack declares", key)
        yield from _check_fields(relation, relation.fields, metadata, field_types)
        for field in relation.fields:
            if field.name in ("source_id", "target_id"):
                yield _p("PACK-E031", field.origin, f"{field.name!r} is a column every relation already has")


def _check_access(metadata: Metadata) -> Iterator[Problem]:
    for grant in metadata.grants:
        if grant.role not in metadata.roles:
            role_origin = Origin(grant.origin.file, grant.origin.path[:-1], grant.origin.lines)
            yield _p("PACK-E033", role_origin, f"role {grant.role!r} is not declared")
            continue
        entity = metadata.entities.get(grant.entity)
        if entity is None:
            yield _p("PACK-E033", grant.origin, f"grants access to entity {grant.entity!r}, which no pack declares")
            continue
        if grant.row_filter:
            yield from _check_filter(grant.row_filter, entity, metadata, grant.origin, "rows")
        for name, _ in grant.field_access:
            if entity.field(name) is None:
                yield _p("PACK-E037", grant.origin, f"{name!r} is not a field of {entity.name!r}", "fields", name)
        stages = {s.name for s in entity.pipeline.stages} if entity.pipeline else set()
        for name, _ in grant.stage_scopes:
            if name not in stages:
                yield _p("PACK-E037", grant.origin, f"{name!r} is not a stage of {entity.name!r}", "stages", name)


def _check_rules(metadata: Metadata) -> Iterator[Problem]:
    for rule in metadata.rules:
        entity = metadata.entities.get(rule.entity)
        if entity is None:
            yield _p("PACK-E033", rule.origin, f"rule for entity {rule.entity!r}, which no pack declares", "entity")
            continue
        try:
            ast.parse(rule.code, mode="exec")
        except SyntaxError as exc:
            yield Problem("PACK-E040", rule.origin.file, code_line(rule.origin, exc.lineno or 1),
                          json_path(rule.origin.path + ("code",)), f"rule code does not parse: {exc.msg}")
        if rule.filter:
            yield from _check_filter(rule.filter, entity, metadata, rule.origin, "filter")
        yield from _check_rule_kind(rule, entity)


def _check_rule_kind(rule, entity: Entity) -> Iterator[Problem]:
    if rule.kind == "stage_gate":
        stages = {s.name for s in entity.pipeline.stages} if entity.pipeline else set()
        if rule.stage not in stages:
            known = ", ".join(s.name for s in entity.pipeline.stages) if entity.pipeline else ""
            yield _p("PACK-E037", rule.origin,
                     f"stage gate for stage {rule.stage!r}, which is not a stage of {entity.name!r}"
                     + (f" (stages: {known})" if known else f"; {entity.name!r} has no pipeline"), "stage")
    if rule.kind == "scheduled" and not rule.every:
        yield _p("PACK-E032", rule.origin, "a scheduled rule needs 'every' (for example 30m, 6h, 1d)")
    if rule.kind == "trigger" and not rule.events:
        yield _p("PACK-E032", rule.origin, "a trigger needs 'on': create, update, delete or stage_change")


def code_line(origin: Origin, code_lineno: int) -> int:
    """The file line of line `code_lineno` of a rule's code (a block scalar starts on the next line)."""
    key_line = origin.line_of(("code",))
    return key_line + code_lineno


def filter_path_problem(path: tuple[str, ...], entity: Entity, metadata: Metadata) -> str | None:
    """Why a dotted filter path does not name a field (through references), or None."""
    current = entity
    for index, name in enumerate(path):
        field = current.field(name)
        if field is None and name not in SYSTEM_COLUMNS:
            return f"{name!r} is not a field of {current.name!r}"
        if index < len(path) - 1:
            if field is None or field.type != "reference" or field.target not in metadata.entities:
                return f"{name!r} is not a reference, so '.{path[index + 1]}' cannot follow it"
            current = metadata.entities[field.target]
    return None


def _check_filter(text: str, entity: Entity, metadata: Metadata, origin: Origin, key: str) -> Iterator[Problem]:
    try:
        tree = parse_filter(text)
    except FilterError as exc:
        yield _p("PACK-E043", origin, f"filter does not parse: {exc}", key)
        return
    for path, position in paths(tree):
        reason = filter_path_problem(path, entity, metadata)
        if reason:
            yield _p("PACK-E043", origin, f"filter at position {position}: {reason}", key)
    for name, position, counts in settings_used(tree):
        setting = metadata.settings.get(name)
        if setting is None:
            yield _p("PACK-E047", origin, f"filter at position {position}: there is no setting {name!r}", key)
        elif counts and setting.type != "integer":
            yield _p("PACK-E047", origin, f"filter at position {position}: setting {name!r} counts an offset, "
                     f"so it must be an integer setting, not {setting.type}", key)
