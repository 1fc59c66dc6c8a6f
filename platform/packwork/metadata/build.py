"""Pack documents (already schema-valid) -> model objects, one pack at a time.

Only shape is known to be right here; cross-references (fields named in layouts, entities named
by references, dictionaries, ...) are checked after resolution in `metadata.checks`, because an
extension in a later pack may supply what a layout names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from packwork.metadata.fieldtypes import FieldTypes
from packwork.metadata.loader import MANIFEST, Document
from packwork.metadata.model import (
    Action, Choice, Dictionary, Entity, Field, Grant, Group, Kanban, Label, Layout, ListView, Migration, Origin,
    PackInfo, Pipeline, RecordType, Relation, Role, Rule, Section, Setting, SortKey, Stage, Tab, Timeline,
)
from packwork.metadata.model import Dashboard, DashboardItem, Measure, Report, ReportKey
from packwork.metadata.problems import Problem


@dataclass(slots=True)
class Extension:
    """`extends:` of one entity by one pack, kept raw-but-typed until the resolver applies it."""

    entity: str
    pack: str
    origin: Origin
    label: Label | None = None
    plural: Label | None = None
    icon: str | None = None
    group: str | None = None
    title_field: str | None = None
    search_fields: tuple[str, ...] | None = None
    hidden: bool | None = None
    add_fields: tuple[Field, ...] = ()
    change_fields: dict[str, tuple[dict, Origin]] = field(default_factory=dict)
    hide_fields: tuple[tuple[str, Origin], ...] = ()
    add_record_types: tuple[RecordType, ...] = ()
    layouts: tuple[Layout, ...] = ()
    list_views: tuple[ListView, ...] = ()
    kanbans: tuple[Kanban, ...] = ()
    add_stages: tuple[tuple[Stage, str | None], ...] = ()  # (stage, after)
    change_stages: dict[str, tuple[dict, Origin]] = field(default_factory=dict)


@dataclass(slots=True)
class PackContent:
    info: PackInfo
    origin: Origin
    entities: list[Entity] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    dictionaries: list[Dictionary] = field(default_factory=list)
    dictionary_options: list[Dictionary] = field(default_factory=list)  # extend_dictionaries: the options added
    relations: list[Relation] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    dashboards: list[Dashboard] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)
    migrations: list[Migration] = field(default_factory=list)


def build_pack(documents: list[Document], field_types: FieldTypes
               ) -> tuple[PackContent | None, list[Problem]]:
    """Build one pack from its schema-valid documents."""
    manifest = next((d for d in documents if d.file.endswith(MANIFEST)), None)
    problems: list[Problem] = []
    if manifest is None:
        return None, problems
    data = manifest.data
    for key in ("name", "version"):
        if key not in data:
            problems.append(manifest.problem("PACK-E011", (), f"{MANIFEST} must give the pack's {key!r}"))
    if problems:
        return None, problems
    info = PackInfo(data["name"], data["version"], Label.of(data.get("label"), data["name"]),
                    tuple(data.get("depends", ())))
    content = PackContent(info, Origin(manifest.file, (), manifest.lines))
    for doc in documents:
        if doc is not manifest:
            for key in ("name", "version", "depends"):
                if key in doc.data:
                    problems.append(doc.problem("PACK-E011", (key,),
                                                f"{key!r} belongs in {MANIFEST}, not in other pack files"))
        _build_document(doc, content)
        problems += _property_problems(doc, field_types) + _rule_key_problems(doc)
    return content, problems


def _property_problems(doc: Document, field_types: FieldTypes) -> list[Problem]:
    """A property that means nothing for the field's type (`max_length` on a boolean)."""
    problems = []
    for path, spec in _field_specs(doc.data):
        if spec["type"] not in field_types:
            continue
        allowed = field_types[spec["type"]].properties
        for key in spec:
            if key not in allowed:
                kind = spec["type"]
                problems.append(doc.problem("PACK-E012", path + (key,),
                                            f"{key!r} does not apply to {_article(kind)} {kind} field"))
    return problems


ACTION_KEYS = ("confirm", "condition", "grant", "roles", "writes", "inputs")  # what only actions take
_NOT_FOR_ACTIONS = ("on", "stage", "every", "filter")


def _rule_key_problems(doc: Document) -> list[Problem]:
    """A key that means nothing for the rule's kind: `writes` on a trigger, `on` on an action."""
    problems = []
    for name, spec in doc.data.get("rules", {}).items():
        acting = spec["kind"] == "action"
        for key in _NOT_FOR_ACTIONS if acting else ACTION_KEYS:
            if key in spec:
                what = "does not apply to an action" if acting else "applies to action rules only"
                problems.append(doc.problem("PACK-E012", ("rules", name, key), f"{key!r} {what}"))
    return problems


def _field_specs(data: dict):
    for name, entity in data.get("entities", {}).items():
        for f, spec in entity.get("fields", {}).items():
            yield ("entities", name, "fields", f), spec
    for name, ext in data.get("extends", {}).items():
        for f, spec in ext.get("add_fields", {}).items():
            yield ("extends", name, "add_fields", f), spec
    for name, relation in data.get("relations", {}).items():
        for f, spec in relation.get("fields", {}).items():
            yield ("relations", name, "fields", f), spec
    for name, rule in data.get("rules", {}).items():
        for f, spec in rule.get("inputs", {}).items():
            yield ("rules", name, "inputs", f), spec


def _build_document(doc: Document, pack: PackContent) -> None:
    data = doc.data
    at = lambda *path: Origin(doc.file, path, doc.lines)  # noqa: E731
    for name, spec in data.get("groups", {}).items():
        pack.groups.append(Group(name, Label.of(spec.get("label"), name), spec.get("order", 0),
                                 at("groups", name)))
    for name, spec in data.get("dictionaries", {}).items():
        origin = at("dictionaries", name)
        pack.dictionaries.append(Dictionary(name, Label.of(spec.get("label"), name),
                                            _choices(spec["options"]), origin))
    for name, spec in data.get("extend_dictionaries", {}).items():
        origin = at("extend_dictionaries", name)
        pack.dictionary_options.append(Dictionary(name, Label.of(None, name), _choices(spec["add_options"]), origin))
    for name, spec in data.get("entities", {}).items():
        pack.entities.append(_entity(name, spec, pack.info.name, at("entities", name)))
    for name, spec in data.get("extends", {}).items():
        pack.extensions.append(_extension(name, spec, pack.info.name, at("extends", name)))
    for name, spec in data.get("relations", {}).items():
        origin = at("relations", name)
        fields = tuple(_field(f, s, origin.at("fields", f)) for f, s in spec.get("fields", {}).items())
        pack.relations.append(Relation(name, Label.of(spec.get("label"), name), spec["from"], spec["to"],
                                       fields, origin))
    for name, spec in data.get("roles", {}).items():
        pack.roles.append(Role(name, Label.of(spec.get("label"), name), spec.get("description"),
                               at("roles", name)))
    for role, entities in data.get("permissions", {}).items():
        for entity, spec in entities.items():
            pack.grants.append(_grant(role, entity, spec, at("permissions", role, entity)))
    for name, spec in data.get("rules", {}).items():
        pack.rules.append(rule_from_spec(name, spec, at("rules", name)))
    for name, spec in data.get("migrations", {}).items():
        pack.migrations.append(_migration(name, spec, pack.info, at("migrations", name)))
    for name, spec in data.get("reports", {}).items():
        pack.reports.append(_report(name, spec, at("reports", name)))
    for name, spec in data.get("dashboards", {}).items():
        pack.dashboards.append(_dashboard(name, spec, at("dashboards", name)))
    for name, spec in data.get("settings", {}).items():
        pack.settings.append(Setting(name, spec["type"], Label.of(spec.get("label"), name), spec.get("default"),
                                     Label.of(spec["help"], "") if "help" in spec else None,
                                     _choices(spec.get("options", ())), at("settings", name)))


def _choices(options: list[dict]) -> tuple[Choice, ...]:
    return tuple(Choice(o["value"], Label.of(o.get("label"), o["value"]), o.get("color")) for o in options)


def _field(name: str, spec: dict, origin: Origin) -> Field:
    return Field(
        name=name, type=spec["type"], label=Label.of(spec.get("label"), name),
        help=Label.of(spec["help"], "") if "help" in spec else None,
        required=spec.get("required", False), unique=spec.get("unique", False),
        default=spec.get("default"), max_length=spec.get("max_length"),
        precision=spec.get("precision"), scale=spec.get("scale"),
        hidden=spec.get("hidden", False), read_only=spec.get("read_only", False),
        indexed=spec.get("indexed", False),
        choices=_choices(spec["options"]) if "options" in spec else (),
        dictionary=spec.get("dictionary"), target=spec.get("entity"),
        on_delete=spec.get("on_delete", "set_null"), currency=spec.get("currency"),
        formula=spec.get("formula"), result=spec.get("result"), store=spec.get("store", False),
        origin=origin,
    )


def _section(name: str, spec: dict) -> Section:
    return Section(name, Label.of(spec.get("label"), name), spec.get("columns", 2), tuple(spec["fields"]))


def _layout(name: str, spec: dict, origin: Origin) -> Layout:
    if "tabs" in spec:
        tabs = tuple(Tab(t, Label.of(ts.get("label"), t),
                         tuple(_section(s, ss) for s, ss in ts["sections"].items()))
                     for t, ts in spec["tabs"].items())
    else:
        tabs = (Tab("main", Label("Details", "详细信息"),
                    tuple(_section(s, ss) for s, ss in spec["sections"].items())),)
    return Layout(name, tabs, spec.get("record_type"), origin)


def _list_view(name: str, spec: dict, origin: Origin) -> ListView:
    sort = tuple(SortKey(s.lstrip("-"), s.startswith("-")) for s in spec.get("sort", ()))
    return ListView(name, Label.of(spec.get("label"), name), tuple(spec["columns"]), sort,
                    spec.get("filter"), origin)


def _kanban(name: str, spec: dict, origin: Origin) -> Kanban:
    return Kanban(name, Label.of(spec.get("label"), name), spec["group_by"], spec.get("sum"),
                  tuple(spec.get("card_fields", ())), origin)


def _stage(name: str, spec: dict, origin: Origin) -> Stage:
    return Stage(name, Label.of(spec.get("label"), name), spec["probability"], spec["outcome"],
                 tuple(spec.get("required_fields", ())), spec.get("forecast_category"), origin)


def _views(spec: dict, origin: Origin) -> dict:
    return {
        "layouts": tuple(_layout(n, s, origin.at("layouts", n)) for n, s in spec.get("layouts", {}).items()),
        "list_views": tuple(_list_view(n, s, origin.at("list_views", n))
                            for n, s in spec.get("list_views", {}).items()),
        "kanbans": tuple(_kanban(n, s, origin.at("kanbans", n)) for n, s in spec.get("kanbans", {}).items()),
    }


def _entity(name: str, spec: dict, pack: str, origin: Origin) -> Entity:
    label = Label.of(spec["label"], name)
    pipeline = None
    if "pipeline" in spec:
        p = spec["pipeline"]
        pipeline = Pipeline(p["field"], tuple(_stage(s, ss, origin.at("pipeline", "stages", s))
                                              for s, ss in p["stages"].items()))
    return Entity(
        name=name, label=label, plural=Label.of(spec.get("plural"), "") if "plural" in spec else label,
        fields=tuple(_field(f, s, origin.at("fields", f)) for f, s in spec["fields"].items()),
        pack=pack, icon=spec.get("icon"), group=spec.get("group"), title_field=spec.get("title_field"),
        search_fields=tuple(spec.get("search_fields", ())), hidden=spec.get("hidden", False),
        record_types=tuple(RecordType(r, Label.of(rs.get("label"), r), origin.at("record_types", r))
                           for r, rs in spec.get("record_types", {}).items()),
        pipeline=pipeline, origin=origin, **_views(spec, origin),
        timeline=Timeline(spec["timeline"]["date"], spec["timeline"].get("done")) if "timeline" in spec else None,
    )


def _extension(name: str, spec: dict, pack: str, origin: Origin) -> Extension:
    ext = Extension(name, pack, origin, **_views(spec, origin))
    if "label" in spec:
        ext.label = Label.of(spec["label"], name)
    if "plural" in spec:
        ext.plural = Label.of(spec["plural"], name)
    for key in ("icon", "group", "title_field", "hidden"):
        if key in spec:
            setattr(ext, key, spec[key])
    if "search_fields" in spec:
        ext.search_fields = tuple(spec["search_fields"])
    ext.add_fields = tuple(_field(f, s, origin.at("add_fields", f)) for f, s in spec.get("add_fields", {}).items())
    ext.change_fields = {f: (s, origin.at("change_fields", f)) for f, s in spec.get("change_fields", {}).items()}
    ext.hide_fields = tuple((f, origin.at("hide_fields", i)) for i, f in enumerate(spec.get("hide_fields", ())))
    ext.add_record_types = tuple(RecordType(r, Label.of(rs.get("label"), r), origin.at("add_record_types", r))
                                 for r, rs in spec.get("add_record_types", {}).items())
    ext.add_stages = tuple((_stage(s, ss, origin.at("add_stages", s)), ss.get("after"))
                           for s, ss in spec.get("add_stages", {}).items())
    ext.change_stages = {s: (ss, origin.at("change_stages", s)) for s, ss in spec.get("change_stages", {}).items()}
    return ext


def _grant(role: str, entity: str, spec: dict, origin: Origin) -> Grant:
    scopes = tuple((k, v) for k, v in spec.items() if k not in ("rows", "fields", "stages"))
    return Grant(role, entity, scopes, spec.get("rows"), tuple(spec.get("fields", {}).items()),
                 tuple(spec.get("stages", {}).items()), origin)


def rule_from_spec(name: str, spec: dict, origin: Origin) -> Rule:
    """A rule from its (schema-valid) pack data; the studio also builds unsaved rules with it."""
    return Rule(name, spec["entity"], spec["kind"], spec["code"], tuple(spec.get("on", ())),
                spec.get("stage"), spec.get("every"), spec.get("filter"), spec.get("time_limit_ms"),
                origin, tuple(json.dumps(case, sort_keys=True, default=str) for case in spec.get("tests", ())),
                _action(name, spec, origin) if spec["kind"] == "action" else None)


def _migration(name: str, spec: dict, pack: PackInfo, origin: Origin) -> Migration:
    return Migration(name, pack.name, spec["version"], spec["entity"], spec["code"], spec.get("filter"),
                     spec.get("on_install", False), spec.get("time_limit_ms"), origin,
                     tuple(json.dumps(case, sort_keys=True, default=str) for case in spec.get("tests", ())))


def _action(name: str, spec: dict, origin: Origin) -> Action:
    return Action(Label.of(spec.get("label"), name),
                  Label.of(spec["confirm"], "") if "confirm" in spec else None, spec.get("condition"),
                  spec.get("grant", "update"), tuple(spec.get("roles", ())), tuple(spec.get("writes", ())),
                  tuple(_field(f, s, origin.at("inputs", f)) for f, s in spec.get("inputs", {}).items()))


MEASURE_FUNCTIONS = ("count", "sum", "avg", "min", "max")


def _report_keys(specs: list) -> tuple[ReportKey, ...]:
    return tuple(ReportKey(s) if isinstance(s, str) else ReportKey(s["field"], s["bucket"]) for s in specs)


def _measure(name: str, spec: str | dict) -> Measure:
    spec = {"count": True} if spec == "count" else spec
    function = next(f for f in MEASURE_FUNCTIONS if f in spec)
    return Measure(name, function, None if function == "count" else spec[function],
                   Label.of(spec["label"], name) if "label" in spec else None, spec.get("entity"),
                   _report_keys(spec.get("group_by", ())), spec.get("filter"))


def _report(name: str, spec: dict, origin: Origin) -> Report:
    sort = spec.get("sort")
    return Report(name, Label.of(spec.get("label"), name), spec["entity"], _report_keys(spec["group_by"]),
                  tuple(_measure(m, s) for m, s in spec["measures"].items()), spec.get("chart", "bar"),
                  spec.get("filter"), SortKey(sort.lstrip("-"), sort.startswith("-")) if sort else None,
                  spec.get("limit"), spec.get("conversion", False), origin)


def _dashboard(name: str, spec: dict, origin: Origin) -> Dashboard:
    items = tuple(DashboardItem(i) if isinstance(i, str) else DashboardItem(i["report"], i.get("width", "half"))
                  for i in spec["reports"])
    return Dashboard(name, Label.of(spec.get("label"), name), items, tuple(spec.get("roles", ())), origin)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
