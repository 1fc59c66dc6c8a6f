"""What crosses the socket between the server and a pool worker.

Messages are pickles. The server cannot trust what a worker sends, since a worker runs rule
code, and unpickling can call any importable function; so `loads` builds only the classes
plain data needs (Decimal, date, datetime, timezone, timedelta, Record) and refuses the rest.
Lists, dicts, tuples, texts and numbers need no class. Code objects travel as `marshal` bytes,
from the server to the worker only.
"""

from __future__ import annotations

import io
import pickle
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from packwork.rules.record import Record

MAX_MESSAGE = 64 * 1024 * 1024  # a bound on what the server reads from a worker

_CLASSES = {("decimal", "Decimal"): Decimal, ("datetime", "date"): date,
            ("datetime", "datetime"): datetime, ("datetime", "timedelta"): timedelta,
            ("datetime", "timezone"): timezone, ("packwork.rules.record", "Record"): Record}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _CLASSES[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data") from None


def dumps(message: object) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> object:
    return _Unpickler(io.BytesIO(data)).load()
