"""An installed pack, a user with a token and an app, per database and per entity under test.

The API suite runs unchanged against a standard_crm entity and a custom entity that exists only
in a test pack: each case says which pack, which entity, and what valid values look like."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import PACKS, TEST_PACKS, fresh_database
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services


@dataclass(frozen=True)
class EntityCase:
    pack: Path
    entity: str
    sample: dict  # valid values; `title` gets a unique suffix per record
    title: str  # a required text field
    unique: str  # a unique text field
    change: dict  # a valid update
    reference: str  # a reference field
    target: str  # the entity it points at
    target_sample: dict
    role: str
    bad_values: dict = field(default_factory=dict)  # {field: invalid value}


CASES = {
    "account": EntityCase(
        PACKS / "standard_crm", "account",
        {"industry": "retail", "employees": 40, "annual_revenue": "1250000.50", "website": "https://a.example"},
        "name", "code", {"employees": 41, "level": "key"}, "parent", "account", {"name": "Parent Co"},
        "system_admin", {"employees": "forty", "industry": "mining-on-mars", "website": "not a url"}),
    "widget": EntityCase(
        TEST_PACKS / "mini", "widget",
        {"count": 3, "price": "9.99", "weight": "1.250", "tags": ["new"], "made_on": "2024-02-29"},
        "name", "code", {"count": 4, "size": "m"}, "bin", "bin", {"label_text": "Shelf 1"},
        "keeper", {"count": 1.5, "size": "xxl", "made_on": "2024-02-30"}),
}


class Api:
    """A signed-in client for one case, plus direct SQL for checking what the database holds."""

    def __init__(self, app, engine: sa.Engine, secret: str, case: EntityCase):
        self.client, self.engine, self.case = app.test_client(), engine, case
        self.headers = {"Authorization": f"Bearer {secret}"}
        self._names = itertools.count(1)

    def url(self, suffix: str = "", entity: str | None = None) -> str:
        return f"/api/v1/{entity or self.case.entity}{suffix}"

    def call(self, method: str, suffix: str = "", *, entity: str | None = None, headers: dict | None = None,
             **kwargs):
        return self.client.open(self.url(suffix, entity), method=method,
                                headers=self.headers | (headers or {}), **kwargs)

    def new_values(self, **extra) -> dict:
        n = next(self._names)
        return self.case.sample | {self.case.title: f"Rec {n} {id(self)}", self.case.unique: f"U{n}-{id(self) % 9973}"} | extra

    def create(self, **extra) -> dict:
        response = self.call("POST", json=self.new_values(**extra))
        assert response.status_code == 201, response.json
        return response.json

    def rows(self, where: str = "deleted_at IS NULL") -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {self.case.entity} WHERE {where}")).scalar()


def install(url: str, pack: Path) -> sa.Engine:
    engine = make_engine(url)
    apply(engine, plan_packs(engine, [pack], "install"))
    return engine


def signed_in(engine: sa.Engine, username: str, roles: list[str]) -> str:
    with engine.begin() as conn:
        user_id = create_user(conn, username, roles, roles)
        return create_token(conn, user_id, "tests")[1]


@pytest.fixture(scope="module", params=[(db, entity) for db in ("sqlite", "postgresql") for entity in CASES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def api(request, tmp_path_factory):
    kind, name = request.param
    case = CASES[name]
    with fresh_database(kind, tmp_path_factory.mktemp(kind), request) as url:
        engine = install(url, case.pack)
        app = create_app(url)
        yield Api(app, engine, signed_in(engine, "ann", [case.role]), case)
        services(app).engine.dispose()
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served_crm(request, tmp_path_factory):
    """The standard CRM served by an app whose API has no rate limit (every generated example
    must reach its operation), and the API token of a sales manager: what the fuzzing tests use."""
    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz"), request) as url:
        engine = install(url, PACKS / "standard_crm")
        secret = signed_in(engine, "fuzzer", ["sales_manager"])
        app = create_app(url, PACKWORK_API_RATE="off")
        yield app, secret
        engine.dispose()
