"""A read whose queries run past PACKWORK_QUERY_TIMEOUT is stopped and answered 400 with a
problem saying so; the app and its connections carry on (the next request, on the same pooled
connection, is not limited by the last one's clock). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from api.conftest import install, signed_in
from conftest import TEST_PACKS
from packwork.web.app import create_app

ROWS = 200_000
SLOW = "/api/v1/widget?filter=notes contains 'no such words'&limit=5"  # a scan of every row


def _ballast(engine: sa.Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO widget (name, notes, count, active, version, created_at, updated_at) "
                             "VALUES (:name, :notes, 0, true, 1, :now, :now)"),
                     [{"name": f"w{n}", "notes": f"a note about widget {n}", "now": now} for n in range(ROWS)])


@pytest.fixture
def crowded(db_url):
    engine = install(db_url, TEST_PACKS / "mini")
    _ballast(engine)
    yield db_url, {"Authorization": f"Bearer {signed_in(engine, 'reader', ['keeper'])}"}
    engine.dispose()


def test_a_slow_read_is_stopped_with_a_clear_answer(crowded):
    url, headers = crowded
    client = create_app(url, PACKWORK_QUERY_TIMEOUT="0.001", PACKWORK_API_RATE="off").test_client()
    slow = client.get(SLOW, headers=headers)
    assert slow.status_code == 400 and slow.mimetype == "application/problem+json", slow.data
    assert slow.json["code"] == "REQ-TIMEOUT" and "longer than 0.001 s" in slow.json["detail"]
    assert client.post("/api/v1/widget", json={"name": "written"}, headers=headers).status_code == 201, \
        "writes are not limited, and the refused read left the connection usable"


def test_within_the_limit_the_same_read_answers(crowded):
    url, headers = crowded
    client = create_app(url, PACKWORK_QUERY_TIMEOUT="60", PACKWORK_API_RATE="off").test_client()
    for _ in range(3):  # again and again on the pooled connection: no clock is left behind
        answer = client.get(SLOW, headers=headers)
        assert answer.status_code == 200 and answer.json["data"] == [], answer.data
    off = create_app(url, PACKWORK_QUERY_TIMEOUT="off").test_client()
    assert off.get(SLOW, headers=headers).status_code == 200


@pytest.mark.parametrize("setting", ["0", "-1", "soon", "100000"])
def test_the_setting_must_make_sense(setting, tmp_path):
    with pytest.raises(ValueError, match="PACKWORK_QUERY_TIMEOUT is seconds"):
        create_app(f"sqlite:///{tmp_path / 'x.db'}", PACKWORK_QUERY_TIMEOUT=setting)
