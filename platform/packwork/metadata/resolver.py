"""Packs -> one immutable Metadata: dependency order, extensions, choices, checks, version hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from types import MappingProxyType

from packwork.errors import PackError
from packwork.metadata.build import Extension, PackContent, build_pack
from packwork.metadata.checks import check_metadata
from packwork.metadata.conflicts import ExtensionLedger
from packwork.metadata.report_checks import check_reports
from packwork.metadata.fieldtypes import FieldTypes, builtin_field_types
from packwork.metadata.loader import MANIFEST, PackSource, parse_document
from packwork.metadata.model import (
    Choice, Dictionary, Entity, Field, Label, Metadata, Origin,
)
from packwork.metadata.problems import Problem, json_path
from packwork.metadata.schema import schema_problems


def read_pack(source: PackSource, field_types: FieldTypes) -> tuple[PackContent | None, list[Problem]]:
    """Parse, schema-check and build one pack's files."""
    documents, problems = [], []
    for file in sorted(source.files, key=lambda f: (f.path != MANIFEST, f.path)):
        doc, found = parse_document(source.file_name(file.path), file.text)
        problems += found
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem("PACK-E010", (), "a pack file must be a mapping at the top"))
            continue
        found = schema_problems(doc)
        problems += found
        if not found:
            documents.append(doc)
    if problems:
        return None, problems
    return build_pack(documents, field_types)


def resolve_sources(sources: Iterable[PackSource], field_types: FieldTypes | None = None) -> Metadata:
    """Resolve pack sources into Metadata, or raise PackError with every problem found."""
    field_types = field_types or builtin_field_types()
    contents, problems = [], []
    for source in sources:
        content, found = read_pack(source, field_types)
        problems += found
        if content is not None:
            contents.append(content)
    if problems:
        raise PackError(problems)
    metadata, problems = resolve(contents, field_types)
    if problems:
        raise PackError(problems)
    return metadata


def resolve(packs: list[PackContent], field_types: FieldTypes) -> tuple[Metadata | None, list[Problem]]:
    ordered, problems = order_packs(packs)
    if problems:
        return None, problems
    merged = _Merge(ordered)
    if merged.problems:
        return None, merged.problems
    metadata = merged.metadata()
    problems = check_metadata(metadata, field_types) + check_reports(metadata)
    if problems:
        return None, problems
    return dataclasses.replace(metadata, version=version_hash(metadata)), []


def order_packs(packs: list[PackContent]) -> tuple[list[PackContent], list[Problem]]:
    """Dependencies first; a missing dependency or a cycle is a problem at `depends`."""
    by_name: dict[str, PackContent] = {}
    problems: list[Problem] = []
    for pack in packs:
        if pack.info.name in by_name:
            problems.append(_problem("PACK-E020", pack.origin.at("name"),
                                     f"pack {pack.info.name!r} is given twice "
                                     f"(also {by_name[pack.info.name].origin.file})"))
        by_name[pack.info.name] = pack
    ordered: list[PackContent] = []
    state: dict[str, str] = {}

    def visit(pack: PackContent, chain: tuple[str, ...]) -> None:
        name = pack.info.name
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            problems.append(_problem("PACK-E021", pack.origin.at("depends"),
                                     "dependency cycle: " + " -> ".join(chain + (name,))))
            return
        state[name] = "visiting"
        for index, dep in enumerate(pack.info.depends):
            if dep not in by_name:
                problems.append(_problem("PACK-E022", pack.origin.at("depends", index),
                                         f"depends on pack {dep!r}, which is neither installed nor given"))
            else:
                visit(by_name[dep], chain + (name,))
        state[name] = "done"
        ordered.append(pack)

    for pack in packs:
        visit(pack, ())
    return ordered, problems


def dependency_closure(packs: list[PackContent]) -> dict[str, set[str]]:
    closure: dict[str, set[str]] = {}
    for pack in packs:  # already in dependency order
        closure[pack.info.name] = {pack.info.name}.union(*(closure.get(d, set()) for d in pack.info.depends))
    return closure


def _problem(code: str, origin: Origin, message: str) -> Problem:
    return Problem(code, origin.file, origin.line, json_path(origin.path), message)


def _where(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}"


class _Merge:
    """Accumulates packs in dependency order, applying each pack's extensions as it goes."""

    def __init__(self, packs: list[PackContent]):
        self.problems: list[Problem] = []
        self.packs = packs
        self.closure = dependency_closure(packs)
        self.ledger = ExtensionLedger(self.closure, self.problems)
        self.entities: dict[str, Entity] = {}
        self.named: dict[str, dict] = {k: {} for k in ("dictionaries", "relations", "roles", "groups", "settings",
                                                       "reports", "dashboards", "migrations")}
        self.grants, self.rules = [], []
        self.dictionary_packs: dict[str, str] = {}  # dictionary -> the pack that declares it
        for pack in packs:
            self._add_pack(pack)

    def _add_unique(self, table: dict, kind: str, item) -> None:
        if item.name in table:
            first = _where(table[item.name].origin)
            self.problems.append(_problem("PACK-E023", item.origin,
                                          f"{kind} {item.name!r} is declared twice (first at {first})"))
        else:
            table[item.name] = item

    def _add_pack(self, pack: PackContent) -> None:
        for entity in pack.entities:
            self._add_unique(self.entities, "entity", entity)
            for field in entity.fields:
                self.ledger.own_field(entity.name, field.name, pack.info.name, field.origin)
        for kind, noun, items in (("dictionaries", "dictionary", pack.dictionaries),
                                  ("relations", "relation", pack.relations),
                                  ("roles", "role", pack.roles), ("groups", "group", pack.groups),
                                  ("settings", "setting", pack.settings),
                                  ("reports", "report", pack.reports), ("dashboards", "dashboard", pack.dashboards),
                                  ("migrations", "migration", pack.migrations)):
            for item in items:
                self._add_unique(self.named[kind], noun, item)
        for name in (d.name for d in pack.dictionaries):
            self.dictionary_packs.setdefault(name, pack.info.name)
        for added in pack.dictionary_options:
            self._add_options(pack.info.name, added)
        for extension in pack.extensions:
            self._extend(extension)
        self.grants += pack.grants
        self._add_rules(pack.rules)

    def _add_options(self, pack: str, added: Dictionary) -> None:
        """More options for a dictionary a pack `pack` depends on declares, after its own."""
        dictionary = self.named["dictionaries"].get(added.name)
        if dictionary is None or self.dictionary_packs.get(added.name) not in self.closure[pack]:
            self.problems.append(_problem("PACK-E024", added.origin, f"extends dictionary {added.name!r}, which no "
                                          f"pack that {pack!r} depends on declares"))
            return
        values = {c.value for c in dictionary.choices}
        for index, choice in enumerate(added.choices):
            if choice.value in values:
                self.problems.append(_problem("PACK-E025", added.origin.at("add_options", index),
                                              f"dictionary {added.name!r} already has the option {choice.value!r}"))
        kept = tuple(c for c in added.choices if c.value not in values)
        self.named["dictionaries"][added.name] = dataclasses.replace(dictionary, choices=dictionary.choices + kept)

    def _add_rules(self, rules) -> None:
        """An entity's actions and rule tests find a rule by its name: one name, one rule."""
        seen = {(rule.entity, rule.name): rule for rule in self.rules}
        for rule in rules:
            first = seen.get((rule.entity, rule.name))
            if first is not None:
                self.problems.append(_problem("PACK-E023", rule.origin, f"rule {rule.name!r} of {rule.entity!r} is "
                                              f"declared twice (first at {_where(first.origin)})"))
                continue
            seen[(rule.entity, rule.name)] = rule
            self.rules.append(rule)

    def _extend(self, ext: Extension) -> None:
        entity = self.entities.get(ext.entity)
        if entity is None or entity.pack not in self.closure[ext.pack]:
            self.problems.append(_problem(
                "PACK-E024", ext.origin,
                f"extends entity {ext.entity!r}, which no pack that {ext.pack!r} depends on declares"))
            return
        fields = {f.name: f for f in entity.fields}
        for new in ext.add_fields:
            if new.name in fields:
                self.problems.append(self._field_exists(ext, new, fields[new.name]))
            self.ledger.own_field(ext.entity, new.name, ext.pack, new.origin)
            fields[new.name] = new
        for name, (change, origin) in ext.change_fields.items():
            if name not in fields:
                self.problems.append(_problem("PACK-E026", origin,
                                              f"{ext.entity!r} has no field {name!r} to change"))
                continue
            if self.ledger.sees_field(ext.entity, name, ext.pack, origin, "change"):
                for key, value in change.items():
                    self.ledger.claim(("field", ext.entity, name, key), f"{key!r} of field {ext.entity}.{name}",
                                      ext.pack, origin.at(key), value)
            fields[name] = _changed_field(fields[name], change)
        for name, origin in ext.hide_fields:
            if name not in fields:
                self.problems.append(_problem("PACK-E026", origin, f"{ext.entity!r} has no field {name!r} to hide"))
                continue
            if self.ledger.sees_field(ext.entity, name, ext.pack, origin, "hide"):
                self.ledger.claim(("field", ext.entity, name, "hidden"), f"'hidden' of field {ext.entity}.{name}",
                                  ext.pack, origin, True)
            fields[name] = dataclasses.replace(fields[name], hidden=True)
        self._claim_entity_changes(ext)
        self.entities[ext.entity] = self._extended_entity(entity, ext, tuple(fields.values()))

    def _field_exists(self, ext: Extension, new: Field, existing: Field) -> Problem:
        name = new.name
        owner = self.ledger.field_owner(ext.entity, name)
        if owner is not None and owner[0] not in self.closure[ext.pack]:
            return _problem("PACK-E025", new.origin,
                            f"field {name!r} is also added to {ext.entity!r} by pack {owner[0]!r} (at "
                            f"{_where(existing.origin)}), which {ext.pack!r} does not depend on; "
                            "two packs may not add the same field: rename one")
        return _problem("PACK-E025", new.origin,
                        f"field {name!r} already exists in {ext.entity!r} (declared at "
                        f"{_where(existing.origin)}); use change_fields to change it")

    def _claim_entity_changes(self, ext: Extension) -> None:
        """What this extension sets on the entity itself and its views, for the ledger."""
        for key in ("label", "plural", "icon", "group", "title_field", "search_fields", "hidden"):
            if getattr(ext, key) is not None:
                self.ledger.claim(("entity", ext.entity, key), f"{key!r} of entity {ext.entity!r}", ext.pack,
                                  ext.origin.at(key), getattr(ext, key))
        for key in ("layouts", "list_views", "kanbans"):
            for item in getattr(ext, key):
                self.ledger.claim(("view", ext.entity, key, item.name), f"{key[:-1]} {item.name!r} of "
                                  f"{ext.entity!r}", ext.pack, item.origin, item, show_values=False)

    def _extended_entity(self, entity: Entity, ext: Extension, fields: tuple[Field, ...]) -> Entity:
        changes: dict = {"fields": fields}
        for key in ("label", "plural", "icon", "group", "title_field", "search_fields", "hidden"):
            if getattr(ext, key) is not None:
                changes[key] = getattr(ext, key)
        changes["record_types"] = self._add_record_types(entity, ext)
        for key in ("layouts", "list_views", "kanbans"):
            replaced = {item.name: item for item in getattr(entity, key)}
            replaced.update({item.name: item for item in getattr(ext, key)})
            changes[key] = tuple(replaced.values())
        if ext.add_stages:
            changes["pipeline"] = self._add_stages(entity, ext)
        if ext.change_stages:
            changes["pipeline"] = self._change_stages(changes.get("pipeline", entity.pipeline), entity, ext)
        return dataclasses.replace(entity, **changes)

    def _add_record_types(self, entity: Entity, ext: Extension) -> tuple:
        types = {r.name: r for r in entity.record_types}
        for new in ext.add_record_types:
            if new.name in types:
                self.problems.append(_problem("PACK-E025", new.origin, f"record type {new.name!r} already exists "
                                              f"in {entity.name!r} (declared at {_where(types[new.name].origin)})"))
                continue
            types[new.name] = new
        return tuple(types.values())

    def _add_stages(self, entity: Entity, ext: Extension):
        if entity.pipeline is None:
            self.problems.append(_problem("PACK-E027", ext.origin.at("add_stages"),
                                          f"{entity.name!r} has no pipeline to add stages to"))
            return None
        stages = list(entity.pipeline.stages)
        for stage, after in ext.add_stages:
            names = [s.name for s in stages]
            if stage.name in names:
                first = _where(stages[names.index(stage.name)].origin)
                self.problems.append(_problem("PACK-E025", stage.origin,
                                              f"stage {stage.name!r} already exists (declared at {first})"))
                continue
            if after is not None and after not in names:
                self.problems.append(_problem("PACK-E026", stage.origin.at("after"),
                                              f"no stage {after!r} to add {stage.name!r} after"))
                continue
            stages.insert(names.index(after) + 1 if after else len(stages), stage)
        return dataclasses.replace(entity.pipeline, stages=tuple(stages))

    def _change_stages(self, pipeline, entity: Entity, ext: Extension):
        """A pack's stages relabelled, or given another probability, forecast or required fields."""
        if pipeline is None:
            self.problems.append(_problem("PACK-E027", ext.origin.at("change_stages"),
                                          f"{entity.name!r} has no pipeline whose stages could change"))
            return None
        stages = {s.name: s for s in pipeline.stages}
        for name, (change, origin) in ext.change_stages.items():
            if name not in stages:
                self.problems.append(_problem("PACK-E026", origin, f"{entity.name!r} has no stage {name!r} to change"))
                continue
            for key, value in change.items():
                self.ledger.claim(("stage", entity.name, name, key), f"{key!r} of stage {entity.name}.{name}",
                                  ext.pack, origin.at(key), value)
            values = {k: change[k] for k in ("probability", "forecast_category") if k in change}
            if "label" in change:
                values["label"] = Label.of(change["label"], name)
            if "required_fields" in change:
                values["required_fields"] = tuple(change["required_fields"])
            stages[name] = dataclasses.replace(stages[name], **values)
        return dataclasses.replace(pipeline, stages=tuple(stages.values()))

    def metadata(self) -> Metadata:
        dictionaries = self.named["dictionaries"]
        entities = {name: _with_choices(e, dictionaries) for name, e in self.entities.items()}
        relations = {name: dataclasses.replace(r, fields=tuple(_field_choices(f, dictionaries, None)
                                                                for f in r.fields))
                     for name, r in self.named["relations"].items()}
        groups = sorted(self.named["groups"].values(), key=lambda g: (g.order, g.name))
        return Metadata(
            packs=tuple(p.info for p in self.packs),
            entities=MappingProxyType(entities),
            dictionaries=MappingProxyType(dict(dictionaries)),
            relations=MappingProxyType(relations),
            roles=MappingProxyType(dict(self.named["roles"])),
            grants=tuple(self.grants), rules=tuple(self.rules), groups=tuple(groups),
            settings=MappingProxyType(dict(self.named["settings"])),
            reports=MappingProxyType(dict(self.named["reports"])),
            dashboards=MappingProxyType(dict(self.named["dashboards"])),
            migrations=tuple(self.named["migrations"].values()),
        )


_CHANGEABLE = ("required", "default", "hidden", "read_only", "indexed", "max_length")


def _changed_field(field: Field, change: dict) -> Field:
    values = {k: change[k] for k in _CHANGEABLE if k in change}
    if "label" in change:
        values["label"] = Label.of(change["label"], field.name)
    if "help" in change:
        values["help"] = Label.of(change["help"], "")
    if "options" in change:
        values["choices"] = tuple(Choice(o["value"], Label.of(o.get("label"), o["value"]), o.get("color"))
                                  for o in change["options"])
        values["dictionary"] = None
    return dataclasses.replace(field, **values)


def _field_choices(field: Field, dictionaries: dict, entity: Entity | None) -> Field:
    if field.dictionary and field.dictionary in dictionaries:
        return dataclasses.replace(field, choices=dictionaries[field.dictionary].choices)
    if field.type == "stage" and entity is not None and entity.pipeline and entity.pipeline.field == field.name:
        return dataclasses.replace(field, choices=tuple(Choice(s.name, s.label) for s in entity.pipeline.stages))
    return field


def _with_choices(entity: Entity, dictionaries: dict) -> Entity:
    return dataclasses.replace(entity, fields=tuple(_field_choices(f, dictionaries, entity) for f in entity.fields))


def canonical(value: object) -> object:
    """Plain JSON-able data for hashing and storing: origins and the version left out."""
    if dataclasses.is_dataclass(value):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.metadata.get("hash", True)}
    if isinstance(value, (dict, MappingProxyType)):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def version_hash(metadata: Metadata) -> str:
    text = json.dumps(canonical(metadata), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
