"""A record as rule code sees it: `record.amount` to read, `record.amount = 5` to write.

A Record is data, not an object with behaviour: a dict of field values behind attribute
syntax. Rule code reaches its fields only through the sandbox's guards (guards.py), which
allow reading and writing the keys it was built with and nothing else, and writing only plain
values. Host code may use the same attribute syntax, or `record["name"]`, which also works for
a field named like a method (`as_dict`). It pickles as its dict, so it crosses to a pool
worker and back; the sandbox copies the values a rule changed back into the caller's Record
when the rule succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping


_CHECKED_NAMES: set[tuple] = set()  # field names, in order, already found valid


class Record:
    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, object] | None = None, /, **fields: object):
        values = {**(values or {}), **fields} if fields else dict(values or ())
        names = tuple(values)  # a tuple, not a frozenset: it is made on every rule run
        if names not in _CHECKED_NAMES:  # an entity's records all share these names
            bad = [name for name in values if not isinstance(name, str) or not name.isidentifier()
                   or name.startswith("_")]
            if bad:
                raise ValueError(f"record field names must be identifiers without a leading underscore: {bad}")
            if len(_CHECKED_NAMES) < 1_000:
                _CHECKED_NAMES.add(names)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> object:
        # only called for names that are not slots or methods: the fields
        if name.startswith("_"):  # includes `_values` before __init__ ran (copy, pickle)
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"record has no field {name!r}") from None

    def __setattr__(self, name: str, value: object) -> None:
        if name not in self._values:
            raise AttributeError(f"record has no field {name!r}")
        self._values[name] = value

    def __getitem__(self, name: str) -> object:
        return self._values[name]

    def __setitem__(self, name: str, value: object) -> None:
        self.__setattr__(name, value)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and other._values == self._values

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"Record({self._values!r})"

    def __reduce__(self):
        return Record, (self._values,)

    def as_dict(self) -> dict[str, object]:
        """A copy of the field values."""
        return dict(self._values)


def trusted(values: dict[str, object]) -> Record:
    """A Record over `values` (not copied) whose field names are already known to be valid:
    they come from another Record. Copies made on every rule run skip the names check."""
    record = Record.__new__(Record)
    object.__setattr__(record, "_values", values)
    return record
