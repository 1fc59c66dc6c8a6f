"""What the studio's tests share: an installed pack with an administrator (`root`) and other
users signed in through the form, and the two steps of every studio change — the plan page,
then its Apply form posted back as the browser would."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from api.conftest import install
from packwork.runtime import admin_layer
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def field_errors(page: str, name: str) -> list[str]:
    """The messages shown next to input `name`."""
    found = re.findall(rf'<small class="error field-error" data-field="{re.escape(name)}">(.*?)</small>', page, re.S)
    return [html.unescape(m) for m in found]


def apply_form(plan_page: str) -> dict[str, str]:
    """The hidden inputs of a plan page's Apply form."""
    form = plan_page.split('action="/admin/apply"', 1)[1].split("</form>", 1)[0]
    fields = {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(form)}
    assert {"text", "base", "back", "restores", "csrf_token"} <= fields.keys(), fields
    return fields


class StudioWorld:
    def __init__(self, app, engine: sa.Engine):
        self.app, self.engine = app, engine
        self.admin = Visitor(app).sign_in("root")

    def apply(self, plan_page) -> None:
        """Post back the Apply form of a plan page (a response or its text)."""
        text = plan_page if isinstance(plan_page, str) else plan_page.text
        if not isinstance(plan_page, str):
            assert plan_page.status_code == 200, text[:3000]
        response = self.admin.post("/admin/apply", apply_form(text))
        assert response.status_code == 303, response.text[:3000]

    def layer(self) -> tuple[str, int]:
        """The layer text in force and how many versions were applied."""
        with self.engine.connect() as conn:
            return admin_layer.current_layer(conn).text, len(admin_layer.history(conn))


@contextmanager
def studio_world(db_url: str, pack: Path, users: dict[str, list[str]], known: list[str],
                 kind: type[StudioWorld] = StudioWorld) -> Iterator:
    """`pack` installed, `root` an administrator and each of `users` with its roles."""
    engine = install(db_url, pack)
    with engine.begin() as conn:
        for username, roles in {"root": ["admin"], **users}.items():
            set_password(conn, create_user(conn, username, roles, known), PASSWORD)
    app = create_app(db_url)
    try:
        yield kind(app, engine)
    finally:
        services(app).engine.dispose()
        engine.dispose()
