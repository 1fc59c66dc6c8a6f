"""Plain data: the values that may cross into and out of the sandbox, measured and copied
without trusting their size or shape.

None, bool, int, float, str, Decimal, date and datetime, and lists, tuples and dicts of them
(dict keys scalars); Records count as plain data too. Anything else (functions, sets,
iterators, modules, host objects) is not, and never crosses. Copies of aware datetimes are in
UTC with a fixed offset: a database driver's zone objects do not pickle to a worker.
"""

from __future__ import annotations

import reprlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from packwork.rules.meter import MAX_INT_BITS, check_size, int_too_big, too_big
from packwork.rules.record import Record, trusted

MAX_NESTING = 50            # depth of nested data
MAX_OUTPUT = 1_000_000      # items and characters in the namespace a run returns

NoneType = type(None)
SCALARS = frozenset({NoneType, bool, int, float, str, Decimal, date, datetime})
SHARED = SCALARS - {datetime}  # copied as themselves; a datetime may need its zone made UTC


def plain_size(value, budget: int = MAX_OUTPUT) -> int | None:
    """Items and characters in `value` if it is plain data, None if it is not. Stops (RuleLimit)
    past `budget` or MAX_NESTING levels, so cycles and shared sub-lists cost bounded work."""
    total, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is str:
            total += len(item)
        elif kind in SCALARS:
            total += 1
            if kind is int and item.bit_length() > MAX_INT_BITS:
                raise int_too_big(item.bit_length())
        elif depth >= MAX_NESTING:
            raise too_big(f"data nested more than {MAX_NESTING} levels deep")
        elif kind is list or kind is tuple:
            total += 1 + len(item)
            stack.extend((child, depth + 1) for child in item)
        elif kind is dict or kind is Record:
            pairs = item.items() if kind is dict else item._values.items()
            total += 1 + len(pairs)
            for key, child in pairs:
                if type(key) is str:  # the common shape, a record's field, measured in place
                    total += len(key)
                elif type(key) in SCALARS:
                    stack.append((key, depth + 1))
                else:
                    return None
                kind_of_child = type(child)
                if kind_of_child is str:
                    total += len(child)
                elif kind_of_child in SCALARS:
                    total += 1
                    if kind_of_child is int and child.bit_length() > MAX_INT_BITS:
                        raise int_too_big(child.bit_length())
                else:
                    stack.append((child, depth + 1))
        else:
            return None
        if total > budget:
            raise too_big(f"more than {budget:,} items and characters of data")
    return total


_OTHER_SCALARS = SHARED - {NoneType, str, int}  # one item each, shared by copies
_SHARED_ZONES = frozenset({NoneType, timezone})  # the zones of datetimes copy_plain shares as they are
_TEXT = frozenset({str})


def scalar_size(values: dict) -> int | None:
    """What plain_size says of a dict (or a Record's values) whose keys are texts and whose
    values copy_plain shares as they are: scalars, and datetimes naive or in a `timezone`. That
    is the shape records usually have, and this measures it in one pass over the values,
    about twice as fast as plain_size. None for any other shape, and for an int plain_size
    would refuse: then plain_size gives the answer, or the error."""
    if not _TEXT.issuperset(map(type, values)):  # exactly str: a subclass could run code
        return None
    total = 1 + len(values) + len("".join(values))
    for value in values.values():
        if value is None:
            total += 1
            continue
        kind = type(value)
        if kind is str:
            total += len(value)
        elif kind is int:
            if value.bit_length() > MAX_INT_BITS:
                return None
            total += 1
        elif kind in _OTHER_SCALARS or kind is datetime and type(value.tzinfo) in _SHARED_ZONES:
            total += 1
        else:
            return None
    return total


def copy_plain(value):
    """A deep copy of plain data (scalars are shared: they are immutable)."""
    kind = type(value)
    if kind in SHARED:
        return value
    if kind is list:
        return [item if type(item) in SHARED else copy_plain(item) for item in value]
    if kind is tuple:
        return tuple(copy_plain(item) for item in value)
    if kind is dict:
        return {key: item if type(item) in SHARED else copy_plain(item) for key, item in value.items()}
    if kind is Record:  # its field names were checked when the original was made
        return trusted({key: item if type(item) in SHARED else copy_plain(item)
                        for key, item in value._values.items()})
    if kind is datetime and value.tzinfo is not None and type(value.tzinfo) is not timezone:
        return value.astimezone(timezone.utc)
    return value


def to_text(value, convert=str) -> str:
    """`str(value)` (or repr, ascii), bounded: containers are measured before they are printed."""
    kind = type(value)
    if kind is str and convert is str:
        return value
    if isinstance(value, BaseException):
        return exception_text(value, with_type=False)
    if kind not in SCALARS and kind is not timedelta:
        size = plain_size(value)
        if size is None:
            return f"<{kind.__name__}>"
        check_size(size, "a text")  # the printed form is a small multiple of this
    return convert(value)


class _Repr(reprlib.Repr):
    """Short reprs for error messages: never the whole of a huge value."""

    def __init__(self):
        super().__init__()
        self.maxstring = self.maxother = 80
        self.maxlong = 80

    def repr_Record(self, value: Record, level: int) -> str:
        return "Record(" + self.repr1(value._values, level - 1) + ")"

    def repr_int(self, value: int, level: int) -> str:
        return super().repr_int(value, level) if value.bit_length() < 1000 else "<a very large int>"

    def repr_instance(self, value, level: int) -> str:
        if type(value) in SCALARS or type(value) is timedelta:
            return super().repr_instance(value, level)
        return f"<{type(value).__name__}>"


_REPR = _Repr()


def exception_text(exc: BaseException, *, with_type: bool = True) -> str:
    """`ValueError: text` for an exception rule code raised, bounded in length."""
    args = exc.args
    if isinstance(exc, KeyError) and len(args) == 1:
        text = _REPR.repr(args[0])
    elif len(args) == 1 and type(args[0]) is str:
        text = args[0] if len(args[0]) <= 500 else args[0][:500] + "..."
    else:
        text = ", ".join(_REPR.repr(arg) for arg in args[:5])
    name = type(exc).__name__
    if not with_type:
        return text
    return f"{name}: {text}" if text else name
