"""The web UI's defences, through Flask's test client over a real database (SQLite and
PostgreSQL): every state-changing form needs the session's CSRF token (and the sign-in form its
double-submitted one), pack labels and record values are escaped on every page, cookies are
HttpOnly and SameSite=Lax, sign-in is throttled, sign-out ends the session, the CSP allows only
the site's own scripts, and `next` never leads off the site.

The world is the `xss` test pack, whose entity, field, choice, view, board and role labels are
all `<script>alert(1)</script>`, and records whose values are too."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.sessions import MAX_FAILURES_PER_USER, set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services

PACK = TEST_PACKS / "xss"
ROLES = ["tinkerer"]
PASSWORD = "correct horse battery"
SCRIPT = "<script>alert(1)</script>"
RAW = "<script>alert"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]*)"')
USERS = ("ann", "bob", "cat", "dan", "eve")


class Visitor:
    """One browser: a test client with its own cookies, signed in through the sign-in form."""

    def __init__(self, app):
        self.client = app.test_client()
        self.csrf = ""

    def login_response(self, username: str, password: str = PASSWORD, **extra):
        form = self.client.get("/login")
        token = CSRF_INPUT.search(form.text).group(1)
        return self.client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": token} | extra)

    def sign_in(self, username: str) -> Visitor:
        response = self.login_response(username)
        assert response.status_code == 303, response.text
        self.csrf = CSRF_INPUT.search(self.client.get("/").text).group(1)
        return self

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie("pw_session")
        return cookie.value if cookie else None

    def post(self, path: str, data: dict | None = None, *, token: bool = True, **kwargs):
        data = dict(data or {})
        if token:
            data["csrf_token"] = self.csrf
        return self.client.post(path, data=data, **kwargs)


class World:
    def __init__(self, app, engine: sa.Engine):
        self.app, self.engine = app, engine

    def visitor(self, username: str = "ann") -> Visitor:
        return Visitor(self.app).sign_in(username)

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def snapshot(self) -> dict:
        """Everything a refused write could have touched."""
        with self.engine.connect() as conn:
            return {table: conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).all()
                    for table in ("gadget", "holder", "gadget_holder", "pw_saved_view", "pw_session", "pw_audit")}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, PACK)
        with engine.begin() as conn:
            for name in USERS:
                set_password(conn, create_user(conn, name, ROLES, ROLES), PASSWORD)
        app = create_app(url)
        visitor = Visitor(app).sign_in("ann")
        assert visitor.post("/r/holder/new", {"title": f"{SCRIPT} holder"}).status_code == 303
        for name, mood in ((f"{SCRIPT} gadget", "calm"), ("plain gadget", "wild")):
            response = visitor.post("/r/gadget/new", {"name": name, "holder": "1", "mood": mood})
            assert response.status_code == 303, response.text
        assert visitor.post("/r/gadget/1/edit", {"name": f"{SCRIPT} gadget!", "holder": "1", "mood": "calm",
                                                 "version": "1"}).status_code == 303
        assert visitor.post("/r/gadget/1/links/gadget_holder", {"id": "1", "note": SCRIPT}).status_code == 303
        yield World(app, engine)
        services(app).engine.dispose()
        engine.dispose()


# --- CSRF -----------------------------------------------------------------------------------------

WRITES = {
    "create": ("/r/gadget/new", {"name": "forged", "mood": "calm"}),
    "edit": ("/r/gadget/2/edit", {"name": "forged", "mood": "calm", "version": "1"}),
    "delete": ("/r/gadget/2/delete", {"version": "1"}),
    "kanban move": ("/r/gadget/2/move", {"field": "mood", "value": "calm", "version": "1"}),
    "mass delete": ("/r/gadget/mass", {"action": "delete", "ids": "2"}),
    "link": ("/r/gadget/2/links/gadget_holder", {"id": "1"}),
    "unlink": ("/r/gadget/1/links/gadget_holder/1/delete", {}),
    "save view": ("/r/gadget/views", {"name": "forged", "columns": "name", "filter": "mood = 'calm'"}),
    "settings": ("/me", {"language": "zh", "time_zone": "Asia/Shanghai"}),
    "password": ("/me/password", {"current": PASSWORD, "new": "forged password"}),
    "logout": ("/logout", {}),
    "pack action": ("/r/gadget/2/actions/poke", {"version": "1", "why": "forged"}),
}


@pytest.mark.parametrize("token", ["missing", "wrong", "another session's"])
@pytest.mark.parametrize("action", WRITES)
def test_a_write_without_the_session_csrf_token_is_refused_and_changes_nothing(world, action, token):
    visitor, other = world.visitor("bob"), world.visitor("cat")
    path, data = WRITES[action]
    sent = {"missing": None, "wrong": "x" * 43, "another session's": other.csrf}[token]
    before = world.snapshot()
    with world.engine.connect() as conn:
        settings = conn.execute(sa.text("SELECT language, password_hash FROM pw_user WHERE username = 'bob'")).one()

    response = visitor.post(path, data | ({"csrf_token": sent} if sent else {}), token=False)

    assert response.status_code == 403, (response.status_code, response.text[:500])
    assert world.snapshot() == before
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT language, password_hash FROM pw_user WHERE username = 'bob'")).one() \
            == settings
    assert visitor.client.get("/").status_code == 200, "the session survives a refused sign-out"


def test_the_csrf_token_in_a_header_is_accepted_as_htmx_sends_it(world):
    visitor = world.visitor("bob")
    response = visitor.post("/r/gadget/2/move", {"field": "mood", "value": "calm", "version": "1"}, token=False,
                            headers={"X-CSRF-Token": visitor.csrf, "Accept": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json["version"] == 2


def test_sign_in_without_its_csrf_token_is_refused(world):
    visitor = Visitor(world.app)
    visitor.client.get("/login")  # sets the pw_login_csrf cookie
    sessions = world.scalar("SELECT count(*) FROM pw_session")

    missing = visitor.client.post("/login", data={"username": "dan", "password": PASSWORD})
    forged = visitor.client.post("/login", data={"username": "dan", "password": PASSWORD, "csrf_token": "x" * 43})
    no_cookie = Visitor(world.app)  # a token from another browser's form, without its cookie
    token = CSRF_INPUT.search(Visitor(world.app).client.get("/login").text).group(1)
    cross_site = no_cookie.client.post("/login", data={"username": "dan", "password": PASSWORD, "csrf_token": token})

    for response in (missing, forged, cross_site):
        assert response.status_code == 403, response.text[:300]
        assert "pw_session" not in " ".join(response.headers.getlist("Set-Cookie"))
    assert world.scalar("SELECT count(*) FROM pw_session") == sessions


# --- escaping -------------------------------------------------------------------------------------

PAGES = {
    "home": "/",
    "list": "/r/gadget",
    "list with a quick search": "/r/gadget?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "list with a bad filter": "/r/gadget?filter=%3Cscript%3Ealert(1)%3C/script%3E",
    "list with a filter": "/r/gadget?filter=name+contains+%27%3Cscript%3E%27",
    "detail and history": "/r/gadget/1",
    "detail with related list": "/r/holder/1",
    "new form": "/r/gadget/new?name=%3Cscript%3Ealert(1)%3C/script%3E",
    "edit form": "/r/gadget/1/edit",
    "kanban": "/r/gadget/kanban/by_mood",
    "search": "/search?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "lookup": "/r/holder/lookup?q=script&field=%3Cscript%3Ealert(1)%3C/script%3E",
    "error page": "/r/gadget/kanban/%3Cscript%3Ealert(1)%3C%5Cscript%3E",
    "settings": "/me",
    "dashboard": "/dashboards/evil",
    "dashboards": "/dashboards",
}


@pytest.mark.parametrize("name", PAGES)
def test_labels_and_values_that_are_markup_are_shown_as_text(world, name):
    response = world.visitor("ann").client.get(PAGES[name])
    assert response.status_code in (200, 404, 422), response.text[:300]
    assert RAW not in response.text
    assert "&lt;script&gt;alert(1)" in response.text


def test_a_linked_list_escapes_labels_and_values(world):
    html = world.visitor("ann").client.get("/r/gadget/1?tab=related").text
    linked = html[html.index('data-relation="gadget_holder"'):html.index('id="panel-history"')]
    assert f"{ESCAPED} Also held by" in linked and f"<td>{ESCAPED}</td>" in linked and RAW not in linked


def test_the_history_tab_escapes_old_and_new_values(world):
    html = world.visitor("ann").client.get("/r/gadget/1").text
    history = html[html.index('id="panel-history"'):]
    assert f"{ESCAPED} gadget → {ESCAPED} gadget!" in history


def test_a_refused_form_escapes_what_was_typed(world):
    visitor = world.visitor("ann")
    response = visitor.post("/r/gadget/new", {"name": f"{SCRIPT} again", "mood": SCRIPT})
    assert response.status_code == 422
    assert RAW not in response.text and f"{ESCAPED} again" in response.text


def test_a_pack_action_escapes_its_label_confirm_text_inputs_and_refusal(world):
    visitor = world.visitor("ann")
    page = visitor.client.get("/r/gadget/1").text
    form = page[page.index('data-action="poke"'):]
    form = form[:form.index("</details>")]
    assert RAW not in form and f"{ESCAPED} Poke" in form and f'data-confirm="{ESCAPED} Sure?"' in form
    assert f"{ESCAPED} Why" in form and f"{ESCAPED} Say why" in form
    refused = visitor.post("/r/gadget/1/actions/poke", {"version": "2", "why": SCRIPT})
    assert refused.status_code == 422 and RAW not in refused.text
    assert f"{ESCAPED} refused: {ESCAPED}" in refused.text and f'value="{ESCAPED}"' in refused.text


def test_a_refused_kanban_move_answers_json_not_markup(world):
    visitor = world.visitor("ann")
    version = world.scalar("SELECT version FROM gadget WHERE id = 2")
    response = visitor.post("/r/gadget/2/move", {"field": "mood", "value": SCRIPT, "version": str(version)},
                            headers={"Accept": "application/json"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("path", "data"), [
    ("/r/gadget/2/move", {"field": "mood", "value": "calm", "version": "\u00b2"}),
    ("/r/gadget/2/edit", {"name": "x", "version": "99999999999999999999999"}),
    ("/r/gadget/2/delete", {"version": "\u0661"}),
    ("/r/gadget/mass", {"ids": "\u00b2", "action": "delete"}),
    ("/r/gadget/mass", {"ids": "2", "action": "transfer", "owner_id": "\u00b3"}),
])
def test_odd_numbers_in_a_form_are_refused_not_a_server_error(world, path, data):
    visitor = world.visitor("ann")
    before = world.scalar("SELECT version FROM gadget WHERE id = 2")
    response = visitor.post(path, data, headers={"Accept": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert world.scalar("SELECT version FROM gadget WHERE id = 2") == before


# --- cookies, sessions, throttle ------------------------------------------------------------------

def _set_cookies(response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def test_the_session_and_sign_in_cookies_are_httponly_and_samesite_lax(world):
    visitor = Visitor(world.app)
    form_cookie = _set_cookies(visitor.client.get("/login"))["pw_login_csrf"]
    session_cookie = _set_cookies(visitor.login_response("ann"))["pw_session"]
    for header in (form_cookie, session_cookie):
        attributes = [part.strip().lower() for part in header.split(";")]
        assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes, header


def test_sign_in_is_throttled_after_five_wrong_passwords_even_with_the_right_one(world):
    visitor = Visitor(world.app)
    for _ in range(MAX_FAILURES_PER_USER):
        assert visitor.login_response("eve", "wrong password").status_code == 401
    right = visitor.login_response("eve", PASSWORD)
    assert MAX_FAILURES_PER_USER == 5
    assert right.status_code == 429
    assert "Too many failed sign-ins" in right.text
    assert "pw_session" not in _set_cookies(right)
    assert visitor.login_response("dan").status_code == 303, "another user is not locked out"


def test_a_session_is_gone_after_sign_out(world):
    visitor = world.visitor("dan")
    secret = visitor.session_cookie()
    assert visitor.post("/logout").status_code == 303

    thief = world.app.test_client()
    thief.set_cookie("pw_session", secret)
    for path in ("/", "/r/gadget", "/r/gadget/1"):
        response = thief.get(path)
        assert response.status_code == 303 and urlsplit(response.location).path == "/login", path
    refused = thief.post("/r/gadget/new", data={"name": "after logout", "csrf_token": visitor.csrf})
    assert refused.status_code == 303 and urlsplit(refused.location).path == "/login"
    assert world.scalar("SELECT count(*) FROM gadget WHERE name = 'after logout'") == 0


def test_without_a_session_a_page_sends_to_sign_in_and_back(world):
    response = world.app.test_client().get("/r/gadget?view=all")
    assert response.status_code == 303
    assert response.location.startswith("/login?next=")


# --- headers and redirects ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/login", "/", "/r/gadget", "/r/gadget/1", "/r/gadget/kanban/by_mood",
                                  "/dashboards/evil"])
def test_pages_carry_a_csp_that_allows_only_the_sites_own_scripts(world, path):
    response = world.visitor("ann").client.get(path)
    policy = {part.split()[0]: part.split()[1:] for part in
              response.headers["Content-Security-Policy"].split(";") if part.strip()}
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("target", ["//evil.example", "//evil.example/r/gadget", "https://evil.example/",
                                    "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
                                    " //evil.example", "/%2F/evil.example"])
def test_sign_in_never_redirects_off_the_site(world, target):
    response = Visitor(world.app).login_response("ann", next=target)
    assert response.status_code == 303
    location = urlsplit(response.location)
    assert not location.scheme and not location.netloc, response.location
    assert "\\" not in response.location and not response.location.startswith("//")


def test_sign_in_follows_a_next_on_the_site(world):
    response = Visitor(world.app).login_response("ann", next="/r/gadget?view=all")
    assert response.status_code == 303 and response.location == "/r/gadget?view=all"


def test_the_sign_in_page_keeps_next_as_escaped_text(world):
    html = Visitor(world.app).client.get("/login?next=%22%3E%3Cscript%3Ealert(1)%3C/script%3E").text
    assert RAW not in html and '&#34;&gt;&lt;script&gt;' in html
