"""Scheduled rules through a real Redis job queue (RQ), on SQLite and PostgreSQL: a due rule is
enqueued once however many schedulers look, the worker runs it through `jobs.run_rule`, a run
that is no longer due does nothing, and without Redis `packwork jobs run` runs rules in-process.

Redis tests skip when no Redis answers, unless PACKWORK_REQUIRE_REDIS=1 (CI), where they fail.
Each test has a queue of its own and removes its keys afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa

from api.conftest import install
from conftest import ROOT, TEST_PACKS
from packwork.runtime import jobqueue, jobs

REDIS_URL = os.environ.get("PACKWORK_TEST_REDIS", "redis://127.0.0.1:6379/0")
RULE = "idle_widgets_count_nothing"  # the mini pack's daily rule: idle widgets' count becomes 0


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("PACKWORK_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (PACKWORK_REQUIRE_REDIS=1) but not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def queue(redis_url):
    queue = jobqueue.open_queue(redis_url, f"pwtest_{uuid.uuid4().hex[:12]}")
    yield queue
    connection = queue.connection
    for key in connection.scan_iter(f"*{queue.name}*"):
        connection.delete(key)
    connection.srem("rq:queues", queue.key)
    for member in connection.smembers("rq:workers"):
        if queue.name in member.decode():
            connection.srem("rq:workers", member)
    connection.close()


@pytest.fixture
def mini(db_url):
    """The mini pack installed, with an idle widget, one the rule's change is refused for, and a
    busy one the rule does not select: (db_url, engine)."""
    engine = install(db_url, TEST_PACKS / "mini")
    widget = sa.Table("widget", sa.MetaData(), autoload_with=engine)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        for name, active in (("idle", False), ("stubborn", False), ("busy", True)):
            conn.execute(widget.insert().values(name=name, active=active, count=5, created_at=now,
                                                updated_at=now, version=1))
    yield db_url, engine
    engine.dispose()


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT name, count FROM widget").all())


def job_run(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM pw_job_run")).mappings().all()


def test_a_due_rule_is_enqueued_and_the_worker_runs_it(mini, queue):
    db_url, engine = mini
    assert jobqueue.enqueue_due(queue, engine, db_url) == [(RULE, True)]
    assert queue.get_job_ids() == [jobqueue.job_id(queue, RULE)]
    assert counts(engine)["idle"] == 5 and job_run(engine) == []  # queued, not run

    reports = []
    jobqueue.work(queue, reports.append)
    [report] = reports
    assert (report.rule, report.visited, report.changed, report.refused, report.error) == (RULE, 2, 1, 1, None)
    assert "must not be negative" in report.messages[0]
    assert counts(engine) == {"idle": 0, "stubborn": 5, "busy": 5}
    [run] = job_run(engine)
    assert (run["rule"], run["visited"], run["changed"], run["refused"]) == (RULE, 2, 1, 1)
    assert run["finished_at"] is not None and run["error"] is None
    assert queue.get_job_ids() == []
    assert jobqueue.enqueue_due(queue, engine, db_url) == []  # daily: not due again


def test_enqueueing_twice_while_pending_yields_one_job(mini, queue, redis_url):
    db_url, engine = mini
    other_host = jobqueue.open_queue(redis_url, queue.name)  # another scheduler, its own connection
    assert jobqueue.enqueue_due(queue, engine, db_url) == [(RULE, True)]
    assert jobqueue.enqueue_due(queue, engine, db_url) == [(RULE, False)]
    assert jobqueue.enqueue_due(other_host, engine, db_url) == [(RULE, False)]
    assert len(queue) == 1
    reports = []
    jobqueue.work(queue, reports.append)
    jobqueue.work(other_host, reports.append)
    assert [r.rule for r in reports] == [RULE]
    assert counts(engine)["idle"] == 0
    other_host.connection.close()


def test_a_queued_run_whose_rule_ran_since_does_nothing(mini, queue):
    """A scheduler that read pw_job_run just before another host's run began queues the rule
    again after that run ended: the ended job is replaced, and the new run finds it not due."""
    db_url, engine = mini
    assert jobqueue.enqueue_due(queue, engine, db_url) == [(RULE, True)]
    jobqueue.work(queue, lambda report: None)
    [first] = job_run(engine)
    later = datetime.now(timezone.utc) + timedelta(days=1, minutes=1)  # what the late scheduler saw as due
    assert jobqueue.enqueue_due(queue, engine, db_url, now=later) == [(RULE, True)]
    reports = []
    jobqueue.work(queue, reports.append)
    assert reports == []
    assert job_run(engine) == [first]


def test_a_database_that_does_not_answer_is_a_report_with_the_error(queue, tmp_path):
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"
    assert jobqueue.enqueue(queue, missing, RULE)
    reports = []
    jobqueue.work(queue, reports.append)
    [report] = reports
    assert report.rule == RULE and report.error.startswith("database error: ") and "unable to open" in report.error


def test_a_job_that_raises_is_reported_and_can_be_queued_again(queue, monkeypatch):
    def broken(engine, name):
        raise RuntimeError("the rule's run broke")
    monkeypatch.setattr(jobs, "run_if_due", broken)  # the worker runs jobs in this process
    assert jobqueue.enqueue(queue, "sqlite://", RULE)
    reports = []
    jobqueue.work(queue, reports.append)
    assert [(r.rule, r.error) for r in reports] == [(RULE, "job failed: RuntimeError: the rule's run broke")]
    assert jobqueue.enqueue(queue, "sqlite://", RULE)  # the failed job is replaced, not blocking the rule
    assert not jobqueue.enqueue(queue, "sqlite://", RULE)
    assert len(queue) == 1


def packwork(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "PACKWORK_REDIS_URL"} | (env or {})
    result = subprocess.run([sys.executable, "-m", "packwork", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=environment)
    assert "Traceback" not in result.stderr, result.stderr
    return result


DONE = f"{RULE}: done; 2 visited, 1 changed, 1 refused"


def test_jobs_run_once_with_redis_schedules_and_works(mini, queue):
    db_url, engine = mini
    redis_env = {"PACKWORK_REDIS_URL": REDIS_URL}
    enqueued = packwork("jobs", "enqueue", "--db", db_url, "--queue", queue.name, env=redis_env)
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stdout.splitlines() == [f"{RULE}: queued"]
    again = packwork("jobs", "enqueue", "--db", db_url, "--queue", queue.name, env=redis_env)
    assert again.stdout.splitlines() == [f"{RULE}: already queued or running"]
    assert counts(engine)["idle"] == 5

    ran = packwork("jobs", "run", "--once", "--db", db_url, "--queue", queue.name, env=redis_env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == DONE and ran.stderr == ""
    assert counts(engine)["idle"] == 0 and len(queue) == 0
    assert packwork("jobs", "run", "--once", "--db", db_url, "--redis", REDIS_URL, "--queue", queue.name).stdout == ""


def test_jobs_run_once_without_redis_runs_in_process(mini):
    db_url, engine = mini
    down = packwork("jobs", "run", "--once", "--db", db_url, "--redis", "redis://user:secret@127.0.0.1:1/0")
    assert down.returncode == 0, down.stderr
    [line] = down.stderr.splitlines()
    assert line.startswith("Redis at redis://127.0.0.1:1/0 does not answer (") and "secret" not in line
    assert line.endswith("running scheduled rules in this process.")
    assert down.stdout.splitlines()[0] == DONE
    assert counts(engine)["idle"] == 0
    plain = packwork("jobs", "run", "--once", "--db", db_url)  # no Redis named: the embedded scheduler
    assert plain.returncode == 0 and plain.stdout == "" and plain.stderr == ""


def test_a_stop_asked_for_between_jobs_ends_the_burst_quietly(queue, monkeypatch):
    """SIGTERM reaching an idle RQ worker makes RQ raise StopRequested (`jobs run --redis`
    printed its traceback when stopped): `work` says it was stopped, and puts back the signal
    handlers it found."""
    import signal

    def stopped_while_idle(self, **kwargs):
        self.request_stop(signal.SIGTERM, None)  # RQ's own handler, as the signal would call it

    monkeypatch.setattr(jobqueue.RuleWorker, "work", stopped_while_idle)
    before = signal.getsignal(signal.SIGTERM)
    assert jobqueue.work(queue, lambda report: None) is False
    assert signal.getsignal(signal.SIGTERM) is before
