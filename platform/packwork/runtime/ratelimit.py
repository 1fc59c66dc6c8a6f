"""How many API requests a token may make: a token bucket per key, in this process.

A bucket holds up to `burst` requests and refills at `burst / period` a second, so a client
may spend a burst at once and then keeps the long-run rate. Buckets live in the process that
answers (gunicorn runs several): with N app processes a token may make up to N times the rate
in all, which bounds abuse without a round trip to a shared store on every request."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_KEYS = 10_000  # tokens tracked per process; the least recently seen is dropped first


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int  # requests
    period: float  # seconds in which a full bucket refills

    @classmethod
    def parse(cls, text: str) -> "Rate | None":
        """`600/60` (600 requests a minute), `off` (None: no limit). ValueError otherwise."""
        if text.strip().lower() == "off":
            return None
        count, sep, seconds = text.partition("/")
        try:
            rate = cls(int(count), float(seconds)) if sep else None
        except ValueError:
            rate = None
        if rate is None or rate.burst < 1 or not rate.period > 0:
            raise ValueError(f"a rate is REQUESTS/SECONDS (like 600/60) or off, not {text!r}")
        return rate


class Limiter:
    def __init__(self, rate: Rate, clock=time.monotonic):
        self.rate, self.clock = rate, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """Take one request from `key`'s bucket: 0 if it may go ahead, else the seconds until
        it could (nothing is taken then)."""
        burst, refill = self.rate.burst, self.rate.burst / self.rate.period
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * refill)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / refill
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        return wait
