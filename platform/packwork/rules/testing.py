"""Rule tests declared in packs, run without a database (`packwork pack test PATH`).

    rules:
      amount_not_negative:
        entity: deal
        kind: validation
        code: ...
        tests:
          - record: {amount: -1}
            errors: {amount: [must not be negative]}
          - record: {amount: 10}            # no `errors`: the rule must report none

A case gives the record the rule sees (fields it leaves out are blank) and, for updates, the
`old` values (for actions, the `inputs`); it expects exactly the `errors` given (none if absent)
and, for triggers, scheduled rules, actions and data migrations, at least the `values` given
after the rule ran. `query()` finds nothing and `create()` pretends to create (`count()` finds
0), and settings hold their pack defaults, so a case tests the rule's own logic.

`run_case` is the one run behind it: it also serves the studio's "test on a record", which
runs a rule not yet saved on a stored record, with real reads and a `create()` that makes
nothing, and shows what the rule did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

from packwork.metadata.model import Entity, Metadata, Rule
from packwork.rules import engine
from packwork.rules.errors import RuleError

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)  # fixed, so cases about dates do not drift


@dataclass(frozen=True, slots=True)
class Outcome:
    rule: Rule
    index: int
    label: str
    problem: str | None  # None: the case passed

    def describe(self) -> str:
        where = f"{self.rule.origin.file}:{self.rule.origin.line_of(('tests', self.index))}"
        verdict = "ok" if self.problem is None else f"FAILED: {self.problem}"
        return f"{where}: {self.rule.name}: {self.label}: {verdict}"


def run_pack_tests(metadata: Metadata) -> list[Outcome]:
    """Every test case of every rule in `metadata`, in pack order, then of every data migration."""
    outcomes, compiled_by_entity = [], {}
    for rule in (*metadata.rules, *(m.rule for m in metadata.migrations)):
        if not rule.tests:
            continue
        entity = metadata.entities[rule.entity]
        if entity.name not in compiled_by_entity:
            compiled_by_entity[entity.name] = engine.compile_entity(metadata, entity)
        rules = compiled_by_entity[entity.name]
        compiled = engine.compile_one(rule) if rule.kind == "migration" else next(
            c for group in (rules.validations, rules.triggers, rules.scheduled, *rules.gates.values(),
                            tuple(rules.actions.values()))
            for c in group if c.rule.name == rule.name)
        defaults = {s.name: s.default for s in metadata.settings.values()}
        env = engine.Env({"id": 1, "roles": []}, NOW, query=lambda *args, **kwargs: [],
                         count=lambda *args, **kwargs: 0, settings=lambda: defaults)
        for index, case in enumerate(rule.test_cases()):
            label = case.get("label") or f"case {index + 1}"
            outcomes.append(Outcome(rule, index, label, _problem(run_case(rules, compiled, entity, case, env), case)))
    return outcomes


@dataclass(frozen=True, slots=True)
class Ran:
    """What one rule did to one record: the record as it left it, the messages its `error()`
    calls reported (a validation's or stage gate's refusal; an action stops at its first),
    the records it asked `create()` for, or the RuleError it broke with."""

    record: dict  # the record as the rule saw it
    after: dict
    errors: dict[str, list[str]]
    created: tuple[dict, ...] = ()  # {"entity", "values"} of each create() call, none made
    broke: RuleError | None = None

    @property
    def changes(self) -> dict:
        """The fields the rule set to something else."""
        return {k: v for k, v in self.after.items() if self.record.get(k) != v}


def run_case(rules: engine.EntityRules, compiled: engine.Compiled, entity: Entity, case: dict,
             env: engine.Env) -> Ran:
    """Run one compiled rule of `entity` (with `rules`, the entity's rules: stage
    probabilities...) on a case's `record` (fields it leaves out are blank), with the `old`
    values of an update and an action's `inputs` if the case gives them, as a write or an
    action would run it under `env`, except that `create()` makes nothing: it notes what it
    was asked for and answers as if it had made it (id 1)."""
    blank = {f.name: None for f in entity.fields} | {"id": None, "owner_id": None, "record_type": None}
    record = blank | case["record"]
    old = blank | case["old"] if "old" in case else None
    created: list[dict] = []

    def create(name: str, values: dict) -> dict:
        created.append({"entity": str(name), "values": dict(values)})
        return {"id": 1} | dict(values)

    env = dataclasses.replace(env, create=create)
    errors: dict[str, list[str]] = {}
    try:
        if compiled.rule.action is not None:  # an action: its inputs (blank unless given), stops at error()
            inputs = {f.name: None for f in compiled.rule.action.inputs} | case.get("inputs", {})
            after = record | engine.run_action(rules, compiled, record, inputs, env)
        else:
            after = engine.run_one(rules, compiled, record, old, env, errors)
    except engine.Refused as refused:
        after, errors = record, refused.errors
    except RuleError as exc:
        return Ran(record, record, errors, tuple(created), exc)
    return Ran(record, after, errors, tuple(created))


def _problem(ran: Ran, case: dict) -> str | None:
    """What is wrong with how the rule ran, against what the case expects (None: it passed)."""
    if ran.broke is not None:
        return f"the rule broke: {ran.broke}"
    wanted = case.get("errors", {})
    if ran.errors != wanted:
        return f"expected errors {wanted}, got {ran.errors}"
    wrong = {k: ran.after.get(k) for k, v in case.get("values", {}).items() if ran.after.get(k) != v}
    if wrong:
        return f"expected values {case['values']}, got {wrong}"
    return None
