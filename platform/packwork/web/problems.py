"""Every refusal as `application/problem+json` (RFC 9457) with `errors: {field: [messages]}`."""

from __future__ import annotations

import logging

from collections.abc import Callable

from flask import Flask, Response, json, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from packwork.errors import Conflict, NotInstalled, PackworkError, RequestError, TooManyRequests

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("packwork.web")


def problem(status: int, title: str, detail: str, errors: dict | None = None, code: str | None = None,
            **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "errors": errors or {}}
    if code:
        body["code"] = code
    body |= extra
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def _request_error(exc: RequestError) -> Response:
    extra = {"current": exc.current} if isinstance(exc, Conflict) and exc.current is not None else {}
    response = problem(exc.status, exc.title, exc.detail, exc.errors, exc.code, **extra)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="packwork"'
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _http_error(exc: HTTPException) -> Response:
    response = problem(exc.code or 500, exc.name, exc.description or exc.name)
    for header in ("Allow",):
        if exc.get_response().headers.get(header):
            response.headers[header] = exc.get_response().headers[header]
    return response


def _not_installed(exc: NotInstalled) -> Response:
    return problem(503, "Not installed", str(exc), code=exc.code)


def _platform_error(exc: PackworkError) -> Response:
    log.error("refused: %s", exc)
    return problem(500, "Internal error", "the server could not complete the request", code=exc.code)


def _integrity(exc: IntegrityError) -> Response:
    # The record service checks unique values and references first; this is a concurrent
    # writer winning the race between that check and the write. The transaction rolled back.
    log.warning("integrity error: %s", exc.orig)
    return problem(409, "Conflict", "another write got there first; nothing was written, try again",
                   code="REQ-E409")


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")  # the traceback goes to the log, never to the client
    return problem(500, "Internal error", "the server could not complete the request")


def register(app: Flask, page: Callable[[Exception, Response], Response] | None = None) -> None:
    """Every error as problem+json; outside /api/, `page` may turn the problem into an HTML page
    for a person (it is handed the exception and the problem response)."""
    def handled(handler: Callable[[Exception], Response]) -> Callable[[Exception], Response]:
        def respond(exc: Exception) -> Response:
            response = handler(exc)
            return page(exc, response) if page is not None and not request.path.startswith("/api/") else response
        return respond

    for kind, handler in ((RequestError, _request_error), (NotInstalled, _not_installed),
                          (PackworkError, _platform_error), (HTTPException, _http_error),
                          (IntegrityError, _integrity), (Exception, _unexpected)):
        app.register_error_handler(kind, handled(handler))
