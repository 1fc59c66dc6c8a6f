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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from packwork.metadata.model import Metadata, Rule
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
        for index, case in enumerate(rule.test_cases()):
            label = case.get("label") or f"case {index + 1}"
            outcomes.append(Outcome(rule, index, label, _problem(rules, compiled, entity, case, defaults)))
    return outcomes


def _problem(rules: engine.EntityRules, compiled: engine.Compiled, entity, case: dict, settings: dict) -> str | None:
    blank = {f.name: None for f in entity.fields} | {"id": None, "owner_id": None, "record_type": None}
    record = blank | case["record"]
    old = blank | case["old"] if "old" in case else None
    env = engine.Env({"id": 1, "roles": []}, NOW, query=lambda *args, **kwargs: [],
                     create=lambda name, values: {"id": 1} | dict(values), count=lambda *args, **kwargs: 0,
                     settings=lambda: settings)
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
        return f"the rule broke: {exc}"
    wanted = case.get("errors", {})
    if errors != wanted:
        return f"expected errors {wanted}, got {errors}"
    wrong = {k: after.get(k) for k, v in case.get("values", {}).items() if after.get(k) != v}
    if wrong:
        return f"expected values {case['values']}, got {wrong}"
    return None
