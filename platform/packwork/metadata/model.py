"""The frozen metadata model. Built once from packs by the resolver; read-only afterwards.

`Origin` (file and line) travels with each object so later checks and runtime errors can
point back at the pack, but it is excluded from equality and from the version hash: the same
declarations from different files are the same metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a declaration came from: its file, JSON path, and the file's line table."""

    file: str = ""
    path: tuple = ()
    lines: Mapping[tuple, int] | None = field(default=None, repr=False)

    @property
    def line(self) -> int:
        return self.line_of(())

    def line_of(self, subpath: tuple) -> int:
        path = self.path + tuple(subpath)
        while path and (self.lines is None or path not in self.lines):
            path = path[:-1]
        return self.lines.get(path, 1) if self.lines else 1

    def at(self, *subpath) -> "Origin":
        return Origin(self.file, self.path + subpath, self.lines)


def _origin() -> Origin:
    return field(default=Origin(), compare=False, metadata={"hash": False})


@dataclass(frozen=True, slots=True)
class Label:
    en: str
    zh: str

    def get(self, language: str) -> str:
        return self.zh if language == "zh" else self.en

    @classmethod
    def of(cls, value: object, fallback: str) -> "Label":
        """A label from pack data: a string (both languages) or `{en, zh}`."""
        if isinstance(value, str):
            return cls(value, value)
        if isinstance(value, Mapping):
            en = value.get("en") or value.get("zh") or fallback
            return cls(en, value.get("zh") or en)
        text = fallback.replace("_", " ").capitalize()
        return cls(text, text)


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: Label
    color: str | None = None


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    label: Label
    help: Label | None = None
    required: bool = False
    unique: bool = False
    default: object = None
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    hidden: bool = False
    read_only: bool = False
    indexed: bool = False
    choices: tuple[Choice, ...] = ()  # resolved from `options`, a dictionary or a pipeline
    dictionary: str | None = None
    target: str | None = None  # entity a reference points at
    on_delete: str = "set_null"
    currency: str | None = None  # default currency of a money field
    formula: str | None = None
    result: str | None = None  # result type of a computed field
    store: bool = False
    origin: Origin = _origin()

    @property
    def value_type(self) -> str:
        """The type of the field's values: a computed field's result type, else its own."""
        return self.result if self.type == "computed" else self.type

    @property
    def has_column(self) -> bool:
        """False only for a computed field evaluated when read (without `store`)."""
        return self.type != "computed" or self.store


@dataclass(frozen=True, slots=True)
class RecordType:
    name: str
    label: Label
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    label: Label
    columns: int
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tab:
    name: str
    label: Label
    sections: tuple[Section, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    tabs: tuple[Tab, ...]
    record_type: str | None = None
    origin: Origin = _origin()

    def field_names(self) -> list[str]:
        return [f for tab in self.tabs for section in tab.sections for f in section.fields]


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class ListView:
    name: str
    label: Label
    columns: tuple[str, ...]
    sort: tuple[SortKey, ...] = ()
    filter: str | None = None
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Kanban:
    name: str
    label: Label
    group_by: str
    sum_field: str | None = None
    card_fields: tuple[str, ...] = ()
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    label: Label
    probability: int
    outcome: str  # open | won | lost
    required_fields: tuple[str, ...] = ()
    forecast_category: str | None = None
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Pipeline:
    field: str
    stages: tuple[Stage, ...]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    label: Label
    plural: Label
    fields: tuple[Field, ...]
    pack: str = field(default="", metadata={"hash": False})
    icon: str | None = None
    group: str | None = None
    title_field: str | None = None
    search_fields: tuple[str, ...] = ()
    hidden: bool = False
    record_types: tuple[RecordType, ...] = ()
    layouts: tuple[Layout, ...] = ()
    list_views: tuple[ListView, ...] = ()
    kanbans: tuple[Kanban, ...] = ()
    pipeline: Pipeline | None = None
    timeline: "Timeline | None" = None
    origin: Origin = _origin()

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True, slots=True)
class Timeline:
    """An entity whose records are activities: they show on the timeline of each record they
    reference, ordered by `date`; `done` (a boolean field) splits what is open from what is past."""

    date: str
    done: str | None = None


@dataclass(frozen=True, slots=True)
class Dictionary:
    name: str
    label: Label
    choices: tuple[Choice, ...]
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Relation:
    """A many-to-many relation between two entities, stored in its own join table."""

    name: str
    label: Label
    source: str
    target: str
    fields: tuple[Field, ...] = ()
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    label: Label
    description: str | None = None
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Grant:
    """What one role may do with one entity: a scope per action, row rules, field security."""

    role: str
    entity: str
    scopes: tuple[tuple[str, str], ...]  # (action, scope)
    row_filter: str | None = None
    field_access: tuple[tuple[str, str], ...] = ()  # (field, hidden | read_only)
    stage_scopes: tuple[tuple[str, str], ...] = ()  # (stage, scope) for restricted stage moves
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Action:
    """What only a rule of kind `action` declares: a named operation a user runs on one record
    (a button on its page, a POST in the API), whose code runs in the rule sandbox."""

    label: Label
    confirm: Label | None = None
    condition: str | None = None  # a filter the record must match for the action to be offered
    grant: str = "update"  # the permission the user needs on the record
    roles: tuple[str, ...] = ()  # if any: only users holding one of them
    # fields the action may change on its record beyond the user's role: read-only ones, and
    # owner_id, which it may set only to the acting user or to nobody (claim, release)
    writes: tuple[str, ...] = ()
    inputs: tuple[Field, ...] = ()  # what the user fills in before it runs


@dataclass(frozen=True, slots=True)
class Setting:
    """A named value of a pack an administrator may change (stored in pw_setting); rule code
    reads it as `settings.NAME`, filters as `${NAME}`."""

    name: str
    type: str  # integer | decimal | text | boolean | choice
    label: Label
    default: object = None
    help: Label | None = None
    choices: tuple[Choice, ...] = ()
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    entity: str
    kind: str  # validation | trigger | stage_gate | scheduled | action (| migration: Migration.rule)
    code: str
    events: tuple[str, ...] = ()
    stage: str | None = None
    every: str | None = None
    filter: str | None = None
    time_limit_ms: int | None = None
    origin: Origin = _origin()  # line of the code's first line in the pack file
    tests: tuple[str, ...] = field(default=(), compare=False)  # each case as canonical JSON
    action: Action | None = None  # kind `action` only

    def test_cases(self) -> list[dict]:
        """The pack's test cases for this rule: {record, old?, errors?, values?, label?}."""
        return [json.loads(case) for case in self.tests]


@dataclass(frozen=True, slots=True)
class Migration:
    """A data migration a pack ships: rule code run once over the live records of `entity` its
    `filter` selects, when the pack is upgraded from a version below `version` (and, with
    `on_install`, when it is installed). It runs as the platform, through the record service,
    in the transaction of the upgrade; `pw_data_migration` records that it ran."""

    name: str
    pack: str
    version: str  # the pack version that brings it
    entity: str
    code: str
    filter: str | None = None
    on_install: bool = False
    time_limit_ms: int | None = None
    origin: Origin = _origin()  # where the migration is declared
    tests: tuple[str, ...] = field(default=(), compare=False)  # each case as canonical JSON

    @property
    def rule(self) -> Rule:
        """The migration as the sandbox runs (and `pack test` tests) it: a rule of kind
        `migration`, which no write fires."""
        return Rule(self.name, self.entity, "migration", self.code, filter=self.filter,
                    time_limit_ms=self.time_limit_ms, origin=self.origin, tests=self.tests)


@dataclass(frozen=True, slots=True)
class ReportKey:
    """What a report groups by: a field (or `owner_id`); a date or datetime field by `bucket`."""

    field: str
    bucket: str | None = None  # month | quarter | year


@dataclass(frozen=True, slots=True)
class Measure:
    """One figure per group: `count` of records, or sum/avg/min/max of a number field. With
    `entity`, a second series read from another entity, grouped by its own `group_by` keys
    (which match the report's keys one for one)."""

    name: str
    function: str  # count | sum | avg | min | max
    field: str | None = None  # None for count
    label: Label | None = None  # None: the field's label (count: "Records")
    entity: str | None = None
    group_by: tuple[ReportKey, ...] = ()
    filter: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    label: Label
    entity: str
    group_by: tuple[ReportKey, ...]  # one or two keys
    measures: tuple[Measure, ...]
    chart: str = "bar"  # bar | line | pie | funnel | table
    filter: str | None = None
    sort: SortKey | None = None  # a measure or a group key's field; None: the keys' natural order
    limit: int | None = None
    conversion: bool = False  # stage-to-stage conversion rates (one stage key)
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class DashboardItem:
    report: str
    width: str = "half"  # half | full | third


@dataclass(frozen=True, slots=True)
class Dashboard:
    name: str
    label: Label
    items: tuple[DashboardItem, ...]
    roles: tuple[str, ...] = ()  # shown in the navigation of these roles only; empty: everyone
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    label: Label
    order: int = 0
    origin: Origin = _origin()


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    version: str
    label: Label
    depends: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Metadata:
    packs: tuple[PackInfo, ...] = field(metadata={"hash": False})
    entities: Mapping[str, Entity]
    dictionaries: Mapping[str, Dictionary] = field(default_factory=lambda: MappingProxyType({}))
    relations: Mapping[str, Relation] = field(default_factory=lambda: MappingProxyType({}))
    roles: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))
    grants: tuple[Grant, ...] = ()
    rules: tuple[Rule, ...] = ()
    groups: tuple[Group, ...] = ()
    settings: Mapping[str, Setting] = field(default_factory=lambda: MappingProxyType({}))
    reports: Mapping[str, Report] = field(default_factory=lambda: MappingProxyType({}))
    dashboards: Mapping[str, Dashboard] = field(default_factory=lambda: MappingProxyType({}))
    # one-off actions, not state: left out of the version hash and of the stored document
    migrations: tuple[Migration, ...] = field(default=(), metadata={"hash": False})
    version: str = field(default="", compare=False, metadata={"hash": False})

    def entity(self, name: str) -> Entity | None:
        return self.entities.get(name)
