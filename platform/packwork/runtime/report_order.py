"""The order of a report's groups: by default the keys' natural order (options and stages as
declared, false before true, dates in time, names and titles alphabetically, blanks last);
with `sort`, by a measure or a key, NULLs as the smallest values (as the SQL sort has them)."""

from __future__ import annotations

from collections.abc import Sequence

from packwork.metadata.model import Entity, ReportKey, SortKey
from packwork.runtime.records.summary import key_kind


def _rank(entity: Entity, key: ReportKey, labels: dict[object, str]):
    """A function giving one key's value its place in the natural order."""
    kind = key_kind(entity, key.field)
    if key.bucket is None and kind in ("choice", "stage"):
        places = {c.value: i for i, c in enumerate(entity.field(key.field).choices)}
        return lambda v: (v is None, places.get(v, len(places)), str(v))
    if key.bucket is None and kind in ("user", "reference"):
        return lambda v: (v is None, labels.get(v, "").casefold(), v or 0)
    return lambda v: (v is None, v if v is not None else 0)


def natural_order(entity: Entity, keys: Sequence[ReportKey], values: list[tuple],
                  labels: list[dict[object, str]]) -> list[tuple]:
    ranks = [_rank(entity, key, labels[i]) for i, key in enumerate(keys)]
    return sorted(values, key=lambda group: tuple(rank(v) for rank, v in zip(ranks, group)))


def sort_groups(ordered: list[tuple], figures: dict[tuple, dict], sort: SortKey,
                key_fields: list[str]) -> list[tuple]:
    """`ordered` sorted by `sort`; ties keep their natural order."""
    if sort.field in key_fields:
        index = key_fields.index(sort.field)
        rank = {v: i for i, v in enumerate(dict.fromkeys(group[index] for group in ordered))}
        return sorted(ordered, key=lambda g: rank[g[index]], reverse=sort.descending)

    def figure(group: tuple):
        value = figures[group].get(sort.field)
        return (value is not None, value if value is not None else 0)
    return sorted(ordered, key=figure, reverse=sort.descending)
