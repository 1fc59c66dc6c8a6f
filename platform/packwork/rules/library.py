"""The vetted library: every function rule code and formulas may call.

Only functions and plain data, never a module: a module hands out its own imports
(`datetime.sys.modules['os']`, `json.codecs.open`). Each function checks what it builds against
the guards' limits before building it, and charges its work to the run's meter. The builtins a
rule sees as types (`str`, `int`, `list`, `date`, `decimal`...) are functions here too;
`isinstance` maps them back to the real types.

`matches(pattern, text)` bounds a regular expression three ways: the pattern is at most
MAX_PATTERN characters and the text MAX_TEXT; patterns with a repeat inside a repeat, an
alternation inside a repeat, or a backreference (the shapes that backtrack exponentially) are
refused; and code that calls `matches` always runs in the pool, under its time limit, which
catches the polynomial cases (`a*a*a*a*b`) the shape test lets through.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from re import _constants as sre, _parser as sre_parse  # the parsed form, to test a pattern's shape

from packwork.rules import guards
from packwork.rules.guards import INTS, NUMBERS
from packwork.rules.meter import MAX_ITERATIONS, charge, check_size, refused, too_big
from packwork.rules.plain import to_text

MAX_PATTERN = 200
MAX_TEXT = 10_000
MAX_DIGITS = 1_000  # in text converted to a number, and in round()'s ndigits


# Dates. now() is aware UTC, as the record service stores datetimes; today() is the UTC date.

def today() -> date:
    return datetime.now(timezone.utc).date()


def now() -> datetime:
    return datetime.now(timezone.utc)


def _day(value) -> date:
    return value.date() if type(value) is datetime else value


def add_days(day: date, days: int) -> date:
    if type(days) not in INTS:
        raise TypeError(f"add_days() needs a whole number of days, not {type(days).__name__}")
    return day + timedelta(days=days)


def days_between(start: date, end: date) -> int:
    """Whole days from `start` to `end` (negative if `end` is earlier); datetimes count by date."""
    return (_day(end) - _day(start)).days


def year(day: date) -> int:
    return day.year


def month(day: date) -> int:
    return day.month


def date_(year: int, month: int, day: int) -> date:
    return date(year, month, day)


# Numbers

def decimal(value=0) -> Decimal:
    """A Decimal from an int, a decimal text or a float (by its shortest repr, so 0.1 is 0.1)."""
    if type(value) is str and len(value) > MAX_DIGITS:
        raise too_big(f"a number written with more than {MAX_DIGITS} characters")
    if type(value) is float:
        value = repr(value)
    return Decimal(value)


def round_(number, ndigits: int | None = None):
    """Decimals round half away from zero (commercial rounding) and stay Decimal; ints and
    floats round as Python does."""
    if ndigits is not None and (type(ndigits) not in INTS or abs(ndigits) > MAX_DIGITS):
        raise ValueError(f"round() takes ndigits from -{MAX_DIGITS} to {MAX_DIGITS}")
    if type(number) is Decimal:
        return number.quantize(Decimal(1).scaleb(-(ndigits or 0)), rounding=ROUND_HALF_UP)
    return round(number, ndigits)


def _sized(values) -> None:
    """Charge a collection a function walks; iterators are counted by whatever yields them."""
    if type(values) in (list, tuple, dict, str, range):
        charge(len(values))


def min_(*args, **kwargs):
    if len(args) == 1:
        _sized(args[0])
    return min(*args, **kwargs)


def max_(*args, **kwargs):
    if len(args) == 1:
        _sized(args[0])
    return max(*args, **kwargs)


def sum_(values, start=0):
    """Numbers only: adding lists or texts this way is quadratic."""
    if type(start) not in NUMBERS:
        raise TypeError("sum() adds numbers; use concat() for texts")
    _sized(values)
    return sum(values, start)


def int_(value=0, base: int | None = None):
    if type(value) is str and len(value) > MAX_DIGITS:
        raise too_big(f"a number written with more than {MAX_DIGITS} characters")
    if type(value) is Decimal and value.is_finite() and value.adjusted() > MAX_DIGITS:
        raise too_big(f"a number with more than {MAX_DIGITS} digits")
    return int(value) if base is None else int(value, base)


def float_(value=0.0):
    if type(value) is str and len(value) > MAX_DIGITS:
        raise too_big(f"a number written with more than {MAX_DIGITS} characters")
    return float(value)


# Texts. None passes through the one-text helpers, so formulas need no checks for empty fields.

def upper(text: str | None) -> str | None:
    return None if text is None else text.upper()


def lower(text: str | None) -> str | None:
    return None if text is None else text.lower()


def strip(text: str | None) -> str | None:
    return None if text is None else text.strip()


def concat(*parts) -> str:
    """The parts as text, joined; None parts are left out."""
    texts = [to_text(part) for part in parts if part is not None]
    check_size(sum(len(text) for text in texts), "a concatenation")
    return "".join(texts)


def quote(value) -> str:
    """`value` as a literal of the filter language, for the filters rule code hands `query()`
    and `count()`: `'name = ' + quote(record.company)`, whatever quotes the text holds."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, Decimal):
        return str(value)
    text = value.isoformat() if type(value) in (date, datetime) else to_text(value)  # filters take dates quoted
    check_size(len(text) * 2 + 2, "a quoted value")
    return "'" + text.replace("'", "''") + "'"


def coalesce(*values):
    """The first value that is not None (None if all are)."""
    for value in values:
        if value is not None:
            return value
    return None


def startswith(text: str | None, prefix: str) -> bool:
    return text is not None and text.startswith(prefix)


def contains(container, item) -> bool:
    """`item in container`, False when the container is None."""
    if container is None:
        return False
    _sized(container)
    return item in container


def matches(pattern: str, text: str | None) -> bool:
    """Whether `pattern` occurs in `text` (re.search; anchor with ^ and $ for the whole text)."""
    if text is None:
        return False
    if type(pattern) is not str or type(text) is not str:
        raise TypeError("matches() takes a pattern and a text")
    if len(pattern) > MAX_PATTERN or len(text) > MAX_TEXT:
        raise too_big(f"matches() takes patterns up to {MAX_PATTERN} and texts up to {MAX_TEXT:,} characters")
    charge(len(text))
    return _pattern(pattern).search(text) is not None


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern:
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid pattern: {exc}") from None
    if _backtracks(parsed, inside_repeat=False):
        raise refused("patterns with a repeat or an alternation inside a repeat, or a "
                      "backreference, can take exponential time; simplify the pattern")
    return re.compile(pattern)


_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


def _backtracks(items, inside_repeat: bool) -> bool:
    for op, value in items:
        if op in _REPEATS:
            if inside_repeat or _backtracks(value[2], True):
                return True
        elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return True
        elif op is sre.BRANCH:
            if inside_repeat or any(_backtracks(branch, False) for branch in value[1]):
                return True
        elif op is sre.SUBPATTERN and _backtracks(value[3], inside_repeat):
            return True
        elif op in (sre.ASSERT, sre.ASSERT_NOT, sre.ATOMIC_GROUP):
            inner = value[1] if op is not sre.ATOMIC_GROUP else value
            if _backtracks(inner, inside_repeat):
                return True
    return False


# Builtins, bounded. The type-named ones are functions; isinstance knows their types.

def str_(value="") -> str:
    return to_text(value)


def list_(values=()) -> list:
    _sized(values)
    result = list(values)
    check_size(len(result), "a list")
    return result


def tuple_(values=()) -> tuple:
    _sized(values)
    result = tuple(values)
    check_size(len(result), "a tuple")
    return result


def dict_(*args, **kwargs) -> dict:
    if args:
        _sized(args[0])
    result = dict(*args, **kwargs)
    check_size(len(result), "a dict")
    return result


def range_(*args) -> range:
    values = range(*args)
    try:
        size = len(values)
    except OverflowError:
        size = MAX_ITERATIONS + 1
    if size > MAX_ITERATIONS:
        raise too_big(f"a range of more than {MAX_ITERATIONS:,} numbers")
    return values


def sorted_(values, *, key=None, reverse: bool = False) -> list:
    _sized(values)
    result = sorted(values, key=key, reverse=reverse)
    check_size(len(result), "a list")
    return result


_TYPES = {str_: str, int_: int, float_: float, list_: list, tuple_: tuple, dict_: dict,
          decimal: Decimal, date_: date, bool: bool}


def isinstance_(value, kinds) -> bool:
    """`isinstance(x, str)` and friends, for the library's type names only."""
    kinds = kinds if type(kinds) is tuple else (kinds,)
    try:
        return isinstance(value, tuple(_TYPES[kind] for kind in kinds))
    except (KeyError, TypeError):
        raise TypeError("isinstance() takes str, int, float, bool, decimal, date, list, tuple or "
                        "dict") from None


LIBRARY: dict = {
    "today": today, "now": now, "add_days": add_days, "days_between": days_between, "year": year,
    "month": month, "date": date_, "decimal": decimal, "round": round_, "abs": abs, "min": min_,
    "max": max_, "sum": sum_, "len": len, "upper": upper, "lower": lower, "strip": strip,
    "concat": concat, "quote": quote, "coalesce": coalesce, "startswith": startswith, "contains": contains,
    "matches": matches, "str": str_, "int": int_, "float": float_, "bool": bool, "list": list_,
    "tuple": tuple_, "dict": dict_, "range": range_, "sorted": sorted_, "enumerate": enumerate,
    "zip": zip, "any": any, "all": all, "isinstance": isinstance_,
}

# What rule code's `__builtins__` holds: the library, the exceptions it may name, and the guards
# policy.py's rewrites call (rule code cannot name those: they start with `_`).
BUILTINS = {**LIBRARY, **guards.CATCHABLE, **guards.GUARDS}
