"""Writing records. Each write runs, in order: permission check -> coercion and validation from
metadata -> rules hook -> SQL -> audit entry, all inside the caller's transaction, so a refused
or failed write leaves nothing behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from packwork.errors import BadRequest, Conflict, PermissionDenied, PreconditionRequired, RequestError, \
    ValidationError
from packwork.runtime import audit
from packwork.runtime.records import business_rules, core
from packwork.runtime.records.core import Context, Target
from packwork.runtime.system import pw_user
from packwork.runtime.values import same_value

MAX_BULK = 500


@dataclass(frozen=True, slots=True)
class Elevation:
    """What a pack action declares (`writes:`) it may change on its own record beyond the
    actor's role, and nothing more: fields the role holds read-only, and the owner, which it
    may set only to the acting user or to nobody (claiming from a pool, releasing to it)
    without the transfer grant. Hidden fields, stage grants, the update grant and the row
    scope still apply."""

    fields: frozenset[str] = frozenset()

    def owner_change_allowed(self, ctx: Context, new_owner: object) -> bool:
        return "owner_id" in self.fields and new_owner in (ctx.actor.user_id, None)


NO_ELEVATION = Elevation()


def create_record(ctx: Context, name: str, data: object) -> dict:
    target = core.target_for(ctx, name, "create")
    return _insert(ctx, target, data)


def update_record(ctx: Context, name: str, record_id: int, data: object, version: int | None = None) -> dict:
    """Apply `data` to the record if it still has `version` (from If-Match or the body's
    `version`); otherwise refuse with the current record, so nothing is silently overwritten."""
    target = core.target_for(ctx, name, "update")
    return _update(ctx, target, record_id, data, version)


def update_by_action(ctx: Context, name: str, record_id: int, changes: Mapping, version: int,
                     elevation: Elevation) -> dict:
    """An action's changes to its record: `update_record`, but with what the action declared
    it may write beyond the actor's role (see Elevation)."""
    target = core.target_for(ctx, name, "update")
    return _update(ctx, target, record_id, changes, version, elevation)


def delete_record(ctx: Context, name: str, record_id: int, version: int | None = None) -> None:
    """Soft delete: the row stays (restorable) but leaves every list and reference check."""
    target = core.target_for(ctx, name, "delete")
    row = core.fetch(ctx, target, record_id, for_update=True)
    core.require_row(ctx, target, row, "delete")
    if version is not None and version != row["version"]:
        raise core.stale(ctx, target, row)
    _write_row(ctx, target, row, {"deleted_at": ctx.now}, "delete")


def restore_record(ctx: Context, name: str, record_id: int) -> dict:
    """Undo a delete; who may delete a record may restore it."""
    target = core.target_for(ctx, name, "delete")
    row = core.fetch(ctx, target, record_id, deleted_too=True, for_update=True)
    core.require_row(ctx, target, row, "delete")
    if row["deleted_at"] is None:
        raise Conflict(f"{name} {record_id} is not deleted")
    _check_unique(ctx, target, {k: row[k] for k in target.values.unique}, record_id)
    return _write_row(ctx, target, row, {"deleted_at": None}, "restore")


def bulk_write(ctx: Context, name: str, rows: object, action: str = "create") -> list[dict]:
    """Create (rows without `id`) or update (rows with `id` and `version`) many records, all or
    nothing: if any row is refused, every row's problems are reported and none is kept (the
    caller's transaction rolls back). `action` "import" also requires the import grant and
    limits new records' owners to its scope."""
    target = core.target_for(ctx, name, action if action == "import" else None)
    if not isinstance(rows, list) or not rows or len(rows) > MAX_BULK:
        raise BadRequest(f"the body must be a JSON array of 1 to {MAX_BULK} objects")
    results, errors, denied = [], {}, False
    for index, row in enumerate(rows):
        try:
            if isinstance(row, Mapping) and "id" in row:
                changes = {k: v for k, v in row.items() if k != "id"}
                results.append(_update(ctx, target, _record_id(row["id"]), changes, None))
            else:
                results.append(_insert(ctx, target, row, action))
        except RequestError as exc:
            messages = exc.errors or {"_": [exc.detail]}
            errors |= {f"{index}.{field}": list(m) for field, m in messages.items()}
            denied = denied or isinstance(exc, PermissionDenied)
    if errors:
        rows_named = sorted({int(key.split(".")[0]) for key in errors})
        refusal = PermissionDenied if denied else ValidationError  # 403 if any row was not allowed
        raise refusal(f"nothing was written: row(s) {', '.join(map(str, rows_named))} refused", errors)
    return results


def _record_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("id must be a positive integer", {"id": ["must be a positive integer"]})
    return value


def _insert(ctx: Context, target: Target, data: object, action: str = "create") -> dict:
    return core.dump(ctx, target, insert_row(ctx, target, data, action))


# -- the steps of a create, shared with the batched creates of `records.batch` -----------------


@dataclass(frozen=True, slots=True)
class Creating:
    """What every new record's body is checked against, for one actor and entity (the same for
    each record of a batch, so a batch works it out once)."""

    hidden: frozenset[str]  # keys refused as if they did not exist
    read_only: frozenset[str]  # keys refused with a 403
    grants: tuple[str, ...]  # "create", then the import grant when importing: the owner must be in both


def creating(ctx: Context, target: Target, action: str = "create") -> Creating:
    """403 unless the actor may create records of the entity at all."""
    ctx.access.require("create", target.entity)
    return Creating(core.hidden_keys(ctx, target), target.values.keys_of(ctx.access.read_only(target.entity)),
                    tuple(dict.fromkeys(("create", action))))  # in this order: the message is stable


def insert_row(ctx: Context, target: Target, data: object, action: str = "create") -> Mapping:
    """One create, every step in order; the stored row (not filtered for the actor)."""
    values = new_values(ctx, target, creating(ctx, target, action), data)
    _check_links(ctx, target, values, None)
    values, later = with_create_rules(ctx, target, values)
    row = ctx.conn.execute(ctx.catalog.statements(target.entity.name).insert,
                           values | system_values(ctx)).mappings().one()
    row, set_by_rules = business_rules.after_insert(ctx, target, row, later)
    audit.record_change(ctx.conn, target.entity.name, row["id"], "create", ctx.actor.user_id, ctx.now,
                        creation_changes(target, row, values, set_by_rules))
    return row


def new_values(ctx: Context, target: Target, checks: Creating, data: object) -> dict:
    """A new record's body as column values: the keys it may write, loaded and checked, with
    defaults, its owner (the actor unless it names one within the actor's scope) and its
    record type. Nothing here reads the database, beyond the actor's team once."""
    _refuse_keys(target, data, checks.hidden, checks.read_only)
    values = target.values.load(data, creating=True)
    values.setdefault("owner_id", ctx.actor.user_id)
    for granted in checks.grants:
        if not ctx.access.may_own(granted, target.entity, values["owner_id"]):
            raise PermissionDenied(f"you may not {granted} {target.entity.name} records owned by user "
                                   f"{values['owner_id']}", {"owner_id": ["is outside what you may " + granted]})
    if target.entity.record_types and values.get("record_type") is None:
        values["record_type"] = target.entity.record_types[0].name
    return values


def with_create_rules(ctx: Context, target: Target, values: dict) -> tuple[dict, tuple]:
    """Validations and computed fields, then the create triggers that may run before the
    INSERT; returns the values to insert and the triggers left for after it."""
    values |= business_rules.before_write(ctx, target, values, None)
    early, later = business_rules.before_insert(ctx, target, values)
    values |= early  # what triggers set before the INSERT is written by it: no second UPDATE
    return values, later


def system_values(ctx: Context) -> dict:
    return {"created_at": ctx.now, "updated_at": ctx.now, "created_by": ctx.actor.user_id, "version": 1}


def creation_changes(target: Target, row: Mapping, values: Mapping, set_by_rules: Mapping) -> dict[str, list]:
    """A create's audit entry: each key written (the body's, then what triggers set after the
    INSERT) that holds a value, as stored, as JSON."""
    convert = target.values.to_json
    changes = {}
    for key in [*values, *(k for k in set_by_rules if k not in values)]:
        value = row[key]
        if value is not None:
            to_json = convert.get(key)
            changes[key] = [None, value if to_json is None else to_json(value)]
    return changes


def _update(ctx: Context, target: Target, record_id: int, data: object, version: int | None,
            elevation: Elevation = NO_ELEVATION) -> dict:
    ctx.access.require("update", target.entity)
    if isinstance(data, Mapping) and "version" in data:
        data = dict(data)
        body_version = data.pop("version")
        if isinstance(body_version, bool) or not isinstance(body_version, int):
            raise BadRequest("version must be an integer", {"version": ["must be an integer"]})
        if version is not None and body_version != version:
            raise BadRequest("If-Match and the body's version disagree", {"version": ["disagrees with If-Match"]})
        version = body_version
    if version is None:
        raise PreconditionRequired(
            "send the version you read, in If-Match or as `version` in the body",
            {"version": ["is required to update"]})
    _refuse_restricted(ctx, target, data, elevation)
    values = target.values.load(data, creating=False)
    row = core.fetch(ctx, target, record_id, for_update=True)
    core.require_row(ctx, target, row, "update")
    if row["version"] != version:
        raise core.stale(ctx, target, row)
    changed = {k: v for k, v in values.items() if not same_value(row[k], v)}
    if not changed:
        return core.dump(ctx, target, row)
    _require_moves(ctx, target, row, changed, elevation)
    _check_links(ctx, target, changed, record_id)
    changed |= business_rules.before_write(ctx, target, changed, row)
    return _write_row(ctx, target, row, changed, "update")


def update_read_rows(ctx: Context, name: str, batch: list[tuple[Mapping, dict]]) -> dict[int, RequestError]:
    """Apply `changes` to each `row` already read (and locked) in this transaction, as a
    scheduled rule does over a batch: the same checks as `update_record` for each record, then
    one UPDATE and one audit insert for the whole batch. An entity with triggers is written
    record by record (a trigger needs the written row). Returns the refused records' errors;
    the others are written."""
    target = core.target_for(ctx, name, "update")
    if business_rules.rules_of(ctx, target).triggers:
        return _update_one_by_one(ctx, target, batch)
    refused, ready = {}, []
    for row, changes in batch:
        try:
            _refuse_restricted(ctx, target, changes)
            values = target.values.load(changes, creating=False)
            core.require_row(ctx, target, row, "update")
            changed = {k: v for k, v in values.items() if not same_value(row[k], v)}
            if changed:
                _require_moves(ctx, target, row, changed)
                _check_links(ctx, target, changed, row["id"])
                changed |= business_rules.before_write(ctx, target, changed, row)
                ready.append((row, changed))
        except RequestError as exc:
            refused[row["id"]] = exc
    for keys in {frozenset(changed) for _, changed in ready}:
        group = [(row, changed) for row, changed in ready if frozenset(changed) == keys]
        _write_rows(ctx, target, group, sorted(keys))
    return refused


def _update_one_by_one(ctx: Context, target: Target, batch: list[tuple[Mapping, dict]]) -> dict[int, RequestError]:
    refused = {}
    for row, changes in batch:
        try:
            with ctx.conn.begin_nested():  # a trigger may refuse after the row is written
                _update(ctx, target, row["id"], changes, row["version"])
        except RequestError as exc:
            refused[row["id"]] = exc
    return refused


def _write_rows(ctx: Context, target: Target, group: list[tuple[Mapping, dict]], keys: list[str]) -> None:
    table = target.table
    statement = table.update().where(table.c.id == sa.bindparam("row_id"),
                                     table.c.version == sa.bindparam("row_version")).values(
        {k: sa.bindparam(f"new_{k}") for k in keys} | {"updated_at": ctx.now, "version": table.c.version + 1})
    done = ctx.conn.execute(statement, [{"row_id": row["id"], "row_version": row["version"]}
                                        | {f"new_{k}": changed[k] for k in keys} for row, changed in group])
    if done.rowcount != len(group):  # the caller read the rows FOR UPDATE: only a bug gets here
        raise Conflict(f"{len(group) - done.rowcount} of {len(group)} {target.entity.name} records changed meanwhile")
    convert = target.values.json_value
    audit.record_each(ctx.conn, target.entity.name, "update", ctx.actor.user_id, ctx.now,
                      [(row["id"], {k: [convert(k, row[k]), convert(k, changed[k])] for k in keys})
                       for row, changed in group])


def _refuse_restricted(ctx: Context, target: Target, data: object, elevation: Elevation = NO_ELEVATION) -> None:
    """A field hidden from the actor is refused as if it did not exist; a read-only one, 403
    (unless an action declared it writes it)."""
    if isinstance(data, Mapping):
        _refuse_keys(target, data, core.hidden_keys(ctx, target),
                     target.values.keys_of(ctx.access.read_only(target.entity) - elevation.fields))


def _refuse_keys(target: Target, data: object, hidden: frozenset[str], read_only: frozenset[str]) -> None:
    if not isinstance(data, Mapping):
        return
    unknown = {k: [f"is not a field of {target.entity.name!r}"] for k in data if k in hidden}
    if unknown:
        raise BadRequest("the body names fields that cannot be written", unknown)
    denied = {k: ["is read-only for your role"] for k in data if k in read_only}
    if denied:
        raise PermissionDenied("the body changes fields your role may not change", denied)


def _require_moves(ctx: Context, target: Target, row: Mapping, changed: dict,
                   elevation: Elevation = NO_ELEVATION) -> None:
    """Changing the owner needs the transfer grant (unless an action that declared it claims
    the record for the actor or releases it); moving into a stage a grant restricts needs that
    stage's grant."""
    if "owner_id" in changed and not elevation.owner_change_allowed(ctx, changed["owner_id"]):
        ctx.access.require("transfer", target.entity)
        core.require_row(ctx, target, row, "transfer")
    pipeline = target.entity.pipeline
    if pipeline is not None and pipeline.field in changed and changed[pipeline.field] is not None:
        stage = changed[pipeline.field]
        if not core.within(ctx, target, row, ctx.access.stage_rows(stage, target.entity, target.table)):
            raise PermissionDenied(f"you may not move {target.entity.name} {row['id']} to {stage!r}",
                                   {pipeline.field: [f"moving to {stage!r} is not allowed for your role"]})


def _write_row(ctx: Context, target: Target, row: Mapping, changed: dict, action: str) -> dict:
    table = target.table
    new = ctx.conn.execute(
        table.update().where(table.c.id == row["id"], table.c.version == row["version"])
        .values(**changed, updated_at=ctx.now, version=row["version"] + 1)
        .returning(*table.c)).mappings().first()
    if new is None:  # another writer got in between the read and this update
        raise core.stale(ctx, target, core.fetch(ctx, target, row["id"], deleted_too=True))
    if action == "update":
        new, set_by_rules = business_rules.after_write(ctx, target, new, row)
        changed = changed | set_by_rules
    convert = target.values.json_value
    changes = {k: [convert(k, row[k]), convert(k, new[k])] for k in changed}
    audit.record_change(ctx.conn, target.entity.name, row["id"], action, ctx.actor.user_id, ctx.now, changes)
    return core.dump(ctx, target, new)


def _check_links(ctx: Context, target: Target, values: dict, record_id: int | None) -> None:
    """References must point at live records the actor can see; unique values must be free."""
    errors: dict[str, list[str]] = {}
    for name, linked in target.values.references.items():
        value = values.get(name)
        if value is None or (name == "owner_id" and value == ctx.actor.user_id):
            continue  # the actor exists: the request was authenticated as them
        if linked == "pw_user":
            found = ctx.conn.execute(sa.select(pw_user.c.id).where(pw_user.c.id == value)).first()
        else:
            other = core.target_for(ctx, linked)
            found = ctx.conn.execute(sa.select(other.table.c.id).where(
                other.table.c.id == value, other.table.c.deleted_at.is_(None), *core.scope(ctx, other))).first()
        if found is None:
            errors[name] = [f"there is no {'user' if linked == 'pw_user' else linked} {value}"]
    if errors:
        raise ValidationError("some references point at nothing", errors)
    _check_unique(ctx, target, {k: values[k] for k in target.values.unique if values.get(k) is not None},
                  record_id)


def _check_unique(ctx: Context, target: Target, values: Mapping, record_id: int | None) -> None:
    table, errors = target.table, {}
    for name, value in values.items():
        if value is None:
            continue
        clash = ctx.conn.execute(sa.select(table.c.id).where(
            table.c[name] == value, table.c.deleted_at.is_(None),
            table.c.id != (record_id or 0)).limit(1)).scalar()
        if clash is not None:
            errors[name] = [f"{value!r} is already used by {target.entity.name} {clash}"]
    if errors:
        raise Conflict("a unique value is already taken", errors)
