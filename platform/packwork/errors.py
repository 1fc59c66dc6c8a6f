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
