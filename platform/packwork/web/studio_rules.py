"""The studio's rule and dictionary pages: every rule and dictionary of the packs and the admin
layer; the layer's own are edited here, a pack's shown read-only. Rule code goes through the
sandbox's own compiler before anything is planned, so a syntax error, or what the sandbox
refuses (an import, a `_name`), shows next to the code with its line. "Test on a record" runs
the form's rule, unsaved, on a stored record as a write (or the action) would, with real reads
as the administrator and a `create()` that makes nothing (`rules.testing.run_case`). The
resolver refuses a second rule of one name for an entity; a new rule's name is checked here
against every rule, so that a name means one rule wherever it is shown."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Response, current_app, request, url_for

from packwork.errors import Conflict, NotFound, PackworkError, RequestError
from packwork.metadata.build import rule_from_spec
from packwork.metadata.model import Entity, Label, Origin, Rule
from packwork.metadata.names import IDENTIFIER, MAX_LENGTH
from packwork.rules import engine, testing
from packwork.rules.errors import RuleError
from packwork.rules.sandbox import compile_rule
from packwork.runtime import records
from packwork.runtime.records import business_rules
from packwork.runtime.records.core import rules_of_entity
from packwork.web.pages import Page, whole_number
from packwork.web.studio import Errors, administrator, blueprint, draft_of, propose, studio_html, studio_page
from packwork.web.studio_forms import label_inputs, label_value, names_list, options_text, parse_options

KINDS = ("validation", "trigger", "stage_gate", "scheduled", "action")
EVENTS = ("create", "update", "delete", "stage_change")
RULE_INPUTS = {"": "name", "label": "label_en", "confirm": "confirm_en"} | {key: key for key in (
    "entity", "kind", "on", "stage", "every", "filter", "time_limit_ms", "condition", "grant", "roles", "writes",
    "code")}
CHOICES = {"events": EVENTS, "kinds": [(k, k.replace("_", " ")) for k in KINDS],
           "grants": [(g, g) for g in ("update", "read", "delete", "transfer")]}
DICTIONARY_INPUTS = {"": "name", "label": "label_en", "options": "options"}
CODE_ORIGIN = Origin(lines={("code",): 0})  # an unsaved rule: lines counted from its code's first


def _name_errors(name: str, taken: Mapping[str, str], noun: str) -> Errors:
    if not IDENTIFIER.match(name) and len(name) <= MAX_LENGTH:
        return {"name": [f"give the {noun} a name: a lowercase letter, then lowercase letters, digits or _"]}
    if name in taken:
        return {"name": [f"a {noun} named {name!r} already exists ({taken[name]}); choose another name"]}
    return {}


# -- rules: the form as pack data, and back ----------------------------------------------------

def rule_spec(form: Mapping[str, Any], kept: Mapping[str, Any]) -> tuple[dict, Errors]:
    """The rule the editor's form describes, as pack data; `kept` is the layer's spec of the
    rule being edited, whose `inputs` and `tests` (not on the form) stay as they are."""
    errors: Errors = {}
    kind, entity = form.get("kind", "").strip(), form.get("entity", "").strip()
    spec: dict[str, Any] = {"entity": entity, "kind": kind}
    if not entity:
        errors["entity"] = ["choose the entity the rule is about"]
    if kind not in KINDS:
        errors["kind"] = [f"choose the kind of rule: {', '.join(KINDS)}"]
    if kind == "action":
        _action_keys(form, kept, spec)
    else:
        events = [e for e in EVENTS if e in form.get("on", ())]
        if kind == "trigger" and not events:
            errors["on"] = ["choose when the trigger runs"]
        for key, value in (("on", events), ("stage", form.get("stage", "").strip()),
                           ("every", form.get("every", "").strip()), ("filter", form.get("filter", "").strip())):
            if value:
                spec[key] = value
        if kind == "stage_gate" and "stage" not in spec:
            errors["stage"] = ["name the stage the gate guards"]
        if kind == "scheduled" and "every" not in spec:
            errors["every"] = ["say how often it runs: 30m, 6h, 1d..."]
    if limit := form.get("time_limit_ms", "").strip():
        spec["time_limit_ms"] = whole_number(limit)
        if spec["time_limit_ms"] is None:
            errors["time_limit_ms"] = ["must be a whole number of milliseconds"]
    if (label := label_value(form, "label")) is not None:
        spec["label"] = label
    spec["code"] = form.get("code", "").replace("\r\n", "\n")
    if not spec["code"].strip():
        errors["code"] = ["write the rule's code"]
    spec |= {"tests": kept["tests"]} if kept.get("tests") else {}
    return spec, errors


def _action_keys(form: Mapping[str, Any], kept: Mapping[str, Any], spec: dict) -> None:
    grant = form.get("grant", "update")
    for key, value in (("confirm", label_value(form, "confirm")), ("condition", form.get("condition", "").strip()),
                       ("grant", grant if grant != "update" else None), ("roles", names_list(form.get("roles", ""))),
                       ("writes", names_list(form.get("writes", ""))), ("inputs", kept.get("inputs"))):
        if value:
            spec[key] = value


def rule_inputs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The editor's values for a rule's pack data."""
    values = {key: spec.get(key, "") for key in ("entity", "kind", "stage", "every", "filter", "condition")}
    values |= {"on": list(spec.get("on", ())), "code": spec.get("code", ""), "grant": spec.get("grant", "update"),
               "time_limit_ms": spec.get("time_limit_ms") or "", "roles": ", ".join(spec.get("roles", ())),
               "writes": ", ".join(spec.get("writes", ()))}
    for key in ("label", "confirm"):
        values |= label_inputs(key, Label.of(spec[key], "") if spec.get(key) else None)
    return values


def _form_values() -> dict[str, Any]:
    return dict(request.form) | {"on": request.form.getlist("on")}


def code_errors(name: str, code: str) -> Errors:
    """What the sandbox's compiler refuses in the code, with its line (in the code)."""
    try:
        compile_rule(code, name=name or None)
    except RuleError as error:
        return {"code": [f"line {error.line}: {error.message}" if error.line else error.message]}
    return {}


# -- rules: pages ------------------------------------------------------------------------------

@blueprint.get("/rules")
def rules() -> Response:
    with administrator() as page:
        return studio_page("admin/rules.html", page, rules=page.ctx.catalog.metadata.rules,
                           owned=draft_of(page).named("rules"), applied=whole_number(request.args.get("applied")))


def _rule_context(page: Page, values: dict, errors: Errors, editing: str | None, **extra) -> dict:
    entities = sorted(page.ctx.catalog.metadata.entities.values(), key=lambda e: e.name)
    return {"values": values, "errors": errors, "editing": editing, **CHOICES,
            "entities": [(e.name, f"{e.label.get(page.language)} ({e.name})") for e in entities],
            "outcome": None, "pack_rule": None, "applied": whole_number(request.args.get("applied"))} | extra


def _rule_form(page: Page, values: dict, errors: Errors, editing: str | None, status: int = 200, **extra):
    return studio_page("admin/rule.html", page, status, **_rule_context(page, values, errors, editing, **extra))


def _checked_rule(page: Page, editing: str | None, values: dict) -> tuple[str, dict, Errors]:
    """The form's rule name and pack data, and what is wrong with them before any plan."""
    name = editing or values.get("name", "").strip()
    spec, errors = rule_spec(values, (draft_of(page).named("rules").get(editing) or {}) if editing else {})
    if "code" not in errors:
        errors |= code_errors(name, spec["code"])
    return name, spec, errors


def _propose_rule(page: Page, editing: str | None, values: dict) -> Response:
    """The plan of the form's rule, or of removing the rule edited (`remove`)."""
    def redraw(found: Errors) -> str:
        return studio_html("admin/rule.html", page, **_rule_context(page, values, found, editing))

    if editing and values.get("remove"):
        return propose(page, lambda d: d.set_named("rules", editing, None), redraw, url_for("studio.rules"),
                       RULE_INPUTS)
    name, spec, errors = _checked_rule(page, editing, values)
    if editing is None:
        errors = _name_errors(name, {r.name: r.origin.file for r in page.ctx.catalog.metadata.rules}, "rule") | errors
    if errors:
        return _rule_form(page, values, errors, editing, 422)
    return propose(page, lambda d: d.set_named("rules", name, spec), redraw,
                   url_for("studio.rule", name=name), RULE_INPUTS)


@blueprint.route("/new-rule", methods=["GET", "POST"])
def new_rule() -> Response:
    with administrator() as page:
        if request.method == "GET":
            values = {"kind": "validation", "entity": request.args.get("entity", ""), "on": []}
            return _rule_form(page, values, {}, None)
        return _propose_rule(page, None, _form_values())


@blueprint.route("/rules/<name>", methods=["GET", "POST"])
def rule(name: str) -> Response:
    """A layer rule's editor (a POST proposes the change, or the rule's removal); a pack's rule
    read-only."""
    with administrator() as page:
        spec = draft_of(page).named("rules").get(name)
        if spec is None:
            found = next((r for r in page.ctx.catalog.metadata.rules if r.name == name), None)
            if found is None:
                raise NotFound(f"there is no rule {name!r}")
            if request.method == "POST":
                raise Conflict(f"rule {name!r} comes from a pack ({found.origin.file}): only the admin layer's "
                               "rules can be changed here")
            return _rule_form(page, {}, {}, None, pack_rule=found)
        if request.method == "GET":
            return _rule_form(page, rule_inputs(spec), {}, name)
        return _propose_rule(page, name, _form_values())


@blueprint.post("/test-rule")
def test_rule() -> Response:
    """Run the editor's rule, unsaved, on one stored record, and show what it did."""
    with administrator() as page:
        values = _form_values()
        editing = values.get("editing") or None
        name, spec, errors = _checked_rule(page, editing, values)
        entity = page.ctx.catalog.metadata.entities.get(spec["entity"])
        if entity is None and "entity" not in errors:
            errors["entity"] = [f"there is no entity {spec['entity']!r}"]
        record_id = whole_number(values.get("record_id"))
        if record_id is None:
            errors["record_id"] = ["give the id of a record to test the rule on"]
        try:
            data = None if errors else records.get_record(page.ctx, entity.name, record_id)
        except RequestError as exc:
            errors["record_id"] = [exc.detail]
        if errors:
            return _rule_form(page, values, errors, editing, 422)
        outcome = trial(page, entity, rule_from_spec(name or "new_rule", spec, CODE_ORIGIN), data,
                        values.get("run_as") == "create")
        return _rule_form(page, values, {}, editing, outcome=outcome)


def trial(page: Page, entity: Entity, rule: Rule, data: Mapping, creating: bool) -> dict:
    """What `rule` does to the record `data` (as `get_record` gave it): on an update that
    leaves it as stored, or, with `creating`, on a create of it."""
    ctx = page.ctx
    env = business_rules.rule_env(ctx)  # real reads as the administrator; run_case makes create() make nothing
    record = rule_values(entity, data)
    case = {"record": record | {"id": None}} if creating else {"record": record, "old": record}
    outcome = {"id": data["id"], "creating": creating}
    try:
        ran = testing.run_case(rules_of_entity(ctx.catalog, entity), engine.compile_one(rule), entity, case, env)
    except PackworkError as exc:  # a read the rule asked for was refused: the write would be too
        return outcome | {"broke": getattr(exc, "detail", None) or str(exc)}
    return outcome | {"broke": ran.broke and str(ran.broke), "errors": ran.errors, "changes": ran.changes,
                      "created": ran.created}


_TYPED = {"decimal": Decimal, "money": Decimal, "percent": Decimal, "date": date.fromisoformat,
          "datetime": datetime.fromisoformat}  # what get_record wrote as text


def rule_values(entity: Entity, data: Mapping) -> dict:
    """A record as `get_record` gives it (JSON values), as rule code sees it on a write: its
    stored fields as Python values (decimals, dates, datetimes in UTC), its id, owner, type."""
    values = {key: data.get(key) for key in ("id", "owner_id", "record_type")}
    for field in (f for f in entity.fields if f.has_column):
        value, convert = data.get(field.name), _TYPED.get(field.value_type)
        values[field.name] = convert(value) if convert is not None and isinstance(value, str) else value
    return values


# -- dictionaries ------------------------------------------------------------------------------

@blueprint.get("/dictionaries")
def dictionaries() -> Response:
    with administrator() as page:
        return studio_page("admin/dictionaries.html", page, owned=draft_of(page).named("dictionaries"),
                           dictionaries=sorted(page.ctx.catalog.metadata.dictionaries.values(), key=lambda d: d.name),
                           applied=whole_number(request.args.get("applied")))


def _dictionary_context(values: dict, errors: Errors, editing: str | None, pack_dictionary=None) -> dict:
    return {"values": values, "errors": errors, "editing": editing, "pack_dictionary": pack_dictionary,
            "applied": whole_number(request.args.get("applied"))}


def _propose_dictionary(page: Page, editing: str | None, values: dict) -> Response:
    """The plan of the form's dictionary, or of removing the dictionary edited (`remove`)."""
    def redraw(found: Errors) -> str:
        return studio_html("admin/dictionary.html", page, **_dictionary_context(values, found, editing))

    if editing and values.get("remove"):
        return propose(page, lambda d: d.set_named("dictionaries", editing, None), redraw,
                       url_for("studio.dictionaries"), DICTIONARY_INPUTS)
    name, label = editing or values.get("name", "").strip(), label_value(values, "label")
    options, problems = parse_options(values.get("options", ""))
    spec = ({"label": label} if label else {}) | {"options": options}
    errors = {"options": problems or ["give at least one option, one per line"]} if problems or not options else {}
    if editing is None:  # a pack's name is the resolver's to refuse, next to the name all the same
        taken = {n: "in the admin layer" for n in draft_of(page).named("dictionaries")}
        errors = _name_errors(name, taken, "dictionary") | errors
    if errors:
        return studio_page("admin/dictionary.html", page, 422, **_dictionary_context(values, errors, editing))
    return propose(page, lambda d: d.set_named("dictionaries", name, spec), redraw,
                   url_for("studio.dictionary", name=name), DICTIONARY_INPUTS)


def _propose_options(page: Page, dictionary, values: dict) -> Response:
    """The plan of adding the form's options to a pack's dictionary (its own stay as they are)."""
    def redraw(found: Errors) -> str:
        return studio_html("admin/dictionary.html", page, **_dictionary_context(values, found, None, dictionary))

    options, problems = parse_options(values.get("options", ""))
    if problems or not options:
        return current_app.make_response(
            (redraw({"options": problems or ["give at least one option, one per line"]}), 422))
    return propose(page, lambda d: d.add_options(dictionary.name, options), redraw,
                   url_for("studio.dictionary", name=dictionary.name), {"": "options", "add_options": "options"})


@blueprint.route("/new-dictionary", methods=["GET", "POST"])
def new_dictionary() -> Response:
    with administrator() as page:
        if request.method == "GET":
            return studio_page("admin/dictionary.html", page, **_dictionary_context({}, {}, None))
        return _propose_dictionary(page, None, dict(request.form))


@blueprint.route("/dictionaries/<name>", methods=["GET", "POST"])
def dictionary(name: str) -> Response:
    """A layer dictionary's editor (a POST proposes the change, or its removal); a pack's
    dictionary read-only."""
    with administrator() as page:
        found = page.ctx.catalog.metadata.dictionaries.get(name)
        spec = draft_of(page).named("dictionaries").get(name)
        if spec is None and found is None:
            raise NotFound(f"there is no dictionary {name!r}")
        if spec is None:
            if request.method == "POST":
                return _propose_options(page, found, dict(request.form))
            return studio_page("admin/dictionary.html", page, **_dictionary_context({}, {}, None, found))
        if request.method == "POST":
            return _propose_dictionary(page, name, dict(request.form))
        label = spec.get("label")
        values = {**label_inputs("label", Label.of(label, name) if label else None),
                  "options": options_text(found.choices) if found else ""}
        return studio_page("admin/dictionary.html", page, **_dictionary_context(values, {}, name))
