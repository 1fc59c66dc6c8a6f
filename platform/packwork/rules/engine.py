"""When pack rules run, and what their code sees.

The record service calls `check` before a write (stage gates and validations: `error()` refuses
the write), `compute` for computed fields, and `after_write` after it (triggers: set fields,
create related records, in the same transaction). Rule code sees the record as `record`
(attribute access), the previous values as `old`, the user, `now`/`today`, the vetted library,
and callbacks the record service binds to the acting user (`query`, `create`), so rules reach
other records only through `runtime.records` with that user's permissions. This module never
imports `runtime`: the callbacks arrive as plain functions.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from packwork.metadata.checks import code_line, formula_names
from packwork.metadata.model import Entity, Field, Metadata, Rule
from packwork.rules.sandbox import CompiledRule, Record, compile_rule, run_compiled, run_each

CALLBACKS = frozenset({"query", "count", "create"})  # what reaches other records


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: compiled once
class Compiled:
    rule: Rule
    code: CompiledRule
    # reads and sets only the record's own fields, not its `id`, and reaches no other record:
    # on create it may run before the INSERT (`early`), and what it sets is written with it
    self_contained: bool = False


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity: compiled once
class Formula:
    """A computed field: blank when a field it reads is blank, unless it says what to do
    about blanks with `coalesce()` (as spreadsheets and Salesforce treat blank inputs)."""

    field: str
    code: CompiledRule
    reads: frozenset[str]
    handles_blanks: bool


@dataclass(frozen=True, slots=True)
class EntityRules:
    """One entity's rules, compiled once per metadata version."""

    computed: tuple[Formula, ...] = ()  # in dependency order
    validations: tuple[Compiled, ...] = ()
    triggers: tuple[Compiled, ...] = ()
    scheduled: tuple[Compiled, ...] = ()
    gates: Mapping[str, tuple[Compiled, ...]] = field(default_factory=dict)
    actions: Mapping[str, Compiled] = field(default_factory=dict)  # by name; run only when asked
    required: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # stage -> fields it needs
    probabilities: Mapping[str, int] = field(default_factory=dict)
    stage_field: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.computed or self.validations or self.triggers or self.gates or self.required)


@dataclass(frozen=True, slots=True)
class Env:
    """Who acts and when, and the record service's callbacks bound to them."""

    user: Mapping  # {"id": ..., "roles": [...]}
    now: datetime
    query: Callable[..., list] = lambda *args, **kwargs: []
    create: Callable[..., dict] | None = None
    count: Callable[..., int] | None = None
    settings: Callable[[], Mapping] = lambda: {}  # the pack settings' values, read when code reads them


class Refused(Exception):
    """Rules refused the write: {field: [message, ...]}."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def compile_one(rule: Rule) -> Compiled:
    """One rule's code through the sandbox's compiler (RuleError if it refuses it), with its
    pack-file lines."""
    code = compile_rule(rule.code, name=rule.name, file=rule.origin.file, first_line=code_line(rule.origin, 1))
    return Compiled(rule, code, not (code.loaded & CALLBACKS) and _uses_own_fields_only(rule.code))


def compile_entity(metadata: Metadata, entity: Entity) -> EntityRules:
    rules = [r for r in metadata.rules if r.entity == entity.name]
    gates: dict[str, list[Compiled]] = {}
    for rule in rules:
        if rule.kind == "stage_gate":
            gates.setdefault(rule.stage, []).append(compile_one(rule))
    pipeline = entity.pipeline
    return EntityRules(
        computed=tuple(_formula(entity, f) for f in computed_order(entity)),
        validations=tuple(compile_one(r) for r in rules if r.kind == "validation"),
        triggers=tuple(compile_one(r) for r in rules if r.kind == "trigger"),
        scheduled=tuple(compile_one(r) for r in rules if r.kind == "scheduled"),
        gates={stage: tuple(found) for stage, found in gates.items()},
        actions={r.name: compile_one(r) for r in rules if r.kind == "action"},
        required={s.name: s.required_fields for s in pipeline.stages if s.required_fields} if pipeline else {},
        probabilities={s.name: s.probability for s in pipeline.stages} if pipeline else {},
        stage_field=pipeline.field if pipeline else None)


def _formula(entity: Entity, computed: Field) -> Formula:
    reads, functions = formula_names(computed.formula)
    code = compile_rule(computed.formula, name=f"{entity.name}.{computed.name}", file=computed.origin.file,
                        first_line=computed.origin.line_of(("formula",)), mode="eval")
    return Formula(computed.name, code, frozenset(reads), "coalesce" in functions)


def computed_order(entity: Entity) -> list[Field]:
    """Computed fields, each after the computed fields its formula reads (cycles are refused
    when the pack loads, so this always finishes)."""
    pending = {f.name: f for f in entity.fields if f.type == "computed" and f.formula}
    ordered, placed = [], set()
    while pending:
        for name, f in list(pending.items()):
            if not (formula_names(f.formula)[0] & (set(pending) - {name})):
                ordered.append(f)
                placed.add(name)
                del pending[name]
    return ordered


def compute(rules: EntityRules, record: Mapping, env: Env, only: frozenset[str] | None = None) -> dict:
    """The computed fields' values for `record` (which they may read, in dependency order);
    with `only`, just those (the others are taken from `record`)."""
    values = dict(record)
    results = {}
    for formula in rules.computed:
        if only is not None and formula.field not in only:
            continue
        blank = not formula.handles_blanks and any(values.get(name) is None for name in formula.reads)
        results[formula.field] = values[formula.field] = None if blank else \
            run_compiled(formula.code, _visible(formula.code.loaded, env, {}, values))["result"]
    return results


def depending_on(rules: EntityRules, changed: frozenset[str] | set[str]) -> frozenset[str]:
    """The computed fields whose formulas read, directly or through other computed fields,
    one of the `changed` fields: the only ones a change can change (formulas see nothing
    else that differs between two runs over the same Env)."""
    return _depending_on(rules.computed, frozenset(changed)) if rules.computed else frozenset()


@functools.lru_cache(maxsize=1024)  # an entity's formulas, and the few sets of fields rules set
def _depending_on(computed: tuple[Formula, ...], changed: frozenset[str]) -> frozenset[str]:
    reached, found = set(changed), set()
    for formula in computed:  # in dependency order: one pass reaches every dependant
        if not formula.code.loaded.isdisjoint(reached):  # every name it reads, functions too
            reached.add(formula.field)
            found.add(formula.field)
    return frozenset(found)


def check(rules: EntityRules, record: Mapping, old: Mapping | None, env: Env) -> None:
    """Stage gates (when the record enters a stage) then validations; Refused if any fail.
    They run as one batch over one copy of the record; each still sees it as given."""
    errors: dict[str, list[str]] = {}
    entering = _entering(rules, record, old)
    batch = rules.validations
    if entering is not None:
        for name in rules.required.get(entering, ()):
            if record.get(name) in (None, "", []):
                errors.setdefault(name, []).append(f"is required to enter stage {entering!r}")
        batch = rules.gates.get(entering, ()) + batch
    if batch:
        _run_batch(rules, batch, record, old, env, errors)
    if errors:
        raise Refused(errors)


def firing(rules: EntityRules, record: Mapping, old: Mapping | None) -> tuple[Compiled, ...]:
    """The triggers a write of `record` (over `old`, None on create) fires, in pack order."""
    if not rules.triggers:
        return ()
    return _firing(rules.triggers, old is None, _entering(rules, record, old) is not None)


@functools.lru_cache(maxsize=1024)  # an entity's triggers, and two flags: a few entries each
def _firing(triggers: tuple[Compiled, ...], creating: bool, entering: bool) -> tuple[Compiled, ...]:
    events = {"create" if creating else "update"} | ({"stage_change"} if entering else set())
    return tuple(c for c in triggers if not events.isdisjoint(c.rule.events))


@functools.lru_cache(maxsize=1024)
def early(triggers: tuple[Compiled, ...]) -> int:
    """How many of `triggers`, from the first, may run on a new record before it is inserted."""
    count = 0
    while count < len(triggers) and triggers[count].self_contained:
        count += 1
    return count


def after_write(rules: EntityRules, record: Mapping, old: Mapping | None, env: Env) -> dict:
    """Run the triggers the write fires; returns the fields they changed on the record."""
    return run_triggers(rules, firing(rules, record, old), record, old, env)


def run_triggers(rules: EntityRules, triggers: Sequence[Compiled], record: Mapping, old: Mapping | None,
                 env: Env) -> dict:
    """Run `triggers` in turn, each seeing the record as those before it left it; returns the
    fields they changed. Refused as soon as one calls `error()`: the rest do not run."""
    if not triggers:
        return {}
    errors: dict[str, list[str]] = {}
    after = _run_batch(rules, triggers, record, old, env, errors, keep=True)
    if errors:
        raise Refused(errors)
    return {k: v for k, v in after.items() if record.get(k) != v}


def run_scheduled(rules: EntityRules, compiled: Compiled, record: Mapping, env: Env) -> dict:
    """One scheduled rule on one record; returns the fields it changed (Refused if it called
    `error()`: the record is left as it was)."""
    errors: dict[str, list[str]] = {}
    after = _run(rules, compiled, record, None, env, errors)
    if errors:
        raise Refused(errors)
    return {k: v for k, v in after.items() if record.get(k) != v}


def run_one(rules: EntityRules, compiled: Compiled, record: Mapping, old: Mapping | None, env: Env,
            errors: dict[str, list[str]]) -> dict:
    """One rule on one record, whatever its kind (pack tests): the record's values after it
    ran; messages passed to `error()` land in `errors`."""
    return _run(rules, compiled, record, old, env, errors)


def run_action(rules: EntityRules, compiled: Compiled, record: Mapping, inputs: Mapping, env: Env) -> dict:
    """An action's code on one record, with the `inputs` the user gave; returns the fields it
    changed on the record. Its first `error()` stops it (Refused): an action that was refused
    must not go on creating records, and the caller rolls back any it made."""
    def error(field_name: str, message: str) -> None:
        raise Refused({str(field_name): [str(message)]})

    subject = Record(record)
    offered = {"record": subject, "inputs": Record(dict(inputs)), "error": error, "query": env.query,
               "count": env.count, "create": env.create, "stage_probability": rules.probabilities.get}
    run_each((compiled.code,), _visible(compiled.code.loaded, env, offered), keep=("record",),
             time_limits_ms=(compiled.rule.time_limit_ms or 50,))
    return {k: v for k, v in subject.as_dict().items() if record.get(k) != v}


def _entering(rules: EntityRules, record: Mapping, old: Mapping | None) -> str | None:
    if rules.stage_field is None:
        return None
    stage = record.get(rules.stage_field)
    if stage is None or (old is not None and old.get(rules.stage_field) == stage):
        return None
    return stage


def _run(rules: EntityRules, compiled: Compiled, record: Mapping, old: Mapping | None, env: Env,
         errors: dict[str, list[str]]) -> dict:
    """Run one rule; messages passed to `error()` land in `errors`. Returns the record's
    values as the rule left them."""
    return _run_batch(rules, (compiled,), record, old, env, errors, keep=True)


def _run_batch(rules: EntityRules, batch: Sequence[Compiled], record: Mapping, old: Mapping | None, env: Env,
               errors: dict[str, list[str]], keep: bool = False) -> dict:
    """Run `batch` as one sandbox run over one copy of the record (sandbox.run_each); messages
    passed to `error()` land in `errors`. With `keep`, each rule sees the record as the one
    before left it, and the batch stops at the first rule that reports an error. Returns
    the record's values after the batch."""
    def error(field_name: str, message: str) -> None:
        errors.setdefault(str(field_name), []).append(str(message))

    subject = Record(record)  # a copy: the sandbox copies what the rules changed back into it
    codes, loaded, limits = _batch_parts(tuple(batch))
    offered = {"record": subject, "error": error, "stage_probability": rules.probabilities.get,
               "query": env.query, "count": env.count, "create": env.create}
    if "old" in loaded:  # the one that costs something to make
        offered["old"] = Record(dict(old)) if old is not None else None
    run_each(codes, _visible(loaded, env, offered), keep=("record",) if keep else (), time_limits_ms=limits,
             until=(lambda: bool(errors)) if keep else None)
    return subject.as_dict()


@functools.lru_cache(maxsize=1024)  # a batch is one of an entity's few lists of rules
def _batch_parts(batch: tuple[Compiled, ...]) -> tuple[tuple[CompiledRule, ...], frozenset[str], tuple[int, ...]]:
    """What run_each needs of `batch`: its code, every name it reads, its time limits."""
    return (tuple(c.code for c in batch), frozenset().union(*(c.code.loaded for c in batch)),
            tuple(c.rule.time_limit_ms or 50 for c in batch))


# What rule code sees of the clock, the user and the settings, made from the Env when read
_CLOCK: Mapping[str, Callable[[Env], object]] = MappingProxyType({
    "user": lambda env: dict(env.user), "now": lambda env: lambda: env.now,
    "today": lambda env: lambda: env.now.date(), "settings": lambda env: Record(dict(env.settings()))})


def _visible(loaded: frozenset[str], env: Env, offered: Mapping[str, object],
             values: Mapping = MappingProxyType({})) -> dict:
    """The names code that reads `loaded` reads, and only those: every value handed to rule
    code is checked and copied on each run, so what it does not read is not offered. `values`
    (a formula's record fields) come first, then `offered`, then the clock (made only when
    read). A callback offered as None (no `create` outside the record service) is left out.
    The library is not offered: rule code finds the same functions among its builtins
    (library.BUILTINS), and every name offered is checked on every run."""
    names = {}
    for name in loaded:
        if name in values:
            names[name] = values[name]
        elif name in offered:
            value = offered[name]
            if value is not None or name not in CALLBACKS:
                names[name] = value
        elif name in _CLOCK:
            names[name] = _CLOCK[name](env)
    return names


def _uses_own_fields_only(source: str) -> bool:
    """Whether code uses `record` only as `record.field`, never its `id` (unknown before the
    INSERT), and never hands the record on whole."""
    tree = ast.parse(source)
    attributes = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr != "id"}
    return all(id(node) in attributes for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "record")
