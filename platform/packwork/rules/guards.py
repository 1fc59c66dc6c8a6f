"""Run-time guards. policy.py rewrites rule code so that every operation that can grow, loop,
read an attribute, index, write or catch goes through one of these.

RestrictedPython checks names at compile time but stops none of `'a' * 10**10`, `10**10**10`,
`1 << 10**9`, `while True`, or an attribute walk through a value it cannot see statically. So:

- sizes: no string, list, tuple or dict a rule builds may pass meter.MAX_SIZE items or
  characters, no product, power or shift meter.MAX_INT_BITS bits; checked *before* the
  allocation, and charged to the run's meter.
- iterations: every `for`, comprehension and `while` pass counts against the meter.
- attributes: read only from a whitelist per exact type of plain data (ATTRIBUTES); written
  only on Records, and only their fields, and only with plain values.
- exceptions: rule code may catch only the classes in CATCHABLE, and never a MemoryError or
  RecursionError (`caught`).
"""

from __future__ import annotations

import operator
import re
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal

from RestrictedPython.Guards import guarded_unpack_sequence

from packwork.rules import meter
from packwork.rules.meter import MAX_INT_BITS, charge, check_size, int_too_big, refused, too_big
from packwork.rules.plain import SCALARS, plain_size, to_text
from packwork.rules.record import Record

MAX_WIDTH = 1_000  # widths and precisions in format specs

NUMBERS = frozenset({bool, int, float, Decimal})
INTS = frozenset({bool, int})
SEQUENCES = frozenset({str, list, tuple})


# Operators (BinOp rewritten by policy.py, and augmented assignment)

def mul(a, b):
    # ints of one machine digit (|n| < 2**30), the usual case, are compared without a call
    # (and without naming their types: every opcode counts here); their product fits
    if type(a) is int and type(b) is int and -0x3FFFFFFF <= a <= 0x3FFFFFFF and -0x3FFFFFFF <= b <= 0x3FFFFFFF:
        return a * b
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise int_too_big(a.bit_length() + b.bit_length())
        return a * b
    if ta in NUMBERS and tb in NUMBERS:  # Decimal keeps its context's precision; floats are floats
        return a * b
    sequence, times = (a, b) if tb in INTS else (b, a)
    if type(sequence) in SEQUENCES and type(times) in INTS and times > 0:
        check_size(len(sequence) * times, "a repetition")
    return a * b


def pow_(a, b):
    if type(a) in INTS and type(b) in INTS and b > 0 and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        raise int_too_big(a.bit_length() * b)
    return a ** b


def lshift(a, b):
    if type(a) in INTS and type(b) in INTS and a and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        raise int_too_big(a.bit_length() + b)
    return a << b


def add(a, b):
    ta = type(a)
    if ta in SEQUENCES and type(b) is ta:
        check_size(len(a) + len(b), "a concatenation")
    return a + b


def mod(a, b):
    if type(a) is str:
        raise refused("'%' formatting is not available to rules; use an f-string")
    return a % b


def matmul(a, b):
    raise refused("the '@' operator is not available to rules")


INPLACE = {"+=": add, "*=": mul, "**=": pow_, "<<=": lshift, "%=": mod, "@=": matmul,
           "-=": operator.sub, "/=": operator.truediv, "//=": operator.floordiv,
           ">>=": operator.rshift, "|=": operator.or_, "^=": operator.xor, "&=": operator.and_}


def inplacevar(op: str, target, value):
    return INPLACE[op](target, value)


def star(value):
    """`*value` or `**value` in a literal or call: charge its size before Python expands it."""
    try:
        size = len(value)
    except TypeError:
        return value  # an iterator: whatever produces its items counts them
    check_size(size, "an unpacking")
    return value


# Loops

def getiter(iterable):
    if type(iterable) is Record:
        raise refused("a record cannot be iterated; read its fields by name")
    return meter.passes(iter(iterable))


def _items(obj):
    """Iterating a value to unpack it into names is not a loop pass; it is bounded by its size."""
    if type(obj) is Record:
        raise refused("a record cannot be unpacked; read its fields by name")
    return iter(obj)


def iter_unpack_sequence(iterable, spec, _getiter_):
    """`for a, b in pairs`: one counted pass per pair."""
    for item in getiter(iterable):
        yield guarded_unpack_sequence(item, spec, _items)


def unpack_sequence(value, spec, _getiter_):
    """`a, b = pair`."""
    return guarded_unpack_sequence(value, spec, _items)


def loop() -> None:
    """Called at the top of every `while` body."""
    meter.count_pass()


def caught() -> None:
    """Called first in every `except` body: running out of memory or stack is a limit, which
    `except Exception` must not be able to swallow."""
    error = sys.exc_info()[1]
    if isinstance(error, (MemoryError, RecursionError)):
        raise too_big("the rule ran out of memory" if isinstance(error, MemoryError)
                      else "the rule recursed too deeply")


# Attribute and item access

def getattr_(obj, name: str):
    kind = type(obj)
    if kind is Record:
        try:
            return obj._values[name]
        except KeyError:
            raise AttributeError(f"record has no field {name!r}") from None
    access = ATTRIBUTES.get(kind, {}).get(name)
    if access is None:
        raise refused(f"'{kind.__name__}.{name}' is not available to rules")
    return access(obj, name)


def getitem(obj, key):
    kind = type(obj)
    if kind is Record:
        return obj._values[key]
    if kind not in SUBSCRIPTABLE:
        raise refused(f"a {kind.__name__} cannot be indexed")
    value = obj[key]
    if type(key) is slice:
        charge(len(value))
    return value


def write(obj):
    """The object an assignment `obj.x = ...` or `obj[k] = ...` may change."""
    kind = type(obj)
    if kind is dict:
        return obj
    if kind is list:
        return _ListWriter(obj)
    if kind is Record:
        return _RecordWriter(obj)
    raise refused(f"a {kind.__name__} cannot be changed")


class _ListWriter:
    """Item assignment on a list; a slice assignment may not grow it past MAX_SIZE."""

    __slots__ = ("_list",)

    def __init__(self, target: list):
        self._list = target

    def __setitem__(self, key, value) -> None:
        if type(key) is slice:
            value = list(value)
            replaced = len(range(*key.indices(len(self._list))))
            check_size(len(self._list) - replaced + len(value), "a list")
        self._list[key] = value

    def __delitem__(self, key) -> None:
        del self._list[key]


class _RecordWriter:
    __slots__ = ("_record",)

    def __init__(self, record: Record):
        object.__setattr__(self, "_record", record)

    def __setattr__(self, name: str, value) -> None:
        values = self._record._values
        if name not in values:
            raise AttributeError(f"record has no field {name!r}")
        if plain_size(value) is None:
            raise refused(f"record.{name} may only hold plain data, not a {type(value).__name__}")
        values[name] = value

    __setitem__ = __setattr__

    def __delattr__(self, name: str) -> None:
        raise refused("record fields cannot be deleted; set them to None")

    __delitem__ = __delattr__


def count_call(name: str, args: tuple, kwargs: dict) -> None:
    """Before a callback runs: at most MAX_CALLS per run, and plain data only."""
    meter.count_call()
    if plain_size((args, kwargs)) is None:
        raise refused(f"{name}() takes plain data only")


def apply(func, *args, **kwargs):
    """`f(*args, **kwargs)`; the unpacked values were charged by `star`."""
    return func(*args, **kwargs)


_CONVERSIONS = {ord("s"): str, ord("r"): repr, ord("a"): ascii}
_NUMBER = re.compile(r"\d+")


def format_(value, conversion: int, spec: str) -> str:
    """One `{value!conversion:spec}` of an f-string."""
    if conversion != -1 or type(value) not in SCALARS:
        value = to_text(value, _CONVERSIONS.get(conversion, str))
    if any(int(number) > MAX_WIDTH for number in _NUMBER.findall(spec)):
        raise too_big(f"format widths and precisions are limited to {MAX_WIDTH}")
    if type(value) is Decimal and spec and value.is_finite() and abs(value.adjusted()) > MAX_WIDTH:
        raise too_big(f"formatting a decimal with more than {MAX_WIDTH} digits")
    text = format(value, spec)
    charge(len(text))
    return text


# The attribute whitelist: type -> attribute -> how to hand it out

def _get(obj, name):
    return getattr(obj, name)


def _scan(obj, name):
    """A method that costs the length of its receiver and returns no more than a few times it."""
    method = getattr(obj, name)

    def call(*args, **kwargs):
        charge(len(obj) + 1)
        return method(*args, **kwargs)
    return call


def _grow_by_one(obj, name):
    method = getattr(obj, name)

    def call(*args, **kwargs):
        check_size(len(obj) + 1, f"a {type(obj).__name__}")
        return method(*args, **kwargs)
    return call


def _extend(obj, name):
    method = getattr(obj, name)

    def call(other=(), **kwargs):
        if type(other) not in (list, tuple, dict, str):
            other = list(other)
        check_size(len(obj) + len(other) + len(kwargs), f"a {type(obj).__name__}")
        return method(other, **kwargs)
    return call


def _pad(obj, name):
    method = getattr(obj, name)

    def call(width, *args):
        if type(width) in INTS:
            check_size(width, "a padded text")
        return method(width, *args)
    return call


def _join(separator: str, name):
    def join(parts):
        parts = parts if type(parts) in (list, tuple) else list(parts)
        check_size(sum(len(p) for p in parts if type(p) is str) + len(separator) * len(parts), "a joined text")
        return separator.join(parts)
    return join


def _replace(text: str, name):
    def replace(old, new, count=-1):
        if type(old) is str and type(new) is str and len(new) > len(old):
            found = text.count(old) if old else len(text) + 1
            if count >= 0:
                found = min(found, count)
            check_size(len(text) + found * (len(new) - len(old)), "a replaced text")
        charge(len(text) + 1)
        return text.replace(old, new, count)
    return replace


def _strftime(value, name):
    def strftime(pattern: str) -> str:
        if type(pattern) is not str or len(pattern) > 100:
            raise too_big("a date format is limited to 100 characters")
        return value.strftime(pattern)
    return strftime


def _table(*groups: tuple) -> dict:
    return {name: access for access, names in groups for name in names.split()}


_DATE = ((_get, "year month day weekday isoweekday isoformat toordinal replace"), (_strftime, "strftime"))
ATTRIBUTES: dict[type, dict] = {
    str: _table(
        (_scan, "upper lower title capitalize casefold swapcase strip lstrip rstrip split rsplit "
                "splitlines partition rpartition startswith endswith find rfind index rindex count "
                "isdigit isalpha isalnum isspace isupper islower isnumeric isdecimal removeprefix "
                "removesuffix"),
        (_pad, "ljust rjust center zfill"), (_join, "join"), (_replace, "replace")),
    list: _table((_grow_by_one, "append insert"), (_extend, "extend"),
                 (_scan, "pop remove index count reverse sort copy clear")),
    dict: _table((_get, "get keys values items pop"), (_grow_by_one, "setdefault"), (_extend, "update"),
                 (_scan, "copy clear")),
    tuple: _table((_scan, "index count")),
    Decimal: _table((_get, "quantize normalize to_integral_value is_zero is_signed is_finite copy_abs")),
    date: _table(*_DATE),
    datetime: _table(*_DATE, (_get, "hour minute second microsecond date timestamp")),
    timedelta: _table((_get, "days seconds microseconds total_seconds")),
}
SUBSCRIPTABLE = frozenset({str, list, tuple, dict, range})

# What the rewritten code calls: the names policy.py emits, bound to the functions above.
GUARDS = {
    "_getattr_": getattr_, "_getitem_": getitem, "_write_": write, "_getiter_": getiter,
    "_iter_unpack_sequence_": iter_unpack_sequence, "_unpack_sequence_": unpack_sequence,
    "_inplacevar_": inplacevar, "_apply_": apply, "_mul_": mul, "_pow_": pow_, "_lshift_": lshift,
    "_add_": add, "_mod_": mod, "_matmul_": matmul, "_star_": star, "_format_": format_,
    "_loop_": loop, "_caught_": caught,
}

# The exceptions rule code may name, raise and catch. Nothing here reaches Stop or BaseException.
CATCHABLE = {cls.__name__: cls for cls in (
    Exception, ArithmeticError, ZeroDivisionError, ValueError, TypeError, LookupError, KeyError,
    IndexError, AttributeError)}

