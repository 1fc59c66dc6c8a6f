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
`old` values; it expects exactly the `errors` given (none if absent) and, for triggers and
scheduled rules, at least the `values` given after the rule ran. `query()` finds nothing and
`create()` pretends to create, so a case tests the rule's own logic.
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
    """Every test case of every rule in `metadata`, in pack order."""
    outcomes, compiled_by_entity = [], {}
    for rule in metadata.rules:
        if not rule.tests:
            continue
        entity = metadata.entities[rule.entity]
        if entity.name not in compiled_by_entity:
            compiled_by_entity[entity.name] = engine.compile_entity(metadata, entity)
        rules = compiled_by_entity[entity.name]
        compiled = next(c for group in (rules.validations, rules.triggers, rules.scheduled, *rules.gates.values())
                        for c in group if c.rule.name == rule.name)
        for index, case in enumerate(rule.test_cases()):
            label = case.get("label") or f"case {index + 1}"
            outcomes.append(Outcome(rule, index, label, _problem(rules, compiled, entity, case)))
    return outcomes


def _problem(rules: engine.EntityRules, compiled: engine.Compiled, entity, case: dict) -> str | None:
    blank = {f.name: None for f in entity.fields} | {"id": None, "owner_id": None, "record_type": None}
    record = blank | case["record"]
    old = blank | case["old"] if "old" in case else None
    env = engine.Env({"id": 1, "roles": []}, NOW, query=lambda *args, **kwargs: [],
                     create=lambda name, values: {"id": 1} | dict(values))
    errors: dict[str, list[str]] = {}
    try:
        after = engine.run_one(rules, compiled, record, old, env, errors)
    except RuleError as exc:
        return f"the rule broke: {exc}"
    wanted = case.get("errors", {})
    if errors != wanted:
        return f"expected errors {wanted}, got {errors}"
    wrong = {k: after.get(k) for k, v in case.get("values", {}).items() if after.get(k) != v}
    if wrong:
        return f"expected values {case['values']}, got {wrong}"
    return None
