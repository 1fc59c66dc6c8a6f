"""Per-token API rate limits: over the limit a token gets 429 problem+json with Retry-After,
other tokens carry on, and nothing the refused request asked for is done."""

from __future__ import annotations

import pytest

from api.conftest import install, signed_in
from conftest import TEST_PACKS
from packwork.web.app import create_app


def _token(engine, username: str) -> dict:
    return {"Authorization": f"Bearer {signed_in(engine, username, ['keeper'])}"}


def test_over_the_limit_a_token_waits(db_url):
    engine = install(db_url, TEST_PACKS / "mini")
    app = create_app(db_url, PACKWORK_API_RATE="3/60")
    client, first, second = app.test_client(), _token(engine, "first"), _token(engine, "second")
    for n in range(3):
        assert client.post("/api/v1/widget", json={"name": f"w{n}"}, headers=first).status_code == 201
    refused = client.post("/api/v1/widget", json={"name": "one too many"}, headers=first)
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.json["code"] == "REQ-E429" and "3 requests in 60 s" in refused.json["detail"]
    assert refused.headers["Retry-After"] == "20"
    assert client.get("/api/v1/widget", headers=second).status_code == 200, "another token is not held up"
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT name FROM widget").scalars())
    assert names == {"w0", "w1", "w2"}, "the refused create wrote nothing"


def test_unknown_tokens_spend_nothing(db_url):
    engine = install(db_url, TEST_PACKS / "mini")
    app = create_app(db_url, PACKWORK_API_RATE="1/60")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/widget", headers={"Authorization": "Bearer pwt_nope"}).status_code == 401
    assert client.get("/api/v1/widget", headers=_token(engine, "someone")).status_code == 200


def test_the_limit_can_be_turned_off_and_must_make_sense(db_url):
    engine = install(db_url, TEST_PACKS / "mini")
    client, headers = create_app(db_url, PACKWORK_API_RATE="off").test_client(), _token(engine, "free")
    assert all(client.get("/api/v1/widget", headers=headers).status_code == 200 for _ in range(50))
    with pytest.raises(ValueError, match="REQUESTS/SECONDS"):
        create_app(db_url, PACKWORK_API_RATE="lots")
