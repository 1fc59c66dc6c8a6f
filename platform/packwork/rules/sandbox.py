"""The one door to rule code: compile once, run many times.

    rule = compile_rule(code, name="count_not_negative", file="rules.yaml", first_line=6)
    namespace = run_compiled(rule, {"record": Record(values), "error": report})

Where code runs. Straight-line code (no loops, def, lambda or comprehensions, no `matches`, at
most policy.IN_PROCESS_NODES syntax nodes) runs in the caller's thread: its cost is bounded by
its size and the guards' limits, so it needs no timer and costs little more than `exec`.
Anything else runs in a pool worker process (pool.py) under `time_limit_ms` of wall-clock
time and kernel limits on memory and CPU.

What `names` may hold. Plain data (None, bool, int, float, str, Decimal, date, datetime, and
lists, tuples and dicts of them), Records, and functions. A function is either a member of
the vetted library (`library.LIBRARY`; a worker uses its own copy) or a *callback*: rule code
calls it as usual, but it runs in the caller's process, directly or, from a worker, over the
worker's socket (the worker sends the name and arguments, this process calls the function and
sends the result back). A callback takes and returns plain data only and may be called at most
meter.MAX_CALLS times a run. Rule code cannot catch an exception a callback raises: the run
stops and the caller gets that exception unchanged.

What a run returns. `names`, plus every name the code bound to plain data; other values
(functions it defined, sets, iterators) stay inside. Rule code works on copies of the data in
`names`, so it never changes the caller's lists or dicts, with one deliberate exception: when a
run succeeds, the values of each Record given in `names` (its copy, however the code reached
it) are copied back into the caller's Record, which the namespace then holds. Mode "eval"
returns {"result": value}.

Errors. RuleError and its kinds (errors.py), with the rule's name, file and pack-file line.
"""

from __future__ import annotations

import functools
import marshal
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import CodeType

from packwork.rules import guards, meter as meters, pool, runner
from packwork.rules.errors import (RuleError, RuleLimit, RuleRuntimeError, RuleSyntaxError, RuleTimeout,
                                   RuleViolation, Stop)
from packwork.rules.library import BUILTINS, LIBRARY
from packwork.rules.plain import MAX_OUTPUT, SCALARS, copy_plain, plain_size, scalar_size
from packwork.rules.policy import SLOW_FUNCTIONS, compile_code
from packwork.rules.record import Record, trusted

__all__ = ["CompiledRule", "Record", "RuleError", "RuleLimit", "RuleRuntimeError", "RuleSyntaxError",
           "RuleTimeout", "RuleViolation", "compile_rule", "run", "run_compiled", "run_each"]

MAX_TIME_LIMIT_MS = 60_000
# by id: a caller's callable need not be hashable, and the library's functions live forever
_LIBRARY_NAMES = {id(function): name for name, function in LIBRARY.items()}
_SLOW = frozenset(id(LIBRARY[name]) for name in SLOW_FUNCTIONS)
_LIBRARY_IDS = frozenset(_LIBRARY_NAMES) - _SLOW  # slow ones are looked at more closely
_local = meters.local
IN_PROCESS_WORK = runner.IN_PROCESS_WORK
# The globals of in-process code; its names (what it is given, what it binds) are its locals.
# Straight-line code reads globals (only `__builtins__` here) but cannot write them: `global`
# is refused and module-level code stores and deletes names in its locals. So one dict serves
# every run, and no run has to put `__builtins__` into its namespace and take it out again.
_GLOBALS = {**BUILTINS, "__builtins__": BUILTINS}
_SMALL = frozenset({bool, float, type(None)})  # plain, and too small to count against MAX_OUTPUT


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """Rule code compiled and checked once; cache it with the metadata version."""

    source: str
    name: str | None
    file: str | None
    first_line: int
    mode: str
    in_process: bool
    bound: frozenset[str] = field(repr=False)   # names the code may bind
    loaded: frozenset[str] = field(repr=False)  # names it reads
    read_only: frozenset[str] = field(repr=False)  # names it only reads fields of
    code: CodeType = field(repr=False)
    marshalled: bytes = field(repr=False)  # what a pool worker is sent


def compile_rule(source: str, *, name: str | None = None, file: str | None = None,
                 first_line: int = 1, mode: str = "exec") -> CompiledRule:
    """Compile and check rule code; `first_line` is the pack-file line of its first line."""
    try:
        checked = compile_code(source, mode=mode, first_line=first_line)
    except RuleError as error:
        raise error.located(rule=name, file=file, line=None) from None
    return CompiledRule(source, name, file, first_line, mode, checked.in_process, checked.bound,
                        checked.loaded, checked.read_only, checked.code, marshal.dumps(checked.code))


def run_compiled(rule: CompiledRule, names: dict, *, time_limit_ms: int = 50) -> dict:
    """Run a compiled rule with `names` visible; the namespace afterwards (see the module's
    docstring), or {"result": value} for mode "eval". `time_limit_ms` bounds code that runs in
    the pool; straight-line code needs none."""
    try:
        if rule.in_process:
            for key, given in names.items():
                if key not in _accepted_names or type(given) not in SCALARS and id(given) not in _LIBRARY_IDS:
                    if not names.keys() <= _accepted_names:
                        _accept_names(names)
                    namespace = _run_here(rule, names)
                    if namespace is not None:
                        return namespace
                    break
            else:
                # The common case: names holding only scalars and library functions, which
                # every simple rule and formula takes: nothing to check or copy but the output.
                env = dict(names)
                result = _execute(rule, env)
                if result is not None:
                    return result
                for key in rule.bound:  # (a loop: a comprehension is a function call in CPython 3.11)
                    if type(env.get(key)) not in _SMALL:
                        _keep_plain_bound(rule, env, names)
                        break
                return env
        output = _run_in_pool(rule, names, time_limit_ms)
    except RuleError as error:
        raise error.located(rule=rule.name, file=rule.file, line=None) from None
    return output if rule.mode == "eval" else {**names, **output}


def _keep_plain_bound(rule: CompiledRule, env: dict, names: dict) -> None:
    # a function of its own: a comprehension over `env` in run_compiled would make `env` a
    # closure cell there, which every run would pay for
    runner.keep_plain(env, [key for key in rule.bound if type(env.get(key)) not in _SMALL], names)


def run(source: str, names: dict, *, time_limit_ms: int = 50) -> dict:
    """Execute rule statements with `names` visible; see run_compiled."""
    return run_compiled(_compiled(source), names, time_limit_ms=time_limit_ms)


def run_each(rules: Sequence[CompiledRule], names: dict, *, keep: Collection[str] = (),
             time_limits_ms: Sequence[int] = (), until: Callable[[], bool] | None = None) -> None:
    """Run `rules` one after another with `names` visible: the rules one event fires on one
    record. `names` is checked once, not once a rule; each rule still gets its own copy of the
    data, and its namespace is dropped. `keep` names the Records whose changes carry on from
    rule to rule: when the batch ends they are copied back into the caller's Records (not if
    a rule fails: then the caller's Records stay as they were). Any other Record each rule
    gets as given, and its changes are dropped. `until` is asked after each rule: True ends
    the batch. `time_limits_ms[i]` bounds rule i if it runs in the pool."""
    if not names.keys() <= _accepted_names:
        _accept_names(names)
    shared, data, slow, fixed = {}, {}, set(), set()
    for key, value in names.items():  # what every rule gets: checked and wrapped here, once
        if id(value) in _SLOW:
            slow.add(key)
        elif type(value) not in SCALARS and id(value) not in _LIBRARY_IDS:
            if type(value) is not Record and callable(value):
                value = _callback(key, value)
            else:
                data[key], scalars_only = _checked_copy(key, value)  # the batch's own, never the caller's
                if scalars_only:
                    fixed.add(key)
                continue
        shared[key] = value
    kept = [key for key in keep if type(data.get(key)) is Record]
    # each kept Record's fields when last found plain, while they are all scalars (see _recheck)
    last_checked = {key: dict(data[key]._values) if key in fixed else None for key in kept}
    # Records no rule changes and no value of which can be changed in place: a rule that only
    # reads their fields may share the batch's copy
    fixed.difference_update(kept)
    for index, rule in enumerate(rules):
        try:
            if rule.in_process and slow.isdisjoint(rule.loaded):
                _run_one_here(rule, shared, data, kept, fixed)
                for key in kept:  # (not `key in` the namespace: code that deleted the name changed it all the same)
                    if key in rule.loaded:  # a name the code does not read, it cannot reach
                        last_checked[key] = _recheck(key, data[key], last_checked[key])
            else:
                _run_one_in_pool(rule, names, data, kept, time_limits_ms[index] if time_limits_ms else 50)
        except RuleError as error:
            raise error.located(rule=rule.name, file=rule.file, line=None) from None
        if until is not None and until():
            break
    for key in kept:
        _write_back(names[key], data[key]._values)


def _run_one_here(rule: CompiledRule, shared: dict, data: dict, kept: list[str], fixed: set[str]) -> None:
    """One rule of run_each in this thread. A kept Record it gets as the batch's own copy,
    whose changes carry on (if the rule fails, the batch ends, and the copy with it; run_each
    checks it after each rule, so the next rule sees plain data only); a `fixed` Record whose
    fields it only reads, as the batch's copy too; any other data, as a copy of its own."""
    env = dict(shared)
    for key, value in data.items():
        if key in rule.loaded:  # a name the code does not read, it cannot reach
            shared_copy = key in kept or key in fixed and key in rule.read_only
            env[key] = value if shared_copy else copy_plain(value)
    _execute(rule, env)


def _checked_copy(key: str, value) -> tuple[object, bool]:
    """A copy of data given to rule code, once it is found plain (RuleViolation or RuleLimit
    if it is not), and whether it is a Record whose fields all hold scalars. That is the usual
    shape, which is measured and copied in one pass."""
    if type(value) is Record:
        size = scalar_size(value._values)
        if size is not None and size <= MAX_OUTPUT:
            return trusted(dict(value._values)), True  # what copy_plain makes of it
    _check_plain(key, value)
    copy = copy_plain(value)
    return copy, type(copy) is Record and all(type(item) in SCALARS for item in copy._values.values())


def _recheck(key: str, record: Record, last: dict | None) -> dict | None:
    """Check a kept Record after a rule ran on it; returns its fields as now found plain if
    they are all scalars (None otherwise), for the next check. While its fields hold only
    scalars, nothing in it can change in place: a rule changes it only by assigning fields,
    each assignment checked on the way in (guards._RecordWriter). So if every field still
    equals what was last found plain, each still holds a scalar of the same size (no list,
    dict, tuple or Record equals a scalar) and there is nothing to measure again."""
    values = record._values
    if last is not None:
        try:
            if values == last:
                return last
        except Exception:  # comparing a signalling NaN raises: measure it all
            pass
    size = scalar_size(values)
    if size is not None and size <= MAX_OUTPUT:
        return dict(values)
    _check_plain(key, record)
    return None


def _run_one_in_pool(rule: CompiledRule, names: dict, data: dict, kept: list[str], limit: int) -> None:
    # the pool checks and copies what it is given, and writes every Record back into it
    given = {key: (data[key] if key in kept else copy_plain(value)) if type(value) is Record else value
             for key, value in names.items()}
    _run_in_pool(rule, given, limit)


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> CompiledRule:
    return compile_rule(source)


def _run_here(rule: CompiledRule, names: dict) -> dict | None:
    """Run in this thread when `names` holds data to copy (lists, dicts, Records) or callbacks
    to wrap; None if the code must run in the pool after all, because it was given a slow
    library function."""
    env = dict(names)
    special = _prepare(rule, env)
    if special is None:
        return None
    copies = [(key, env[key]) for key in special if type(env[key]) is Record]
    output = _execute(rule, env)
    if rule.mode == "eval":
        return output
    unchecked = special + [key for key in rule.bound if type(env.get(key)) not in _SMALL]
    runner.keep_plain(env, unchecked, names)
    for key, copy in copies:
        if env.get(key) is not copy:  # the code rebound the name: keep_plain did not see the copy
            _check_plain(key, copy)
    for key, copy in copies:
        _write_back(names[key], copy._values)
        if env.get(key) is copy:
            env[key] = names[key]
    return env


def _execute(rule: CompiledRule, env: dict) -> dict | None:
    """Run in-process code over a prepared `env`, which holds what it may read and, afterwards,
    the names it bound: {"result": value} in mode "eval", else None. This is runner.execute
    and meters.start written out for the caller's thread, where a rule's whole run costs a few
    times a Python call."""
    try:
        meter = _local.meter
        if meter.work or meter.max_work != IN_PROCESS_WORK:
            meter = meters.start(IN_PROCESS_WORK)
    except AttributeError:  # no meter on this thread yet, or it is set aside
        meter = meters.start(IN_PROCESS_WORK)
    try:
        if rule.mode == "exec":
            exec(rule.code, _GLOBALS, env)
        else:
            value = eval(rule.code, _GLOBALS, env)
        if meter.stopped is not None:  # a Stop the code got past (it should not be able to)
            raise Stop(meter.stopped)
    except BaseException as exc:
        raise runner.failure(exc)
    return runner.result(value) if rule.mode == "eval" else None


def _prepare(rule: CompiledRule, env: dict) -> list[str] | None:
    """Replace, in `env`, each value that is neither a scalar nor a library function by what
    rule code gets instead: a copy of data, a wrapped callback. The names replaced, or None if
    the code reads one bound to a slow library function (then it must run in the pool)."""
    special = []
    for key, value in env.items():
        if id(value) in _SLOW:
            if key in rule.loaded:
                return None
        elif type(value) not in SCALARS and id(value) not in _LIBRARY_IDS:
            special.append(key)
    for key in special:
        env[key] = _inside(key, env[key])
    return special


def _inside(key: str, value):
    """What rule code gets for a value in `names` that is neither a scalar nor a library
    function: a copy of data, a wrapped callback."""
    if type(value) is not Record and callable(value):
        return _callback(key, value)
    return _checked_copy(key, value)[0]


def _callback(name: str, function):
    def call(*args, **kwargs):
        guards.count_call(name, args, kwargs)
        meter = meters.suspend()
        try:
            result = function(*copy_plain(args), **copy_plain(kwargs))
        except BaseException as exc:  # not the rule's to catch: the run stops, the caller gets it
            meters.resume(meter)
            raise meters.stop(exc) from None
        meters.resume(meter)
        try:
            return copy_plain(runner.checked(result, f"the value {name}() returned"))
        except RuleError as error:
            raise meters.stop(error) from None
    call.__name__ = name
    return call


def _run_in_pool(rule: CompiledRule, names: dict, time_limit_ms: int) -> dict:
    if not 0 < time_limit_ms <= MAX_TIME_LIMIT_MS:
        raise ValueError(f"time_limit_ms must be from 1 to {MAX_TIME_LIMIT_MS}")
    _accept_names(names)
    data, callbacks, library = {}, {}, {}
    for key, value in names.items():
        if type(value) is not Record and callable(value):
            if id(value) in _LIBRARY_NAMES:
                library[key] = _LIBRARY_NAMES[id(value)]
            else:
                callbacks[key] = value
        else:
            _check_plain(key, value)
            data[key] = copy_plain(value)
    request = (rule.marshalled, rule.mode, data, tuple(callbacks), library)
    output, records = pool.get_pool().run(request, callbacks, time_limit_ms / 1000)
    for key, values in records.items():
        if type(names.get(key)) is Record and type(values) is dict:
            _write_back(names[key], values)
    return output


_accepted_names: set[str] = set()  # checked once; bounded by the names callers use


def _accept_names(names: dict) -> None:
    # `__builtins__` or a guard's name would replace the sandbox's own; an exception's name
    # could make an `except` clause raise (policy.py)
    for key in names:
        if type(key) is not str or key[:1] == "_" or key in guards.CATCHABLE or not key.isidentifier():
            raise RuleViolation(f"{key!r} cannot be given to rule code: names must be identifiers, "
                                "not starting with '_', not an exception's name")
    if len(_accepted_names) < 10_000:
        _accepted_names.update(names)


def _check_plain(key: str, value) -> None:
    try:
        plain = plain_size(value) is not None
    except Stop as stop:
        raise stop.error from None
    if not plain:  # the message is made only when needed: this runs on every record a rule gets
        raise RuleViolation(f"{key!r} (a {type(value).__name__}) is not plain data")


def _write_back(original: Record, values: dict) -> None:
    fields = original._values
    if fields.keys() == values.keys():  # a copy's fields, as a rule cannot add or remove any
        fields.update(values)
    else:  # what a worker sent back: only the fields the record has
        fields.update((name, value) for name, value in values.items() if name in fields)
