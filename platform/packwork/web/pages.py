"""What every UI page shares: the unit of work of a signed-in browser request, the CSRF check,
the htmx test, and rendering a page or only one named block of it.

An htmx request gets just the block it asked for (the same template renders both), so a page
has one source. Every state-changing request must carry the session's CSRF token, in the form
field `csrf_token` or the `X-CSRF-Token` header that `static/ui/packwork.js` adds to htmx calls.

A page that only reads runs under the app's query time limit (`PACKWORK_QUERY_TIMEOUT`), as an
API read does: a list with a filter or search that scans too much is stopped and answered 400
with a message saying to narrow it, never left running or answered 500. Writes are not limited."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Response, current_app, g, redirect, request
from markupsafe import Markup

from packwork.errors import BadRequest, PermissionDenied, QueryTimeout, Unauthorized
from packwork.runtime.db import end_limit, is_timeout, limit_queries, reading
from packwork.runtime.records import Context
from packwork.runtime.sessions import Session, authenticate_session
from packwork.web.i18n import translate
from packwork.web.services import services

COOKIE = "pw_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOO_SLOW = "The query took too long; narrow the filter or the search."  # a UI word: i18n has it


class SignInNeeded(Unauthorized):
    code = "UI-E401"


class CsrfRefused(PermissionDenied):
    code = "UI-E403"


@dataclass(frozen=True, slots=True)
class Page:
    """The signed-in request: who, in which language, and the record service's context."""

    session: Session
    ctx: Context

    @property
    def language(self) -> str:
        return self.session.actor.language


def local_path(target: str | None, fallback: str) -> str:
    """`target` if it is a path on this site, else `fallback`: an open redirect would let a link
    send a signed-in user elsewhere. Browsers read a backslash as a slash, so none is allowed."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or \
            target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    return target


def whole_number(text: str | None) -> int | None:
    """A form's id or version: ASCII digits that fit a database integer, else None (`isdigit`
    alone accepts '²' and other digits `int` refuses)."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def form_version() -> int | None:
    """The record version a form was based on: None if the form sends none, 400 if it sends
    something that is not one (never silently an unchecked write)."""
    text = request.form.get("version")
    version = whole_number(text)
    if text is not None and text.strip() and version is None:
        raise BadRequest("the form's record version is not valid", {"version": ["must be a whole number"]})
    return version


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@contextmanager
def signed_in(write: bool = False) -> Iterator[Page]:
    """One transaction for the request, as the session's user; 401 without a valid session,
    403 for a state-changing request without the session's CSRF token."""
    state = services(current_app)
    with (state.engine.connect() if write else reading(state.engine)) as conn, conn.begin():
        session = authenticate_session(conn, request.cookies.get(COOKIE, ""))
        if session is None:
            raise SignInNeeded("Your session has expired; sign in again.")
        if request.method not in SAFE_METHODS:
            require_csrf(session.csrf_token)
        catalog = state.catalogs.current(conn, session.version_id)
        page = Page(session, Context.start(conn, catalog, session.actor))
        g.page = page
        limit = None if write else state.query_timeout  # a write may take as long as it needs
        if limit is None:
            yield page
            return
        limit_queries(conn, limit)
        try:
            yield page
        except sa.exc.DBAPIError as exc:
            if not is_timeout(exc):
                raise
            raise QueryTimeout(TOO_SLOW) from None
        finally:
            end_limit(conn)


@contextmanager
def stoppable(page: Page) -> Iterator[None]:
    """Run one expensive read of a page (a list with the reader's filter) so that, stopped by
    the query time limit, it raises QueryTimeout and the page can still be drawn around the
    message, its filter there to narrow: the read runs in a savepoint, because PostgreSQL
    refuses every later statement of a transaction whose statement it cancelled."""
    try:
        with page.ctx.conn.begin_nested():
            yield
    except sa.exc.DBAPIError as exc:
        if not is_timeout(exc):
            raise
        raise QueryTimeout(TOO_SLOW) from None


def require_csrf(expected: str) -> None:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("The form has expired; reload the page and try again.")


def text(value: str) -> str:
    """The UI's word for `value` in the page's language (templates call it `_`)."""
    page = g.get("page")
    language = page.language if page else request.cookies.get("pw_language", "en")
    return translate(value, language)


def render_block(template_name: str, block: str | None, **context) -> str:
    """The whole template, or only `block` of it for an htmx request."""
    environment = current_app.jinja_env
    template = environment.get_template(template_name)
    current_app.update_template_context(context)
    if block is None or not is_htmx():
        return template.render(context)
    return "".join(template.blocks[block](template.new_context(context)))


def see_other(location: str) -> Response:
    """The redirect after a write (303); for htmx, the header that makes it follow."""
    if is_htmx():
        response = current_app.make_response(("", 204))
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, 303)


def csrf_field() -> Markup:
    page = g.get("page")
    token = page.session.csrf_token if page else g.get("login_csrf", "")
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)
