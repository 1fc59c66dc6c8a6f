"""The studio's permission and people pages through Flask's test client on SQLite and
PostgreSQL: only administrators get in; the matrix shows what the packs grant; a wider scope
granted in the matrix is, once the plan is applied, what the role's users may do through the
API and the UI; a narrower one is refused next to its select with nothing applied; a field
hidden for a role leaves that role's API answers; users and teams made in the studio can sign
in, and a refused one is refused next to its input with nothing written.

The world is the mini pack and its chores: `foreman` has no grant of `chore` at all, `maker`
reads every widget but cannot delete one, and the packs hide widget `notes` from makers."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from conftest import TEST_PACKS
from packwork.metadata.access import entity_policy
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore
from packwork.runtime.tokens import create_token
from web.studio_world import StudioWorld, field_errors, studio_world
from web.test_ui_security import PASSWORD, Visitor

SELECT = re.compile(r'<select id="s-[^"]*" name="([^"]+)"[^>]*>(.*?)</select>', re.S)
SELECTED = re.compile(r'<option value="([^"]*)"\s*selected')
ROLES = ["keeper", "maker", "foreman"]


def selects(page: str) -> dict[str, str]:
    """Every select of the page and the value it has selected, as the browser would post it."""
    return {html.unescape(name): (SELECTED.findall(body) or [""])[0] for name, body in SELECT.findall(page)}


class World(StudioWorld):
    def token(self, username: str) -> dict:
        with self.engine.begin() as conn:
            user_id = conn.execute(sa.text("SELECT id FROM pw_user WHERE username = :u"), {"u": username}).scalar()
            return {"Authorization": f"Bearer {create_token(conn, user_id, 'tests')[1]}"}

    def api(self, username: str, method: str, path: str, **kwargs):
        return self.app.test_client().open(f"/api/v1/{path}", method=method, headers=self.token(username), **kwargs)

    def matrix(self, role: str, **changes: str):
        """Post the role's matrix as the page shows it, with `changes` (`chore__read="own"`)."""
        page = self.admin.client.get(f"/admin/access?role={role}")
        assert page.status_code == 200
        values = selects(page.text)
        values.pop("role")  # the role picker is a form of its own
        values |= {"grant." + key.replace("__", "."): scope for key, scope in changes.items()}
        return self.admin.post("/admin/access", values | {"role": role})

    def fields(self, role: str, entity: str, **changes: str):
        path = f"/admin/access/{role}/{entity}"
        values = selects(self.admin.client.get(path).text) | {f"field.{k}": v for k, v in changes.items()}
        return self.admin.post(path, values)

    def policy(self, role: str, entity: str):
        with self.engine.connect() as conn:
            metadata = resolve_sources(packstore.installed_sources(conn))
        return entity_policy(metadata, [role], entity)

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


@pytest.fixture
def world(db_url):
    with studio_world(db_url, TEST_PACKS / "chores", {"mo": ["maker"], "fay": ["foreman"]}, ROLES, World) as world:
        yield world  # chores depends on mini


def test_only_administrators_get_in(world):
    visitor = Visitor(world.app).sign_in("mo")
    for path in ("/admin/access", "/admin/access?role=maker", "/admin/access/maker/widget", "/admin/people"):
        assert visitor.client.get(path).status_code == 403, path
    posts = {"/admin/access": {"role": "maker", "grant.widget.delete": "all"},
             "/admin/access/maker/widget": {"field.notes": "editable"},
             "/admin/people/users": {"username": "sneaky", "password": PASSWORD, "roles": "admin"},
             "/admin/people/teams": {"name": "sneaky"}}
    for path, data in posts.items():
        assert visitor.post(path, data).status_code == 403, path
    assert world.layer() == ("", 0)
    assert world.count("pw_user") == 3 and world.count("pw_team") == 0
    assert Visitor(world.app).client.get("/admin/access").status_code in (302, 303, 401)


def test_the_matrix_shows_what_the_packs_grant(world):
    page = world.admin.client.get("/admin/access?role=maker")
    assert page.status_code == 200
    values = selects(page.text)
    assert values["grant.widget.read"] == "all" and values["grant.widget.create"] == "own"
    assert values["grant.widget.delete"] == "none" and values["grant.bin.read"] == "own"
    assert values["grant.chore.read"] == "own" and values["grant.chore.delete"] == "none"
    assert 'href="/admin/access/maker/widget"' in page.text
    foreman = world.admin.client.get("/admin/access?role=foreman").text
    assert selects(foreman)["grant.widget.read"] == "team" and "maker = $me" in foreman
    assert selects(foreman)["grant.chore.read"] == "none"
    assert selects(world.admin.client.get("/admin/access").text)["role"] == "keeper"  # the first role
    assert world.admin.client.get("/admin/access?role=nobody").status_code == 404


def test_a_scope_granted_in_the_matrix_is_what_the_role_may_do(world):
    assert world.api("fay", "GET", "chore").status_code == 403
    plan = world.matrix("foreman", chore__read="own", chore__create="own")
    assert "Apply" in plan.text and world.layer() == ("", 0)  # nothing applied before Apply
    world.apply(plan)
    text, versions = world.layer()
    assert versions == 1 and "foreman:" in text and "chore:" in text
    made = world.api("fay", "POST", "chore", json={"subject": "Sweep"})
    assert made.status_code == 201, made.json
    listed = world.api("fay", "GET", "chore")
    assert listed.status_code == 200 and [r["subject"] for r in listed.json["data"]] == ["Sweep"]
    assert world.api("fay", "DELETE", f"chore/{made.json['id']}").status_code == 403  # only what was granted
    fay = Visitor(world.app).sign_in("fay")
    assert fay.client.get("/r/chore").status_code == 200
    shown = selects(world.admin.client.get("/admin/access?role=foreman").text)
    assert shown["grant.chore.read"] == "own" and shown["grant.chore.delete"] == "none"

    # back to what the packs grant: the layer grant goes
    world.apply(world.matrix("foreman", chore__read="none", chore__create="none"))
    assert "chore" not in world.layer()[0] and world.api("fay", "GET", "chore").status_code == 403


def test_a_narrower_scope_than_the_packs_is_refused_next_to_its_select(world):
    refused = world.matrix("maker", widget__read="own", widget__delete="own")
    assert refused.status_code == 422
    assert field_errors(refused.text, "grant.widget.read") == [
        "the packs grant all: the studio can only add to what packs grant, so this cannot be narrowed here"]
    assert field_errors(refused.text, "grant.widget.delete") == []
    assert selects(refused.text)["grant.widget.read"] == "own"  # the form keeps what was chosen
    assert world.layer() == ("", 0)
    assert world.matrix("maker", widget__read="everything").status_code == 422
    assert world.layer() == ("", 0)


def test_a_field_hidden_for_a_role_leaves_its_api_answers(world):
    unread = world.fields("foreman", "chore", due_on="hidden")  # foreman may not read chores yet
    assert unread.status_code == 422 and "foreman may not read chore: grant read" in unread.text
    assert world.admin.client.get("/admin/access/foreman/nothing").status_code == 404
    world.apply(world.matrix("foreman", chore__read="own", chore__create="own", chore__update="own"))
    made = world.api("fay", "POST", "chore", json={"subject": "Dust", "due_on": "2024-05-01"})
    assert made.status_code == 201 and made.json["due_on"] == "2024-05-01"
    assert selects(world.admin.client.get("/admin/access/foreman/chore").text)["field.due_on"] == "editable"

    world.apply(world.fields("foreman", "chore", due_on="hidden", finished="read_only"))
    record = world.api("fay", "GET", f"chore/{made.json['id']}")
    assert record.status_code == 200 and "due_on" not in record.json and record.json["subject"] == "Dust"
    assert "due_on" not in world.api("fay", "GET", "chore").json["data"][0]
    assert world.api("root", "GET", f"chore/{made.json['id']}").json["due_on"] == "2024-05-01"
    assert world.policy("foreman", "chore").read_only == frozenset({"finished"})
    shown = selects(world.admin.client.get("/admin/access/foreman/chore").text)
    assert shown["field.due_on"] == "hidden" and shown["field.finished"] == "read_only"
    assert selects(world.admin.client.get("/admin/access?role=foreman").text)["grant.chore.read"] == "own"


def test_a_field_the_packs_show_cannot_be_hidden_for_a_role_but_one_they_hide_can_be_shown(world):
    refused = world.fields("maker", "chore", due_on="hidden")
    assert refused.status_code == 422
    assert field_errors(refused.text, "field.due_on")[0].startswith("the packs let maker see this field")
    assert world.layer() == ("", 0)

    mo_widget = world.api("root", "POST", "widget", json={"name": "w", "notes": "secret"}).json["id"]
    assert "notes" not in world.api("mo", "GET", f"widget/{mo_widget}").json
    assert selects(world.admin.client.get("/admin/access/maker/widget").text)["field.notes"] == "hidden"
    world.apply(world.fields("maker", "widget", notes="editable"))
    assert world.api("mo", "GET", f"widget/{mo_widget}").json["notes"] == "secret"
    policy = world.policy("maker", "widget")  # nothing else widened: weight read-only, no move to shipped
    assert policy.hidden == frozenset() and policy.read_only == frozenset({"weight"})
    assert not policy.stage_reach("shipped").granted and policy.reach("read").scope == "all"


def test_a_user_made_in_the_studio_can_sign_in(world):
    team = world.admin.post("/admin/people/teams", {"name": "north", "label": "<script>alert(1)</script>"})
    assert team.status_code == 303
    made = world.admin.post("/admin/people/users", {"username": "ned", "display_name": "Ned Stark",
                                                    "password": PASSWORD, "roles": ["foreman", "maker"],
                                                    "team": "north"})
    assert made.status_code == 303, made.text[:2000]
    page = world.admin.client.get("/admin/people").text
    assert "Ned Stark" in page and "foreman, maker" in page and 'data-team="north"' in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    ned = Visitor(world.app).sign_in("ned")
    assert ned.client.get("/r/widget").status_code == 200
    with world.engine.connect() as conn:
        team_of = conn.execute(sa.text("SELECT t.name FROM pw_team t JOIN pw_team_member m ON m.team_id = t.id "
                                       "JOIN pw_user u ON u.id = m.user_id WHERE u.username = 'ned'")).scalar()
    assert team_of == "north"
    sub = world.admin.post("/admin/people/teams", {"name": "south", "parent": "nowhere"})
    assert sub.status_code == 422 and field_errors(sub.text, "parent") == ["there is no team named 'nowhere'"]
    assert world.count("pw_team") == 1


def test_a_refused_user_is_refused_next_to_its_inputs_with_nothing_written(world):
    before = (world.count("pw_user"), world.count("pw_user_role"), world.count("pw_team_member"))
    taken = world.admin.post("/admin/people/users", {"username": "mo", "password": PASSWORD, "roles": ["maker"]})
    assert taken.status_code == 422
    assert field_errors(taken.text, "username") == ["a user named 'mo' already exists"]
    many = world.admin.post("/admin/people/users", {"username": "zed", "password": "short",
                                                    "roles": ["emperor"], "team": "nowhere"})
    assert many.status_code == 422
    assert field_errors(many.text, "password") and field_errors(many.text, "team") and field_errors(many.text, "roles")
    assert 'value="zed"' in many.text and 'value="short"' not in many.text  # no password sent back
    assert (world.count("pw_user"), world.count("pw_user_role"), world.count("pw_team_member")) == before
    assert Visitor(world.app).login_response("zed", "short").status_code != 303
