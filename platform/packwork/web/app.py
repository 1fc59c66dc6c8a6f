"""The WSGI application: one engine and one catalog cache per process."""

from __future__ import annotations

import os

from flask import Flask, Response, redirect, request, url_for

from packwork.errors import QueryTimeout, RequestError
from packwork.runtime.catalog import CatalogCache
from packwork.runtime.db import make_engine
from packwork.runtime.ratelimit import Limiter, Rate
from packwork.web import api, auth, pages, problems, record_pages, ui  # noqa: F401 - record_pages adds routes to ui
from packwork.web import dashboards  # noqa: F401 - adds the dashboard pages to ui
from packwork.web import record_actions  # noqa: F401 - adds the pack actions' forms to ui
from packwork.web import recycle_bin  # noqa: F401 - adds the recycle bin pages to ui
from packwork.web import studio, studio_entities, studio_layouts  # noqa: F401 - they add their pages to studio
from packwork.web import studio_rules  # noqa: F401 - adds the rule and dictionary pages to studio
from packwork.web import studio_access  # noqa: F401 - adds the permission and user pages to studio
from packwork.web.services import Services
from packwork.web.widgets import builtin_widgets

DEFAULT_DB = "sqlite:///packwork.db"
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
API_RATE = "3000/60"  # per token and app process: a burst of 3,000 requests, 50 a second after it
QUERY_TIMEOUT = "10"  # seconds the queries of an API read or a UI page that only reads may take
# No inline script anywhere, and no inline style in the UI; Swagger UI (/api/docs) needs inline styles.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'{styles}; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def create_app(database_url: str | None = None, **config: object) -> Flask:
    app = Flask("packwork.web")
    app.config.update(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")
    app.config.update(config)
    url = database_url or os.environ.get("PACKWORK_DATABASE_URL", DEFAULT_DB)
    rate = Rate.parse(_setting(app, "PACKWORK_API_RATE", API_RATE))
    app.extensions["packwork"] = Services(make_engine(url), CatalogCache(), rate and Limiter(rate),
                                          _seconds(_setting(app, "PACKWORK_QUERY_TIMEOUT", QUERY_TIMEOUT)))
    widgets = builtin_widgets()
    app.extensions["packwork_widgets"] = widgets
    app.json.sort_keys = False
    app.json.compact = True
    app.jinja_env.globals.update(_=pages.text, csrf_field=pages.csrf_field,
                                 widget_of=lambda field: widgets[field.type].macro,
                                 asset=lambda name: f"{request.script_root}{app.static_url_path}/{name}")
    problems.register(app, page=_error_page)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(api.docs)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(ui.blueprint)
    app.register_blueprint(studio.blueprint)
    app.after_request(_security_headers)
    return app


def _setting(app: Flask, name: str, default: str) -> str:
    """A limit from the app's config, else the environment, else its default."""
    return str(app.config.get(name) or os.environ.get(name, default))


def _seconds(text: str) -> float | None:
    if text.strip().lower() == "off":
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86_400:
        raise ValueError(f"PACKWORK_QUERY_TIMEOUT is seconds (like 10) or off, not {text!r}")
    return seconds


def _security_headers(response: Response) -> Response:
    headers = response.headers
    inline_styles = " 'unsafe-inline'" if request.path.startswith("/api/docs") else ""
    headers.setdefault("Content-Security-Policy", CSP.format(styles=inline_styles))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


TITLES = {400: "Some values are not valid.", 401: "Sign in", 403: "Not allowed", 404: "Page not found",
          409: "This record was changed by someone else since you opened it.", 422: "Some values are not valid."}
TOO_SLOW_TITLE = "The query took too long"  # a 400, but not a person's invalid values


def _error_page(exc: Exception, problem: Response) -> Response:
    """A problem turned into what a person in a browser should see: the sign-in page when the
    session is gone, else a page saying what happened (never a traceback)."""
    if problem.status_code == 401 and isinstance(exc, pages.SignInNeeded):
        target = url_for("auth.login_form", next=request.full_path.rstrip("?"))
        if pages.is_htmx():
            return Response(status=204, headers={"HX-Redirect": target})
        return redirect(target, 303)
    if request.accept_mimetypes.best == "application/json":  # the kanban's moves ask for JSON
        return problem
    title = TOO_SLOW_TITLE if isinstance(exc, QueryTimeout) else TITLES.get(problem.status_code, "Something went wrong")
    detail = exc.detail if isinstance(exc, RequestError) and problem.status_code < 500 else \
        getattr(exc, "description", None) if problem.status_code < 500 else "the server could not complete the request"
    html = pages.render_block("ui/error.html", None, title=title, detail=detail or title)
    return Response(html, status=problem.status_code, mimetype="text/html")
