"""The one error hierarchy. Each error carries an HTTP-ish status and a stable code so one
handler can render it as problem+json, an htmx fragment, a page or a CLI message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packwork.metadata.problems import Problem


class PackworkError(Exception):
    status = 500
    code = "PW-E000"


class PackError(PackworkError):
    """A pack (or set of packs) is invalid; carries every problem found, not just the first."""

    status = 422
    code = "PACK-E000"

    def __init__(self, problems: Iterable["Problem"]):
        self.problems = tuple(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


class MigrationRefused(PackworkError):
    """A planned schema change could lose data and was not forced."""

    status = 409
    code = "MIG-E001"

    def __init__(self, reasons: Iterable[str]):
        self.reasons = tuple(reasons)
        super().__init__("\n".join(self.reasons))


class NotInstalled(PackworkError):
    status = 404
    code = "PACK-E404"


class RequestError(PackworkError):
    """A request the platform refuses. `errors` names fields: {field: [message, ...]}."""

    status = 400
    code = "REQ-E400"
    title = "Bad request"

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None):
        self.detail = detail
        self.errors = errors or {}
        super().__init__(detail)


class BadRequest(RequestError):
    pass


class ValidationError(RequestError):
    status = 422
    code = "REQ-E422"
    title = "Invalid values"


class RuleFailed(RequestError):
    """A pack rule broke (not a refusal by `error()`): the pack's fault, answered 422 with the
    rule's own code and where it is, so the write is refused and nothing is lost."""

    status = 422
    code = "RULE-E000"
    title = "A business rule failed"

    @classmethod
    def of(cls, error: Exception) -> "RuleFailed":
        failed = cls(str(error), {"_rules": [str(error)]})
        failed.code = getattr(error, "code", cls.code)
        return failed


class Unauthorized(RequestError):
    status = 401
    code = "REQ-E401"
    title = "Not authenticated"


class PermissionDenied(RequestError):
    status = 403
    code = "REQ-E403"
    title = "Not allowed"


class NotFound(RequestError):
    status = 404
    code = "REQ-E404"
    title = "Not found"


class Conflict(RequestError):
    """A write based on an outdated version, or a unique value already taken."""

    status = 409
    code = "REQ-E409"
    title = "Conflict"

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None, current: dict | None = None):
        super().__init__(detail, errors)
        self.current = current


class TooManyRequests(RequestError):
    """A client over its request rate: it may try again after `retry_after` seconds."""

    status = 429
    code = "REQ-E429"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class QueryTimeout(RequestError):
    """A read whose queries ran longer than the app allows (`PACKWORK_QUERY_TIMEOUT`): what it
    asked for is too expensive as asked."""

    code = "REQ-TIMEOUT"
    title = "The query took too long"


class PreconditionRequired(RequestError):
    """An update that does not say which version it was based on."""

    status = 428
    code = "REQ-E428"
    title = "Version required"
