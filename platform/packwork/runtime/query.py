"""Filter trees -> SQLAlchemy expressions over an entity's table.

Values are coerced to the field's type and always bound as parameters. A dotted path through
a reference becomes `ref IN (SELECT id FROM target WHERE ...)`, so a caller can add the row
scope of the target entity to that subquery (see `FilterContext.scope`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field as dataclass_field, replace
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

import sqlalchemy as sa

from packwork.metadata.filters import And, Compare, FilterError, In, IsNull, Not, Or, SettingValue, Var, resolve_var
from packwork.metadata.model import Entity, Field, Metadata

TEXT_TYPES = frozenset({"text", "long_text", "email", "phone", "url", "choice", "stage"})
NUMBER_TYPES = frozenset({"integer", "decimal", "money", "percent"})
INT64 = 2**63 - 1
_SYSTEM_TYPES = {"id": "integer", "created_at": "datetime", "updated_at": "datetime", "created_by": "user",
                 "owner_id": "user", "version": "integer", "deleted_at": "datetime", "record_type": "text"}


@dataclass(frozen=True)
class FilterContext:
    metadata: Metadata
    tables: dict[str, sa.Table]
    user_id: int | None
    today: date
    now: datetime
    # extra predicate for rows of a referenced entity reached through a dotted path
    scope: Callable[[str, sa.Table], sa.ColumnElement | None] = lambda entity, table: None
    # fields a caller may not filter on (hidden to them): named as unknown
    hidden: Callable[[str, str], bool] = lambda entity, field: False
    # the pack settings' current values, for `${name}` (read from the database when first used)
    settings: Mapping[str, object] = dataclass_field(default_factory=lambda: MappingProxyType({}))


def field_type(entity: Entity, name: str) -> str | None:
    field = entity.field(name)
    return field.value_type if field is not None else _SYSTEM_TYPES.get(name)


def compile_filter(tree, entity: Entity, context: FilterContext) -> sa.ColumnElement:
    table = context.tables[entity.name]
    if isinstance(tree, And):
        return sa.and_(*(compile_filter(i, entity, context) for i in tree.items))
    if isinstance(tree, Or):
        return sa.or_(*(compile_filter(i, entity, context) for i in tree.items))
    if isinstance(tree, Not):
        return sa.not_(compile_filter(tree.item, entity, context))
    head, rest = tree.path[0], tree.path[1:]
    kind = _known(entity, head, context, tree.position)
    if rest:
        field = entity.field(head)
        if field is None or field.type != "reference":
            raise FilterError(f"{head!r} is not a reference, so '.{rest[0]}' cannot follow it", tree.position)
        target = context.metadata.entities[field.target]
        target_table = context.tables[target.name]
        inner = _replace_path(tree, rest)
        condition = [compile_filter(inner, target, context), target_table.c.deleted_at.is_(None)]
        scoped = context.scope(target.name, target_table)
        if scoped is not None:
            condition.append(scoped)
        return table.c[head].in_(sa.select(target_table.c.id).where(*condition))
    return _leaf(tree, table.c[head], kind, entity.field(head), context)


def _known(entity: Entity, name: str, context: FilterContext, position: int) -> str:
    kind = field_type(entity, name)
    field = entity.field(name)
    if kind is None or context.hidden(entity.name, name) or (field is not None and not field.has_column):
        raise FilterError(f"{name!r} is not a field of {entity.name!r} that can be filtered", position)
    return kind


def _replace_path(tree, path):
    if isinstance(tree, Compare):
        return Compare(path, tree.op, tree.value, tree.position)
    if isinstance(tree, In):
        return In(path, tree.values, tree.negated, tree.position)
    return IsNull(path, tree.negated, tree.position)


def _leaf(tree, column: sa.Column, kind: str, field: Field | None, context: FilterContext):
    if isinstance(tree, IsNull):
        return column.is_not(None) if tree.negated else column.is_(None)
    if isinstance(tree, In):
        values = [coerce(v, kind, tree.position, context) for v in tree.values]
        if kind == "multi_choice":
            raise FilterError("use 'contains' to filter a multi-choice field", tree.position)
        return column.not_in(values) if tree.negated else column.in_(values)
    op, position = tree.op, tree.position
    if op in ("contains", "startswith"):
        return _like(column, kind, tree.value, op, position)
    value = coerce(tree.value, kind, position, context)
    if value is None:
        if op not in ("=", "!="):
            raise FilterError("null can only be compared with = or !=", position)
        return column.is_(None) if op == "=" else column.is_not(None)
    if kind in ("boolean", "multi_choice") and op not in ("=", "!="):
        raise FilterError(f"a {kind} field can only be compared with = or !=", position)
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
            ">": column.__gt__, ">=": column.__ge__}[op](value)


def _like(column: sa.Column, kind: str, value, op: str, position: int):
    if not isinstance(value, str):
        raise FilterError(f"'{op}' needs a text value", position)
    escaped = _text(value, position).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if kind == "multi_choice":  # JSON list text contains the quoted value
        return sa.cast(column, sa.Text).like(f'%"{escaped}"%', escape="\\")
    if kind not in TEXT_TYPES:
        raise FilterError(f"'{op}' works on text fields only", position)
    pattern = f"%{escaped}%" if op == "contains" else f"{escaped}%"
    return sa.func.lower(column).like(pattern.lower(), escape="\\")


def coerce(value, kind: str, position: int, context: FilterContext):
    """A filter literal as a value of the field's type, or a FilterError saying why not."""
    if value is None:
        return None
    if isinstance(value, Var):
        return _variable(value, kind, position, context)
    if isinstance(value, SettingValue):
        value = _setting(value.name, position, context)
        if value is None:
            return None
    try:
        if kind in ("integer", "user", "reference"):
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not -INT64 <= int(value) <= INT64:
                raise ValueError
            return int(value)
        if kind in ("decimal", "money", "percent"):
            if isinstance(value, bool):
                raise ValueError
            return Decimal(str(value))
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "date":
            return date.fromisoformat(str(value))
        if kind == "datetime":
            parsed = datetime.fromisoformat(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, InvalidOperation):
        raise FilterError(f"{value!r} is not a valid {kind} value", position) from None
    if not isinstance(value, str):
        raise FilterError(f"{value!r} is not a valid {kind} value; quote text values", position)
    return _text(value, position)


def _text(value: str, position: int) -> str:
    if "\x00" in value:  # PostgreSQL refuses NUL in text: answer 400, not a database error
        raise FilterError("text values must not contain NUL characters", position)
    return value


def _setting(name: str, position: int, context: FilterContext) -> object:
    if name not in context.settings:
        raise FilterError(f"there is no setting {name!r}", position)
    return context.settings[name]


def _variable(var: Var, kind: str, position: int, context: FilterContext):
    if var.name == "me":
        if kind not in ("user", "integer"):
            raise FilterError("$me can only be compared with a user field", position)
        return context.user_id
    if kind not in ("date", "datetime"):
        raise FilterError(f"${var.name} can only be compared with a date or datetime field", position)
    if var.name == "now":
        return context.now
    if var.setting is not None:  # `$today-${days}d`: the count is the setting's value now
        count = _setting(var.setting, position, context)
        if isinstance(count, bool) or not isinstance(count, int) or abs(count) > 100_000:
            raise FilterError(f"setting {var.setting!r} must be a whole number of at most 100000 to count "
                              f"an offset", position)
        var = replace(var, offset=var.offset * count, setting=None)
    day = resolve_var(var, context.today)
    return day if kind == "date" else datetime.combine(day, time.min, tzinfo=timezone.utc)
