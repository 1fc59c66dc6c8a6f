"""Running compiled rule code once, wherever it runs (the caller's thread or a pool worker): the
meter around it, what it returns, and what went wrong, as a RuleError with the pack-file line.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from types import CodeType, TracebackType

from packwork.rules import meter as meters
from packwork.rules.errors import RuleError, RuleLimit, RuleRuntimeError, RuleViolation, Stop
from packwork.rules.library import BUILTINS
from packwork.rules.meter import MAX_INT_BITS
from packwork.rules.plain import MAX_OUTPUT, exception_text, plain_size
from packwork.rules.policy import RULE_FILENAME

IN_PROCESS_WORK = 1_000_000  # straight-line code in the caller's thread: a stricter budget
POOL_WORK = 10_000_000


def execute(code: CodeType, env: dict, *, mode: str, max_work: int):
    """Run `code` with `env` as its globals (plain data and guarded functions only; this sets
    its `__builtins__`). Returns the value for mode "eval", None for "exec", where the results
    are what `env` holds afterwards. Raises RuleError, or unchanged the exception a callback
    raised."""
    env["__builtins__"] = BUILTINS
    meter = meters.start(max_work)
    try:
        value = eval(code, env) if mode == "eval" else exec(code, env)
        if meter.stopped is not None:  # a Stop the code got past (it should not be able to)
            raise Stop(meter.stopped)
        return value
    except BaseException as exc:
        raise failure(exc)


def failure(exc: BaseException) -> BaseException:
    """What the caller gets for an exception that escaped rule code: a RuleError with the
    pack-file line, or unchanged a callback's own exception (or an interrupt)."""
    if isinstance(exc, Stop):
        error = exc.error
        if isinstance(error, RuleError):
            error.line = error.line or rule_line(exc.__traceback__)
            error.__suppress_context__ = True
        return error
    if isinstance(exc, (MemoryError, RecursionError)):
        what = "ran out of memory" if isinstance(exc, MemoryError) else "recursed too deeply"
        error = RuleLimit(f"the rule {what}", line=rule_line(exc.__traceback__))
    elif isinstance(exc, Exception):
        error = RuleRuntimeError(exception_text(exc), line=rule_line(exc.__traceback__))
    else:
        return exc
    error.__suppress_context__ = True
    return error


_ONE = frozenset({type(None), bool, float, Decimal, date, datetime})  # plain, one item each


def result(value) -> dict:
    """What mode "eval" returns: an expression that yields anything but plain data is wrong."""
    kind = type(value)
    if kind in _ONE or kind is int and value.bit_length() <= MAX_INT_BITS:  # most formulas' values
        return {"result": value}
    try:
        plain = plain_size(value) is not None
    except Stop as stop:
        raise stop.error from None
    if not plain:
        raise RuleRuntimeError(f"the expression's value is a {type(value).__name__}, not plain data")
    return {"result": value}


def keep_plain(env: dict, keys, fallback: dict) -> None:
    """Of `keys`, leave in `env` only names bound to plain data, at most MAX_OUTPUT items and
    characters in all. A name bound to anything else (a function the code defined, a set, a
    callback's stand-in) gets its value in `fallback` back, or goes."""
    budget = MAX_OUTPUT
    for name in keys:
        value = env.get(name, env)
        kind = type(value)
        if kind is float or kind is bool or value is None:
            size = 1
        elif kind is str:
            size = len(value)
        elif kind is int:
            size = 1
            if value.bit_length() > MAX_INT_BITS:
                raise RuleLimit(f"{name!r} holds an integer of more than {MAX_INT_BITS:,} bits")
        elif value is env or callable(value):
            size = None
        else:
            try:
                size = plain_size(value, budget)
            except Stop as stop:
                raise stop.error from None
        if size is None:
            if name in fallback:
                env[name] = fallback[name]
            else:
                env.pop(name, None)
            continue
        budget -= size
        if budget < 0:
            raise RuleLimit(f"the names the rule bound hold more than {MAX_OUTPUT:,} items and characters")


def checked(value, what: str):
    """`value` if it is plain data, for values that cross from untrusted code to the caller
    (a worker's output, a callback's arguments); RuleViolation or RuleLimit otherwise."""
    try:
        if plain_size(value) is None:
            raise RuleViolation(f"{what} is not plain data")
    except Stop as stop:
        raise stop.error from None
    return value


def rule_line(traceback: TracebackType | None) -> int | None:
    """The line of the innermost rule frame: rule code's line numbers are pack-file lines."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == RULE_FILENAME:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
