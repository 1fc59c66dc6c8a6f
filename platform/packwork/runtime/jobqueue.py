"""Scheduled rules through a Redis job queue (RQ): a scheduler enqueues each due rule as one job,
a worker runs the jobs. Without Redis, `packwork jobs run` runs due rules in-process instead
(`jobs.run_due`); both end in `jobs.run_rule`, so a run is the same either way.

One deployment (one database) uses one queue. A rule's job has a fixed id, `<queue>-<rule>`, and
is enqueued only when no job of that id is queued or running, atomically in Redis, so several
schedulers on several hosts queue a rule once. A job whose run has ended is kept a day for `rq
info` and is replaced by the next enqueue. A queued run checks that its rule is still due before it
starts (`jobs.run_if_due`): another host's scheduler may have looked at `pw_job_run` just before
the last run began.

The job carries the database URL, so any worker on the queue can run it (the URL, password
included, is stored in Redis with the job)."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import redis
import sqlalchemy as sa
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from packwork.runtime import jobs
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine

QUEUE = "packwork"
JOB_TIMEOUT = 3600  # seconds one run may take before the worker stops it
KEPT = 86400  # seconds an ended job (and its result) is kept for inspection
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}


class Unavailable(Exception):
    """Redis does not answer at the URL given."""


def open_queue(url: str, name: str = QUEUE) -> Queue:
    """The queue `name` on the Redis at `url`, which has just answered a PING."""
    try:
        connection = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30)
        connection.ping()
    except (redis.RedisError, ValueError) as exc:
        raise Unavailable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return Queue(name, connection=connection)


def job_id(queue: Queue, rule: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{queue.name}-{rule}")


def run_job(db_url: str, rule: str) -> jobs.Report | None:
    """The job: run `rule` on the database at `db_url` if it is still due."""
    engine = make_engine(db_url)
    try:
        return jobs.run_if_due(engine, rule)
    except sa.exc.SQLAlchemyError as exc:  # e.g. the database does not answer: no pw_job_run to write
        return jobs.Report(rule, error=f"database error: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


def enqueue_due(queue: Queue, engine: sa.Engine, db_url: str,
                now: datetime | None = None) -> list[tuple[str, bool]]:
    """Enqueue every scheduled rule due now: [(rule, queued)], queued False when a run of it was
    already queued or running."""
    with engine.connect() as conn:
        rules = jobs.due(conn, load_catalog(conn), now or datetime.now(timezone.utc))
    return [(rule.name, enqueue(queue, db_url, rule.name)) for rule in rules]


def enqueue(queue: Queue, db_url: str, rule: str) -> bool:
    """Queue one run of `rule`, unless one is queued or running already."""
    ident = job_id(queue, rule)
    for _ in range(2):  # a second try after forgetting an ended run
        try:
            queue.enqueue(run_job, db_url, rule, job_id=ident, unique=True, description=f"scheduled rule {rule}",
                          job_timeout=JOB_TIMEOUT, result_ttl=KEPT, failure_ttl=KEPT)
            return True
        except DuplicateJobError:
            if not _forget_ended(queue.connection, ident):
                return False
    return False


def _forget_ended(connection: redis.Redis, ident: str) -> bool:
    """Delete job `ident` if its run has ended; False if it is queued or running. WATCH makes the
    check and the delete one step: a job another scheduler replaced meanwhile is left alone."""
    key = Job.key_for(ident)
    with connection.pipeline() as pipe:
        try:
            pipe.watch(key)
            status = pipe.hget(key, "status")
            if status is None:
                return True  # gone (expired) since the enqueue looked
            if JobStatus(status.decode()) not in ENDED:
                return False
            job = Job.fetch(ident, connection=connection)
            pipe.multi()
            job.delete(pipeline=pipe)
            pipe.execute()
            return True
        except (redis.WatchError, NoSuchJobError):
            return False


class RuleWorker(SimpleWorker):
    """Runs the queue's jobs in this process, one after another, and hands each run's report to
    `on_report` (a job that raised becomes a report with its error)."""

    def __init__(self, queue: Queue, on_report: Callable[[jobs.Report], None]):
        super().__init__([queue], connection=queue.connection, name=f"{queue.name}.{uuid.uuid4().hex[:10]}")
        self.on_report = on_report

    def execute_job(self, job: Job, queue: Queue) -> None:
        super().execute_job(job, queue)
        report = outcome(job)
        if report is not None:
            self.on_report(report)


def outcome(job: Job) -> jobs.Report | None:
    """The report of a job's last run; None when it found its rule no longer due."""
    result = job.latest_result()
    if result is None:
        return None
    if result.type == Result.Type.SUCCESSFUL:
        return result.return_value
    return jobs.Report(job.args[1], error=f"job failed: {_exception_line(result.exc_string or '')}")


def _exception_line(trace: str) -> str:
    """`Type: message` from a formatted traceback: the line after its last indented one."""
    lines = trace.strip().splitlines()
    indented = [n for n, line in enumerate(lines) if line.startswith(" ")]
    after = indented[-1] + 1 if indented else 0
    return lines[after] if after < len(lines) else "no reason given"


def work(queue: Queue, on_report: Callable[[jobs.Report], None]) -> bool:
    """Run every job waiting in `queue`, then return (RQ's burst mode): True, or False when
    asked to stop (SIGTERM or Ctrl-C) before the queue was empty."""
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        RuleWorker(queue, on_report).work(burst=True, logging_level="WARNING")
    except StopRequested:  # RQ's own stop handler: the job in hand was finished first
        return False
    finally:  # RQ installs its own stop handlers; between bursts Ctrl-C must stop the command
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return True
