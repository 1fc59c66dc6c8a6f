"""The record service's side of pack rules: what rule code sees of the record and the user, and
what its verdict does to the write. The rules themselves run in `packwork.rules`; here they get
callbacks bound to the acting user (`query` reads, `create` writes, both through the record
service with that user's permissions) and their verdicts become API answers: `error()` a 422
naming the field, a broken rule a 422 naming the rule's file and line, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import timezone

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
    record, env = _record(ctx, target, values, old), rule_env(ctx)
    with _VERDICTS:
        engine.check(rules, record, _record(ctx, target, {}, old) if old is not None else None, env)
        computed = engine.compute(rules, record, env)
    stored = _stored(ctx, target, computed)
    return stored if old is None else {k: v for k, v in stored.items() if not same_value(old[k], v)}


def before_insert(ctx: Context, target: Target, values: dict) -> tuple[dict, tuple[engine.Compiled, ...]]:
    """The create triggers that may run before the INSERT (the first ones the create fires
    that use only the record's own fields, not its id, and reach no other record), run on
    the values about to be inserted, so what they set goes into the same INSERT instead of a
    second UPDATE. Returns the values they (and the computed fields that follow) change, and
    the triggers left for `after_insert`."""
    rules = rules_of(ctx, target)
    if not rules.triggers:
        return {}, ()
    record = _record(ctx, target, values, None)
    triggers = engine.firing(rules, record, None)
    count = engine.early(triggers)
    if not count:
        return {}, triggers
    changed = _triggered(ctx, target, rules, triggers[:count], record, None)
    return {k: v for k, v in changed.items() if not same_value(values.get(k), v)}, triggers[count:]


def after_insert(ctx: Context, target: Target, row: Mapping, triggers: tuple[engine.Compiled, ...]
                 ) -> tuple[Mapping, dict]:
    """The create triggers `before_insert` left, on the inserted row: see `after_write`."""
    if not triggers:
        return row, {}
    return _write_triggered(ctx, target, row, _triggered(ctx, target, rules_of(ctx, target), triggers,
                                                           _record(ctx, target, {}, row), None))


def after_write(ctx: Context, target: Target, row: Mapping, old: Mapping | None) -> tuple[Mapping, dict]:
    """The triggers the write fires. The fields they set (and the computed fields that follow)
    are written to the same row in the same transaction, as part of the same version. Returns
    the row as it now is and what the triggers changed."""
    rules = rules_of(ctx, target)
    if not rules.triggers:
        return row, {}
    record = _record(ctx, target, {}, row)
    old_record = _record(ctx, target, {}, old) if old is not None else None
    triggers = engine.firing(rules, record, old_record)
    return _write_triggered(ctx, target, row, _triggered(ctx, target, rules, triggers, record, old_record))


def _triggered(ctx: Context, target: Target, rules: engine.EntityRules, triggers: tuple[engine.Compiled, ...],
               record: dict, old: dict | None) -> dict:
    """Run `triggers` on `record`: the values they set, loaded as input, and the stored
    computed values over them."""
    env = rule_env(ctx)
    with _VERDICTS:
        set_by_rules = engine.run_triggers(rules, triggers, record, old, env)
        if not set_by_rules:
            return {}
        values = target.values.load_set_by_rules(set_by_rules)
        affected = engine.depending_on(rules, values.keys())
        if not affected:
            return values
        return values | _stored(ctx, target, engine.compute(rules, record | values, env, only=affected))


def _stored(ctx: Context, target: Target, computed: Mapping) -> dict:
    """Of computed values, those of fields stored in a column."""
    entity = target.entity
    stored = ctx.catalog.derived(("stored_fields", entity.name), lambda: frozenset(
        f.name for f in entity.fields if f.has_column))
    if computed.keys() <= stored:  # every computed field is stored, as usual
        return dict(computed)
    return {name: value for name, value in computed.items() if name in stored}


def _write_triggered(ctx: Context, target: Target, row: Mapping, values: dict) -> tuple[Mapping, dict]:
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
    with _VERDICTS:
        changed = engine.run_scheduled(rules_of(ctx, target), rule, _record(ctx, target, {}, row), rule_env(ctx))
    return {k: target.values.json_value(k, v) for k, v in changed.items()}


def run_action(ctx: Context, target: Target, compiled: engine.Compiled, row: Mapping, inputs: Mapping,
               created: list[dict]) -> dict:
    """A pack action's code on one stored record: the changes it makes to the record, as input
    values for an update (ValidationError if it called `error()`, RuleFailed if it broke). The
    records it creates, through the record service as the acting user, are added to `created`
    as {"entity", "id"}; the caller's transaction holds them, so a refusal drops them too."""
    with _VERDICTS:
        changed = engine.run_action(rules_of(ctx, target), compiled, _record(ctx, target, {}, row), inputs,
                                    rule_env(ctx, created))
    return {k: target.values.json_value(k, v) for k, v in changed.items()}


def _record(ctx: Context, target: Target, values: Mapping, old: Mapping | None) -> dict:
    """Field values as rule code sees them: the stored row, with this write's values over it."""
    entity = target.entity
    keys = ctx.catalog.derived(("rule_record_keys", entity.name), lambda: tuple(
        f.name for f in entity.fields if f.has_column) + ("id", "owner_id", "record_type"))
    base = dict.fromkeys(keys) if old is None else {k: old[k] if k in old else None for k in keys}
    if values.keys() <= base.keys():  # the usual case, in one pass in C
        base.update(values)
    else:
        base |= {k: v for k, v in values.items() if k in base}
    return _in_utc(ctx, entity, base)


def _in_utc(ctx: Context, entity, record: dict) -> dict:
    """SQLite gives stored datetimes back without their offset (they are UTC); rule code
    compares them with `now()`, which has one, so they get it back."""
    names = ctx.catalog.derived(("datetime_keys", entity.name), lambda: tuple(
        f.name for f in entity.fields if f.has_column and f.value_type == "datetime"))
    for name in names:
        value = record[name]
        if value is not None and value.tzinfo is None:
            record[name] = value.replace(tzinfo=timezone.utc)
    return record


def rule_env(ctx: Context, created: list[dict] | None = None) -> engine.Env:
    """What rule code may reach, as the acting user: reads and creates through the record service."""
    def query(entity: str, filter: str | None = None, limit: int = 50) -> list[dict]:
        wanted = min(int(limit), QUERY_CAP)
        return list_records(ctx, str(entity), ListQuery(filter=filter, limit=max(wanted, 1))).data

    def count(entity: str, filter: str | None = None) -> int:
        """How many records match, however many: what `query` (at most 200) cannot say."""
        return list_records(ctx, str(entity), ListQuery(filter=filter, limit=1, count=True)).count

    def create(entity: str, values: Mapping) -> dict:
        if _depth.get() >= MAX_DEPTH:
            raise RuleFailed(f"rules created records {MAX_DEPTH} levels deep; a trigger is probably calling itself")
        token = _depth.set(_depth.get() + 1)
        try:
            from packwork.runtime.records.writes import create_record  # writes imports this module
            made = create_record(ctx, str(entity), dict(values))
        finally:
            _depth.reset(token)
        if created is not None:
            created.append({"entity": str(entity), "id": made["id"]})
        return made

    user = {"id": ctx.actor.user_id, "roles": sorted(ctx.actor.roles)}
    return engine.Env(user, ctx.now, query, create, count, lambda: ctx.settings)


class _Verdicts:
    """`with _VERDICTS:` turns what rules say into the record service's errors. A class, not a
    @contextmanager: it is entered twice on every save of a record with rules, and a
    generator-based context manager costs a few microseconds each time."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> None:
        if isinstance(error, engine.Refused):
            raise ValidationError("a rule refused the write", error.errors) from None
        if isinstance(error, RuleError):
            raise RuleFailed.of(error) from None


_VERDICTS = _Verdicts()  # no state: one serves every save
