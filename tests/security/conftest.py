"""A populated world for permission tests: a pack installed, a team tree, one signed-in user per
role of the pack, and records created by the platform with any owner.

Teams: north > north_east, and south. Each role's user sits in north; `mate` in north_east (so
in the team scope of north, through the sub-team); `stranger` in south; `heir` in no team."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import date

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import PACKS, TEST_PACKS, fresh_database
from packwork.metadata.model import Entity
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.permissions import Actor
from packwork.runtime import records
from packwork.runtime.records import Context
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services

PACKS_UNDER_TEST = {"standard_crm": PACKS / "standard_crm", "mini": TEST_PACKS / "mini"}
PLATFORM = Actor(None)


@dataclass
class Client:
    """One user's view through the HTTP API."""

    app: object
    user_id: int
    secret: str

    def call(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.secret}"} | kwargs.pop("headers", {})
        return self.app.test_client().open(f"/api/v1/{path}", method=method, headers=headers, **kwargs)

    def listed_ids(self, entity: str, **params) -> list[int]:
        response = self.call("GET", entity, query_string=params)
        assert response.status_code == 200, response.json
        return [row["id"] for row in response.json["data"]]

    def exported(self, entity: str, **params) -> list[dict]:
        response = self.call("GET", f"{entity}/export", query_string=params)
        assert response.status_code == 200, response.json
        return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@dataclass
class World:
    engine: sa.Engine
    app: object
    users: dict[str, int] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    _serial: itertools.count = field(default_factory=lambda: itertools.count(1))
    _catalogs: CatalogCache = field(default_factory=CatalogCache)  # not a parse of the pack per record made

    @property
    def metadata(self):
        with self.engine.connect() as conn:
            return self._catalogs.current(conn).metadata

    def add_user(self, username: str, roles: list[str], team: str | None, metadata) -> Client:
        with self.engine.begin() as conn:
            user_id = create_user(conn, username, roles, metadata.roles, team=team)
            secret = create_token(conn, user_id, "tests")[1]
        self.users[username] = user_id
        self.clients[username] = Client(self.app, user_id, secret)
        return self.clients[username]

    def sample(self, entity: Entity, owner: int, ctx: Context | None = None, *, every_field: bool = False) -> dict:
        """Valid values for every required field (or every field a rule might want, so stage
        gates pass); references point at new records of `owner`."""
        values = {}
        for f in entity.fields:
            wanted = f.required and f.default is None or every_field and not f.unique and f.type != "stage"
            if wanted and f.has_column and not f.read_only and f.type != "computed":
                values[f.name] = self.value(f, owner, ctx)
        return values | {"owner_id": owner}

    def value(self, f, owner: int, ctx: Context | None = None) -> object:
        n = next(self._serial)
        kind = f.value_type
        if kind == "reference":
            return self.create(f.target, owner, ctx=ctx)["id"]
        return {"text": f"{f.name} {n}", "long_text": f"text {n}", "email": f"u{n}@example.com",
                "phone": f"+1 555 {n:04d}", "url": f"https://example.com/{n}", "integer": n,
                "decimal": "1.5", "money": "10.00", "percent": "50", "boolean": True,
                "date": date(2024, 1, 1).isoformat(), "datetime": "2024-01-01T00:00:00Z",
                "choice": f.choices[0].value if f.choices else None,
                "stage": f.choices[0].value if f.choices else None,
                "multi_choice": [f.choices[0].value] if f.choices else [], "user": owner}[kind]

    def create(self, entity: str, owner: int, ctx: Context | None = None, *, every_field: bool = False,
               **values) -> dict:
        """A record created by the platform itself, owned by `owner`."""
        if ctx is None:
            with self.engine.begin() as conn:
                return self.create(entity, owner, Context.start(conn, self._catalogs.current(conn), PLATFORM),
                                   every_field=every_field, **values)
        data = self.sample(ctx.catalog.metadata.entities[entity], owner, ctx, every_field=every_field) | values
        return records.create_record(ctx, entity, data)

    def row(self, entity: str, record_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT * FROM {entity} WHERE id = :id"), {"id": record_id}).mappings().first()
            return None if row is None else dict(row)

    def count(self, entity: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {entity}")).scalar()


def build_world(url: str, pack: str) -> World:
    engine = install(url, PACKS_UNDER_TEST[pack])
    world = World(engine, create_app(url))
    with engine.begin() as conn:
        create_team(conn, "north")
        create_team(conn, "north_east", parent="north")
        create_team(conn, "south")
    metadata = world.metadata
    for role in metadata.roles:
        world.add_user(role, [role], "north", metadata)
    world.add_user("mate", [], "north_east", metadata)
    world.add_user("stranger", [], "south", metadata)
    world.add_user("heir", [], None, metadata)
    return world


DATABASES = ("sqlite", "postgresql")


def worlds(*packs: str) -> dict:
    """`@pytest.mark.parametrize(**worlds("mini"))`: the test runs on each database with each pack."""
    return {"argnames": "world", "indirect": True, "ids": lambda p: f"{p[0]}-{p[1]}",
            "argvalues": [(db, pack) for db in DATABASES for pack in packs]}


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    """Parametrized indirectly with (database, pack); built once per module and pair."""
    kind, pack = request.param
    with fresh_database(kind, tmp_path_factory.mktemp(kind), request) as url:
        built = build_world(url, pack)
        yield built
        services(built.app).engine.dispose()
        built.engine.dispose()
