"""Sign-in, sign-out and the "me" page (language, time zone, password). Checks live in
`runtime.sessions`; this module only moves cookies and forms."""

from __future__ import annotations

import secrets
from zoneinfo import available_timezones

from flask import current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from packwork.runtime import sessions
from packwork.web.i18n import LANGUAGES
from packwork.web.pages import COOKIE, local_path, render_block, require_csrf, signed_in
from packwork.web.retrying import RetryingBlueprint
from packwork.web.services import services

blueprint = RetryingBlueprint("auth", __name__)  # sign-in and settings posts too: see web/retrying.py
LOGIN_CSRF_COOKIE = "pw_login_csrf"
TIME_ZONES = sorted(available_timezones())


def _cookie_options() -> dict:
    secure = request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/"}


@blueprint.get("/login")
def login_form() -> Response:
    return _login_page(error=None, status=200)


def _login_page(error: str | None, status: int, username: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    g.login_csrf = token
    response = current_app.make_response((render_block(
        "ui/login.html", None, error=error, username=username, next=request.values.get("next", "")), status))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_options())
    return response


@blueprint.post("/login")
def login() -> Response:
    require_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    username = request.form.get("username", "")
    engine = services(current_app).engine
    try:
        with engine.begin() as conn:
            secret = sessions.sign_in(conn, username, request.form.get("password", ""),
                                      request.remote_addr or "unknown")
    except sessions.TooManyAttempts:
        return _login_page("Too many failed sign-ins; try again later.", 429, username)
    if secret is None:
        return _login_page("The user name or password is wrong.", 401, username)
    response = redirect(local_path(request.form.get("next"), url_for("ui.home")), 303)
    response.set_cookie(COOKIE, secret, max_age=int(sessions.LIFETIME.total_seconds()), **_cookie_options())
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@blueprint.post("/logout")
def logout() -> Response:
    with signed_in(write=True) as page:
        sessions.sign_out(page.ctx.conn, request.cookies.get(COOKIE, ""))
    response = redirect(url_for("auth.login_form"), 303)
    response.delete_cookie(COOKIE, path="/")
    return response


@blueprint.get("/me")
def me() -> str:
    with signed_in():
        return _me_page()


def _me_page(message: str | None = None, errors: dict | None = None) -> str:
    return render_block("ui/me.html", None, languages=LANGUAGES, time_zones=TIME_ZONES, message=message,
                        errors=errors or {})


@blueprint.post("/me")
def save_me() -> Response | str:
    language = request.form.get("language", "en")
    time_zone = request.form.get("time_zone", "UTC")
    with signed_in(write=True) as page:
        errors = {}
        if language not in LANGUAGES:
            errors["language"] = ["is not a language the UI speaks"]
        if time_zone not in TIME_ZONES:
            errors["time_zone"] = ["is not a known time zone"]
        if errors:
            return current_app.make_response((_me_page(errors=errors), 422))
        sessions.save_settings(page.ctx.conn, page.session.actor.user_id, language, time_zone)
    return redirect(url_for("auth.me", saved=1), 303)


@blueprint.post("/me/password")
def change_password() -> Response:
    with signed_in(write=True) as page:
        conn, user_id = page.ctx.conn, page.session.actor.user_id
        if not sessions.verify_password(conn, user_id, request.form.get("current", "")):
            return current_app.make_response((_me_page(errors={"current": ["is not your password"]}), 422))
        try:
            sessions.set_password(conn, user_id, request.form.get("new", ""))
        except sessions.PasswordRefused as exc:
            return current_app.make_response((_me_page(errors={"new": exc.errors["password"]}), 422))
    return redirect(url_for("auth.me", changed=1), 303)
