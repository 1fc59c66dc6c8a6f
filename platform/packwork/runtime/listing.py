"""List queries: what a caller asks for (filter, sort, fields, page) and the keyset page SQL.

Pages use keyset pagination, never OFFSET: the cursor holds the sort values of the last row
sent, and the next page starts strictly after them, so a page costs the same at row 10 and at
row 1,000,000 and rows inserted meanwhile are neither skipped nor repeated. NULLs sort where the
database puts them (so plain indexes serve the sort); `id` breaks ties.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from packwork.errors import BadRequest
from packwork.metadata.model import Entity

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
PARAMS = frozenset({"filter", "sort", "fields", "expand", "limit", "after", "count"})
UNSORTABLE = frozenset({"multi_choice", "long_text"})


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: str | None = None
    equals: tuple[tuple[str, str], ...] = ()  # `field=value` shorthand
    sort: str | None = None
    fields: tuple[str, ...] | None = None
    expand: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    after: str | None = None
    count: bool = False
    count_up_to: int | None = None  # count, but stop at this many + 1 (what a page can afford)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "ListQuery":
        """From URL query parameters; anything not a known parameter is a `field=value` filter."""
        return cls(
            filter=params.get("filter") or None,
            equals=tuple((k, v) for k, v in params.items() if k not in PARAMS),
            sort=params.get("sort") or None,
            fields=split_names(params["fields"]) if params.get("fields") else None,
            expand=split_names(params.get("expand", "")),
            limit=_limit(params.get("limit")),
            after=params.get("after") or None,
            count=_flag("count", params.get("count")),
        )


def split_names(text: str) -> tuple[str, ...]:
    """`a, b,,c` -> ("a", "b", "c"): the comma lists of `fields`, `expand` and `sort`."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}", {"limit": ["out of range"]})
    return int(text)


def _flag(name: str, text: str | None) -> bool:
    if text in (None, "false"):
        return False
    if text == "true":
        return True
    raise BadRequest(f"{name} must be true or false", {name: ["must be true or false"]})


@dataclass(frozen=True, slots=True)
class SortKey:
    column: str
    kind: str
    descending: bool


def parse_sort(text: str | None, entity: Entity, kinds: Mapping[str, str]) -> list[SortKey]:
    """`-amount,name` -> sort keys, `id` appended as the tie-breaker. `kinds` maps each
    sortable column to its field type; any other name is refused."""
    keys: list[SortKey] = []
    for part in split_names(text or "-id"):
        descending = part.startswith("-")
        name = part.lstrip("-+")
        kind = kinds.get(name)
        if kind is None or kind in UNSORTABLE:
            raise BadRequest(f"cannot sort {entity.name!r} by {name!r}",
                             {"sort": [f"{name!r} is not a sortable field of {entity.name!r}"]})
        if any(k.column == name for k in keys):
            raise BadRequest(f"{name!r} appears twice in sort", {"sort": [f"{name!r} appears twice"]})
        keys.append(SortKey(name, kind, descending))
    if not any(k.column == "id" for k in keys):
        keys.append(SortKey("id", "integer", False))
    return keys


def nulls_largest(dialect: sa.Dialect) -> bool:
    """Where NULLs sort is left to the database, so its plain indexes serve the ORDER BY:
    PostgreSQL sorts them as the largest values, SQLite as the smallest."""
    return dialect.name != "sqlite"


def order_by(table: sa.Table, keys: list[SortKey]) -> list[sa.ColumnElement]:
    return [table.c[k.column].desc() if k.descending else table.c[k.column].asc() for k in keys]


def after(table: sa.Table, keys: list[SortKey], values: list, largest: bool) -> sa.ColumnElement:
    """Rows strictly after the row whose sort values are `values`, in the order of `keys`, where
    NULLs are the largest values if `largest` (else the smallest)."""
    alternatives = []
    for i, key in enumerate(keys):
        column, value = table.c[key.column], values[i]
        nulls_come_last = largest != key.descending
        if value is None:
            beyond = sa.false() if nulls_come_last else column.is_not(None)
        else:
            beyond = column < value if key.descending else column > value
            if nulls_come_last:
                beyond = sa.or_(beyond, column.is_(None))
        equal = [table.c[k.column].is_(None) if v is None else table.c[k.column] == v
                 for k, v in zip(keys[:i], values[:i])]
        alternatives.append(sa.and_(*equal, beyond))
    return sa.or_(*alternatives)


def encode_cursor(keys: list[SortKey], row: Mapping) -> str:
    payload = [_signature(keys), [_to_json(row[k.column]) for k in keys]]
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keys: list[SortKey]) -> list:
    """The sort values a cursor holds; 400 if it is malformed or made for another sort."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        signature, raw = json.loads(text)
        if signature != _signature(keys) or len(raw) != len(keys):
            raise ValueError
        return [_from_json(value, key.kind) for value, key in zip(raw, keys)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, InvalidOperation):
        raise BadRequest("the `after` cursor is not valid for this list and sort",
                         {"after": ["not a cursor this list returned"]}) from None


def _signature(keys: list[SortKey]) -> str:
    return ",".join(("-" if k.descending else "") + k.column for k in keys)


def _to_json(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return str(Decimal(str(value)))
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _from_json(value: object, kind: str) -> object:
    if value is None:
        return None
    if kind in ("integer", "reference", "user"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError
        return value
    if kind in ("decimal", "money", "percent"):
        return Decimal(str(value))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError
        return value
    if not isinstance(value, str):
        raise ValueError
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "datetime":
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return value
