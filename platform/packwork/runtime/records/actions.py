"""Pack actions: named operations a user runs on one record (a button on its page, a POST in
the API), declared as rules of kind `action` and run in the rule sandbox.

Running one is a single unit of work, inside a savepoint of the caller's transaction: the
record is read and locked (404 unless the actor may read it), the actor must hold one of the
action's roles (if it names any) and its grant on this record (403), the version sent must be
the record's (428 if none, 409 if stale), its condition must hold (409), and the inputs must be
valid (422). Then the code runs with the trigger machinery's context (`query`, `count` and
`create` as the actor, `error`, settings); what it assigns to `record` is saved as an update of
the record through the record service, with only the elevation the action declares
(`writes`, see writes.Elevation). Any refusal or failure rolls back the savepoint, so the
records it created are gone too."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from packwork.errors import BadRequest, Conflict, NotFound, PermissionDenied, PreconditionRequired, \
    ValidationError
from packwork.metadata.access import ADMIN_ROLE
from packwork.metadata.filters import parse_filter
from packwork.metadata.model import Entity, Rule
from packwork.rules import engine
from packwork.runtime.query import FilterContext, compile_filter
from packwork.runtime.records import business_rules, core, writes
from packwork.runtime.records.core import Context, Target
from packwork.runtime.system import pw_user
from packwork.runtime.values import EntityValues


def declared(ctx: Context, entity: Entity) -> list[engine.Compiled]:
    """The entity's actions, compiled, in pack order."""
    return list(core.rules_of_entity(ctx.catalog, entity).actions.values())


def may_run(ctx: Context, entity: Entity, rule: Rule) -> bool:
    """Whether the actor may run the action on some record: one of its roles, if it names
    any, and its grant at some scope."""
    roles = rule.action.roles
    if roles and ctx.actor.user_id is not None and ADMIN_ROLE not in ctx.actor.roles \
            and not ctx.actor.roles & set(roles):
        return False
    return ctx.access.policy(entity.name).reach(rule.action.grant).granted


def runnable(ctx: Context, name: str) -> list[Rule]:
    """The actions of entity `name` the actor may run on some of its records."""
    entity = core.entity_for(ctx, name)
    return [c.rule for c in declared(ctx, entity) if may_run(ctx, entity, c.rule)]


def available_actions(ctx: Context, name: str, record_id: int) -> list[Rule]:
    """The actions the actor may run on this record now (which buttons its page shows): the
    same checks `run_action` makes, but the version and the inputs. 404 unless the actor may
    read the record."""
    target = core.target_for(ctx, name, "read")
    actions = declared(ctx, target.entity)
    row = core.fetch(ctx, target, record_id)  # even with no actions: an unreadable record is a 404
    return [c.rule for c in actions if _offered(ctx, target, row, c.rule)]


def run_action(ctx: Context, name: str, record_id: int, action_name: str, body: object,
               version: int | None = None) -> dict:
    """Run action `action_name` on the record: {"record": the record as it now is, "created":
    [{"entity", "id"}, ...] of the records the action created}."""
    target = core.target_for(ctx, name, "read")
    compiled = core.rules_of_entity(ctx.catalog, target.entity).actions.get(action_name)
    if compiled is None:
        raise NotFound(f"{name!r} has no action {action_name!r}")
    rule = compiled.rule
    version, given = _body(body, version)
    row = core.fetch(ctx, target, record_id, for_update=True)
    if not may_run(ctx, target.entity, rule):
        raise PermissionDenied(f"you may not run {action_name!r} on {name} records")
    core.require_row(ctx, target, row, rule.action.grant)
    if version is None:
        raise PreconditionRequired("send the version you read, in If-Match or as `version` in the body",
                                   {"version": ["is required to run an action"]})
    if row["version"] != version:
        raise core.stale(ctx, target, row)
    if not _condition_holds(ctx, target, row, rule):
        raise Conflict(f"{action_name!r} is not available for {name} {record_id} now",
                       {"_action": [f"needs {rule.action.condition}"]})
    inputs = _inputs(ctx, target, rule, given)
    created: list[dict] = []
    with ctx.conn.begin_nested():  # a refusal drops what the action created, whatever the caller does
        changes = business_rules.run_action(ctx, target, compiled, row, inputs, created)
        if changes:
            record = writes.update_by_action(ctx, name, record_id, changes, row["version"],
                                             writes.Elevation(frozenset(rule.action.writes)))
        else:
            record = core.dump(ctx, target, core.fetch(ctx, target, record_id))
    return {"record": record, "created": created}


def _body(body: object, version: int | None) -> tuple[int | None, Mapping]:
    if body is None:
        body = {}
    if not isinstance(body, Mapping) or not body.keys() <= {"version", "inputs"}:
        raise BadRequest("send a JSON object with `version` and, if the action takes any, `inputs`",
                         {k: ["is not a key of an action's body"] for k in body} if isinstance(body, Mapping) else {})
    given = body.get("inputs", {})
    if not isinstance(given, Mapping):
        raise BadRequest("inputs must be an object", {"inputs": ["must be an object"]})
    if "version" in body:
        sent = body["version"]
        if isinstance(sent, bool) or not isinstance(sent, int):
            raise BadRequest("version must be an integer", {"version": ["must be an integer"]})
        if version is not None and sent != version:
            raise BadRequest("If-Match and the body's version disagree", {"version": ["disagrees with If-Match"]})
        version = sent
    return version, given


def _offered(ctx: Context, target: Target, row: Mapping, rule: Rule) -> bool:
    return may_run(ctx, target.entity, rule) and \
        core.within(ctx, target, row, ctx.access.rows(rule.action.grant, target.entity, target.table)) and \
        _condition_holds(ctx, target, row, rule)


def _condition_holds(ctx: Context, target: Target, row: Mapping, rule: Rule) -> bool:
    """The action's condition, on the stored record. It is the pack's own filter, not the
    actor's, so it may test fields hidden from them (it tells only whether a button shows)."""
    if not rule.action.condition:
        return True
    context = FilterContext(ctx.catalog.metadata, ctx.catalog.tables, ctx.actor.user_id, ctx.now.date(), ctx.now,
                            settings=ctx.settings)
    predicate = compile_filter(parse_filter(rule.action.condition), target.entity, context)
    return core.within(ctx, target, row, predicate)


def input_values(ctx: Context, entity: Entity, rule: Rule) -> EntityValues:
    """The action's inputs' value schemas, made once per metadata version."""
    shape = Entity(f"{entity.name}.{rule.name}", rule.action.label, rule.action.label, rule.action.inputs)
    return ctx.catalog.derived(("action_inputs", entity.name, rule.name),
                               lambda: EntityValues(shape, ctx.catalog.metadata))


def _inputs(ctx: Context, target: Target, rule: Rule, given: Mapping) -> dict:
    """The inputs as values of their types, with defaults, every one present (None if not
    given); a reference must point at a live record the actor may read."""
    names = [f.name for f in rule.action.inputs]
    unknown = {k: [f"is not an input of {rule.name!r}"] for k in given if k not in names}
    if unknown:
        raise BadRequest("the inputs name fields the action does not take", unknown)
    values = dict.fromkeys(names) | input_values(ctx, target.entity, rule).load(dict(given), creating=True)
    errors = {}
    for field in rule.action.inputs:
        value = values.get(field.name)
        if value is None or field.type not in ("reference", "user"):
            continue
        if field.type == "user":
            found = ctx.conn.execute(sa.select(pw_user.c.id).where(pw_user.c.id == value)).first() is not None
        else:
            try:
                core.fetch(ctx, core.target_for(ctx, field.target, "read"), value)
                found = True
            except (NotFound, PermissionDenied):
                found = False
        if not found:
            errors[field.name] = [f"there is no {'user' if field.type == 'user' else field.target} {value}"]
    if errors:
        raise ValidationError("some inputs are not valid", errors)
    return values
