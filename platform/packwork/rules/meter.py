"""The meter: what one run has used, the limits it may use, and how a guard stops a run.

Per-object caps alone would still let a rule build many big objects, or concatenate in a loop
at quadratic cost. So each run has a Meter: operations charge the items or characters they
touch or make (`charge`, `check_size`), loop passes and callbacks are counted, and a run past
any budget stops. A guard stops a run by raising `Stop` (a BaseException rule code cannot
catch; see errors.py); the stop is also recorded on the meter, so a run whose code somehow got
past one still fails.

The meter lives in a thread-local: guards are shared by every run, and runs on different
threads (in-process rules under a threaded server) must not share budgets.
"""

from __future__ import annotations

import threading

from packwork.rules.errors import RuleLimit, RuleViolation, Stop

MAX_SIZE = 1_000_000        # items or characters in one string, list, tuple or dict
MAX_INT_BITS = 4096         # bits in the result of *, ** and << on ints
MAX_ITERATIONS = 100_000    # loop passes per run
MAX_CALLS = 1_000           # callbacks per run


class Meter:
    """What one run has used so far. Each thread keeps one and resets it when a run starts,
    but only if it was used since: every use adds to `work` (a loop pass, a callback and a
    stop count one), so `work == 0` means clean."""

    __slots__ = ("work", "max_work", "iterations", "calls", "stopped")

    def __init__(self):
        self.work, self.max_work = 0, -1

    def reset(self, max_work: int) -> None:
        self.work = self.iterations = self.calls = 0
        self.max_work, self.stopped = max_work, None


_local = threading.local()
local = _local  # read directly by the sandbox's in-process fast path, which cannot afford a call


def start(max_work: int) -> Meter:
    """The meter for a run starting on this thread."""
    meter = getattr(_local, "meter", None)
    if meter is None:
        meter = _local.meter = Meter()
    if meter.work or meter.max_work != max_work:
        meter.reset(max_work)
    return meter


def suspend() -> Meter | None:
    """Set this thread's meter aside while host code runs (a callback), which may run rules of
    its own; `resume` puts it back."""
    meter = getattr(_local, "meter", None)
    _local.meter = None
    return meter


def resume(meter: Meter | None) -> None:
    _local.meter = meter


def stop(error: BaseException) -> Stop:
    """The Stop to raise for `error`, recorded on the meter first."""
    meter = getattr(_local, "meter", None)
    if meter is not None and meter.stopped is None:
        meter.stopped = error
        meter.work += 1
    return Stop(error)


def too_big(message: str) -> Stop:
    return stop(RuleLimit(message))


def refused(message: str) -> Stop:
    return stop(RuleViolation(message))


def charge(amount: int) -> None:
    meter = _local.meter
    meter.work += amount
    if meter.work > meter.max_work:
        raise too_big(f"the rule did more work than allowed ({meter.max_work:,} items or characters)")


def check_size(size: int, what: str) -> None:
    """Refuse to build `what` with `size` items or characters if that is too big; else charge it."""
    if size > MAX_SIZE:
        raise too_big(f"{what} would hold {size:,} items or characters; the limit is {MAX_SIZE:,}")
    charge(size)


def int_too_big(bits: int) -> Stop:
    return too_big(f"an integer of about {bits:,} bits; the limit is {MAX_INT_BITS:,}")


def passes(iterator):
    """`iterator`, each item counted as a loop pass."""
    meter = _local.meter
    for item in iterator:
        meter.iterations += 1
        meter.work += 1
        if meter.iterations > MAX_ITERATIONS:
            raise too_big(f"the rule looped more than {MAX_ITERATIONS:,} times")
        yield item


def count_pass() -> None:
    meter = _local.meter
    meter.iterations += 1
    meter.work += 1
    if meter.iterations > MAX_ITERATIONS:
        raise too_big(f"the rule looped more than {MAX_ITERATIONS:,} times")


def count_call() -> None:
    meter = _local.meter
    meter.calls += 1
    meter.work += 1
    if meter.calls > MAX_CALLS:
        raise too_big(f"the rule called back more than {MAX_CALLS:,} times")
