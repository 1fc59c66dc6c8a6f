"""The pre-forked worker processes that run rule code which can loop.

Why processes: a thread cannot be stopped from outside, SIGALRM works only in the main thread
(not under a threaded server) and cannot interrupt one long allocation, and RestrictedPython
stops no `while True`. A worker process can be killed, and the kernel holds it to a memory
and CPU limit (worker.confine).

How: the first pooled run starts a zygote, a fresh `python -I` that imports packwork.rules and
forks workers on request (worker.py), so workers carry no state of the server that started
them, and forking one costs a few milliseconds instead of a new interpreter. At most `size`
workers live at once; a caller takes an idle one, spawns one if fewer than `size` live, or
waits (at most ACQUIRE_TIMEOUT). Each run's wall-clock time is measured here, not in the
worker: when it passes the run's limit the worker is killed (SIGKILL) and the caller gets
RuleTimeout; the next caller spawns a replacement. A worker that dies, sends nonsense or says
it is worn out is replaced the same way.

A run is a conversation over the worker's socket: the request (code, data, the names of the
callbacks), then any number of callback calls this side serves (the time they take here does
not count against the rule), then the outcome. Everything read from a worker is unpickled by
wire.loads and checked to be plain data before any caller sees it.

One pool per process (`get_pool`), created on first use and closed at exit; a process forked
from one that had a pool (gunicorn --preload) starts its own.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from time import monotonic

from packwork.rules import runner, wire
from packwork.rules.errors import KINDS, RuleError, RuleLimit, RuleTimeout, RuleViolation
from packwork.rules.plain import copy_plain

DEFAULT_SIZE = 2
ACQUIRE_TIMEOUT = 30.0  # seconds a caller waits for a free worker
_ZYGOTE = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
           "from packwork.rules.worker import zygote; zygote(int(sys.argv[2]))")


class WorkerGone(Exception):
    """The worker was dead before the run started: the run can go to another one."""


class Worker:
    def __init__(self, pid: int, conn: Connection):
        self.pid, self.conn = pid, conn
        self.usable = True   # may serve another run
        self.exited = False  # died by itself: its pid may already belong to another process

    def kill(self) -> None:
        if not self.exited:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.conn.close()

    def run(self, request: tuple, callbacks: Mapping[str, Callable], timeout: float) -> tuple[dict, dict]:
        """(the names the code bound, {name: values} of the Records it was given) for one run;
        RuleError, or unchanged the exception a callback raised. Leaves `usable` False unless
        the conversation ended as the protocol says."""
        self.usable, failure = False, None
        try:
            self.conn.send_bytes(wire.dumps(request))
        except OSError:  # it died while idle (killed from outside)
            self.exited = True
            raise WorkerGone from None
        deadline = monotonic() + timeout
        message = self._receive(deadline, timeout)
        while message[0] == "call" and failure is None:
            started = monotonic()
            failure = self._serve(callbacks, message)
            deadline += monotonic() - started
            try:
                message = self._receive(deadline, timeout)
            except RuleError:
                if failure is None:
                    raise
                raise failure  # the worker did not stop in time; it is killed
        outcome = message[0]
        length = {"done": 4, "error": 5, "aborted": 2}.get(outcome)  # each ends with "worn out?"
        if len(message) != length or (outcome == "aborted") != (failure is not None):
            raise RuleViolation("the rule's worker sent an unexpected message")
        self.usable = message[-1] is False
        if failure is not None:
            raise failure
        if outcome == "done":
            output, records = runner.checked(message[1:3], "the rule's output")
            if type(output) is dict and type(records) is dict:
                return output, records
        else:
            _, kind, text, line, _ = message
            if type(text) is str and (line is None or type(line) is int):
                raise KINDS.get(kind, RuleError)(text[:2000], line=line)
        self.usable = False
        raise RuleViolation("the rule's worker sent an unexpected message")

    def _receive(self, deadline: float, timeout: float) -> tuple:
        remaining = deadline - monotonic()
        if remaining <= 0 or not self.conn.poll(remaining):
            raise RuleTimeout(f"the rule ran longer than its time limit ({timeout * 1000:.0f} ms)")
        try:
            message = wire.loads(self.conn.recv_bytes(wire.MAX_MESSAGE))
        except (EOFError, OSError):
            self.exited = True
            raise RuleLimit("the rule's worker process died (a memory or CPU limit)") from None
        except Exception:
            raise RuleViolation("the rule's worker sent a message that is not plain data") from None
        if type(message) is not tuple or not message:
            raise RuleViolation("the rule's worker sent an unexpected message")
        return message

    def _serve(self, callbacks: Mapping[str, Callable], message: tuple) -> BaseException | None:
        """Call the callback the worker asked for and send back its result. Returns the
        exception to raise instead if that failed (the worker has been told to stop)."""
        try:
            if len(message) != 4 or message[1] not in callbacks:
                raise RuleViolation("the rule's worker asked for a callback it was not given")
            _, name, args, kwargs = runner.checked(message, "a callback request")
            result = copy_plain(runner.checked(callbacks[name](*args, **kwargs), f"the value {name}() returned"))
        except BaseException as exc:  # the caller's exception, or ours: the run stops either way
            self.conn.send_bytes(wire.dumps(("abort",)))
            return exc
        self.conn.send_bytes(wire.dumps(("result", result)))
        return None


class Pool:
    def __init__(self, size: int = DEFAULT_SIZE):
        if size < 1:
            raise ValueError("a rule pool needs at least one worker")
        self.size, self.pid = size, os.getpid()
        self._idle: list[Worker] = []
        self._live = 0
        self._closed = False
        self._changed = threading.Condition()
        self._spawning = threading.Lock()
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None

    def run(self, request: tuple, callbacks: Mapping[str, Callable], timeout: float) -> tuple[dict, dict]:
        for attempt in range(2):
            worker = self._acquire()
            try:
                return worker.run(request, callbacks, timeout)
            except WorkerGone:
                if attempt:
                    raise RuleError("the rule sandbox's workers keep dying") from None
            finally:
                self._release(worker)

    def _acquire(self) -> Worker:
        deadline = monotonic() + ACQUIRE_TIMEOUT
        with self._changed:
            while not self._idle and self._live >= self.size:
                if self._closed or not self._changed.wait(deadline - monotonic()):
                    raise RuleTimeout(f"no rule worker became free within {ACQUIRE_TIMEOUT:.0f} s")
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return self._spawn()
        except BaseException:
            with self._changed:
                self._live -= 1
                self._changed.notify()
            raise

    def _release(self, worker: Worker) -> None:
        if not worker.usable or self._closed:
            worker.kill()
        with self._changed:
            if worker.usable and not self._closed:
                self._idle.append(worker)
            else:
                self._live -= 1
            self._changed.notify()

    def _spawn(self) -> Worker:
        with self._spawning:
            if self._zygote is None or self._zygote.poll() is not None:
                self._start_zygote()
            try:
                self._control.sendall(b"F")
                message, fds, _, _ = socket.recv_fds(self._control, 8, 1)
            except OSError:
                fds = []  # the zygote died: the next spawn starts another
        if not fds:
            raise RuleError("the rule sandbox could not start a worker process")
        return Worker(int.from_bytes(message, "little"), Connection(fds[0]))

    def _start_zygote(self) -> None:
        if self._control is not None:
            self._control.close()
        self._control, theirs = socket.socketpair()
        with theirs:
            self._zygote = subprocess.Popen(
                [sys.executable, "-I", "-c", _ZYGOTE, json.dumps(sys.path), str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)

    def close(self) -> None:
        """Kill the idle workers and the zygote; busy workers are killed when their run ends."""
        if os.getpid() != self.pid:  # inherited through fork: the parent's to close
            return
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._changed.notify_all()
        for worker in idle:
            worker.kill()
        if self._zygote is not None:
            self._control.close()
            try:
                self._zygote.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._zygote.kill()


_pool: Pool | None = None
_pool_lock = threading.Lock()


def get_pool() -> Pool:
    """This process's pool, created on first use with `configure`'s size (default 2, or the
    environment variable PACKWORK_RULE_WORKERS)."""
    global _pool
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        with _pool_lock:
            if _pool is None or _pool.pid != os.getpid():
                _pool = Pool(int(os.environ.get("PACKWORK_RULE_WORKERS", DEFAULT_SIZE)))
            pool = _pool
    return pool


def configure(size: int) -> None:
    """Replace this process's pool with one of `size` workers (closing the old one)."""
    global _pool
    with _pool_lock:
        old, _pool = _pool, Pool(size)
    if old is not None:
        old.close()


@atexit.register
def _close() -> None:
    if _pool is not None:
        _pool.close()
