"""The pool's far side: a zygote that forks workers, and the loop each worker runs.

The zygote is a fresh interpreter (pool.py starts it with `python -I -c`) that has imported
only packwork.rules, so the workers it forks inherit no server state: no database connections,
secrets, listening sockets or threads, whatever server started the pool. For each byte the
server writes on the control socket it forks a worker and passes the server its end of a new
socket pair (SCM_RIGHTS). A worker confines itself with kernel limits, then runs one request
after another until its socket closes.
"""

from __future__ import annotations

import marshal
import os
import resource
import signal
import socket
from multiprocessing.connection import Connection

from packwork.rules import guards, meter, runner, wire
from packwork.rules.errors import RuleError
from packwork.rules.library import LIBRARY
from packwork.rules.record import Record

MEMORY_HEADROOM = 256 * 1024 * 1024  # address space a worker may add to what it starts with
CPU_SECONDS = 60                     # CPU time over a worker's life; it retires at half


def zygote(control_fd: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # ^C in a dev server is not for us
    control = socket.socket(fileno=control_fd)
    while control.recv(1):  # b"" when the server has gone
        server_end, worker_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            server_end.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                serve(worker_end)
            finally:
                os._exit(0)
        worker_end.close()
        socket.send_fds(control, [pid.to_bytes(8, "little")], [server_end.fileno()])
        server_end.close()


def serve(sock: socket.socket) -> None:
    start_rss = confine(sock.fileno())
    conn = Connection(sock.detach())
    while True:
        try:
            request = wire.loads(conn.recv_bytes())
        except EOFError:
            return
        reply = run(conn, request)
        conn.send_bytes(wire.dumps(reply + (_worn_out(start_rss),)))


def confine(highest_fd: int) -> int:
    """Limits the kernel enforces whatever the code does: address space, CPU time, no new
    files or processes, no core dumps. Returns the resident size to measure growth against."""
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limits = {resource.RLIMIT_AS: size + MEMORY_HEADROOM, resource.RLIMIT_CORE: 0,
              resource.RLIMIT_FSIZE: 0, resource.RLIMIT_NOFILE: highest_fd + 1, resource.RLIMIT_NPROC: 0}
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 5))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worn_out(start_rss: int) -> bool:
    """Whether the server should replace this worker: much of its CPU allowance spent, or its
    memory grown (the heap rarely shrinks back)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    grown = (usage.ru_maxrss - start_rss) * 1024
    return usage.ru_utime + usage.ru_stime > CPU_SECONDS / 2 or grown > MEMORY_HEADROOM / 4


class _CallbackFailed(Exception):
    """The server's callback raised; the server holds that exception and raises it."""


def run(conn: Connection, request: tuple) -> tuple:
    code, mode, data, callbacks, library = request
    env = dict(data)
    env.update({name: _proxy(conn, name) for name in callbacks})
    env.update({name: LIBRARY[function] for name, function in library.items()})
    records = {name: value for name, value in data.items() if type(value) is Record}
    try:
        value = runner.execute(marshal.loads(code), env, mode=mode, max_work=runner.POOL_WORK)
        if mode == "eval":
            return ("done", runner.result(value), {})
        del env["__builtins__"]
        for name, record in records.items():
            if env.get(name) is record:  # the server puts its own Record back
                del env[name]
        runner.keep_plain(env, list(env), {})
        return ("done", env, {name: record.as_dict() for name, record in records.items()})
    except RuleError as error:
        return ("error", error.kind, error.message, error.line)
    except _CallbackFailed:
        return ("aborted",)


def _proxy(conn: Connection, name: str):
    """Stands in for the server's callback `name`: sends the call, waits for the result."""
    def call(*args, **kwargs):
        guards.count_call(name, args, kwargs)
        conn.send_bytes(wire.dumps(("call", name, args, kwargs)))
        reply = wire.loads(conn.recv_bytes())
        if reply[0] == "abort":
            raise meter.stop(_CallbackFailed(name))
        return reply[1]
    call.__name__ = name
    return call
