"""The record service's side of pack rules: what rule code sees of the record and the user, and
what its verdict does to the write. The rules themselves run in `packwork.rules`; here they get
callbacks bound to the acting user (`query` reads, `create` writes, both through the record
service with that user's permissions) and their verdicts become API answers: `error()` a 422
naming the field, a broken rule a 422 naming the rule's file and line, never a 500."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from packwork.errors import RuleFailed, ValidationError
from packwork.rules import engine
from packwork.rules.sandbox import RuleError
from packwork.runtime.listing import ListQuery
from packwork.runtime.records.core import Context, Target, rules_of_entity
from packwork.runtime.records.reads import list_records
from packwork.runtime.values import same_value

QUERY_CAP = 200  # rows one `query()` call may return
MAX_DEPTH = 4  # records created by triggers that create records...
_depth: ContextVar[int] = ContextVar("rule_depth", default=0)


def rules_of(ctx: Context, target: Target) -> engine.EntityRules:
    return rules_of_entity(ctx.catalog, target.entity)


def before_write(ctx: Context, target: Target, values: dict, old: Mapping | None) -> dict:
    """Stage gates and validations on the record as it would be saved, then its computed
    fields. Returns the stored computed values that change (the caller writes them too)."""
    rules = rules_of(ctx, target)
    if rules.empty:
        return {}
    record = _record(target, values, old)
    with _verdicts():
        engine.check(rules, record, _record(target, {}, old) if old is not None else None, _env(ctx))
        computed = engine.compute(rules, record, _env(ctx))
    stored = {name: value for name, value in computed.items() if target.entity.field(name).has_column}
    return {k: v for k, v in stored.items() if old is None or not same_value(old[k], v)}


def after_write(ctx: Context, target: Target, row: Mapping, old: Mapping | None) -> tuple[Mapping, dict]:
    """The triggers the write fires. The fields they set (and the computed fields that follow)
    are written to the same row in the same transaction, as part of the same version. Returns
    the row as it now is and what the triggers changed."""
    rules = rules_of(ctx, target)
    if not rules.triggers:
        return row, {}
    record = _record(target, {}, row)
    with _verdicts():
        set_by_rules = engine.after_write(rules, record, _record(target, {}, old) if old is not None else None,
                                          _env(ctx))
        if not set_by_rules:
            return row, {}
        values = _loaded(target, set_by_rules)
        values |= {k: v for k, v in engine.compute(rules, record | values, _env(ctx)).items()
                   if target.entity.field(k).has_column}
    changed = {k: v for k, v in values.items() if not same_value(row[k], v)}
    if not changed:
        return row, {}
    table = target.table
    new = ctx.conn.execute(table.update().where(table.c.id == row["id"]).values(**changed)
                           .returning(*table.c)).mappings().one()
    return new, changed


def run_scheduled(ctx: Context, target: Target, rule: engine.Compiled, row: Mapping) -> dict:
    """One scheduled rule on one stored record: the changes it makes, as input values for
    `update_record` (ValidationError if it called `error()`, RuleFailed if it broke)."""
    with _verdicts():
        changed = engine.run_scheduled(rules_of(ctx, target), rule, _record(target, {}, row), _env(ctx))
    return {k: target.values.json_value(k, v) for k, v in changed.items()}


def _loaded(target: Target, set_by_rules: Mapping) -> dict:
    """Values a rule set, checked and coerced like any input (a rule writes Python values:
    they go through their JSON form, as a client's would)."""
    return target.values.load({k: target.values.json_value(k, v) for k, v in set_by_rules.items()},
                              creating=False)


def _record(target: Target, values: Mapping, old: Mapping | None) -> dict:
    """Field values as rule code sees them: the stored row, with this write's values over it."""
    keys = [f.name for f in target.entity.fields if f.has_column] + ["id", "owner_id", "record_type"]
    base = {k: (old[k] if old is not None and k in old else None) for k in keys}
    return base | {k: v for k, v in values.items() if k in base}


def _env(ctx: Context) -> engine.Env:
    def query(entity: str, filter: str | None = None, limit: int = 50) -> list[dict]:
        wanted = min(int(limit), QUERY_CAP)
        return list_records(ctx, str(entity), ListQuery(filter=filter, limit=max(wanted, 1))).data

    def create(entity: str, values: Mapping) -> dict:
        if _depth.get() >= MAX_DEPTH:
            raise RuleFailed(f"rules created records {MAX_DEPTH} levels deep; a trigger is probably calling itself")
        token = _depth.set(_depth.get() + 1)
        try:
            from packwork.runtime.records.writes import create_record  # writes imports this module
            return create_record(ctx, str(entity), dict(values))
        finally:
            _depth.reset(token)

    user = {"id": ctx.actor.user_id, "roles": sorted(ctx.actor.roles)}
    return engine.Env(user, ctx.now, query, create)


@contextmanager
def _verdicts() -> Iterator[None]:
    try:
        yield
    except engine.Refused as refused:
        raise ValidationError("a rule refused the write", refused.errors) from None
    except RuleError as exc:
        raise RuleFailed.of(exc) from None
