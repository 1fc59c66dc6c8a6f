"""What a rule can do wrong, and the signal that stops it.

`RuleError` and its kinds are what callers see. Inside the sandbox nothing raises them
directly: guards raise `Stop`, a BaseException that carries the error. Rule code may only catch
`Exception` subclasses it can name (see policy.py), so no `try/except` in a rule can swallow a
limit, a policy violation or an aborted callback; the runner turns `Stop` into its error at the
boundary, with the rule's name, file and line.
"""

from __future__ import annotations

from packwork.errors import PackworkError


class RuleError(PackworkError):
    """A rule failed: `file:line: rule: message`, each part shown when known."""

    status = 500
    code = "RULE-E000"
    kind = "error"

    def __init__(self, message: str, *, rule: str | None = None, file: str | None = None,
                 line: int | None = None):
        self.message, self.rule, self.file, self.line = message, rule, file, line
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file or \
            (f"line {self.line}" if self.line else None)
        return ": ".join(part for part in (where, self.rule, self.message) if part)

    def located(self, *, rule: str | None, file: str | None, line: int | None) -> "RuleError":
        """The same error, placed in a pack file (keeping what it already knew)."""
        return type(self)(self.message, rule=self.rule or rule, file=self.file or file,
                          line=self.line or line)


class RuleSyntaxError(RuleError):
    code = "RULE-E001"
    kind = "syntax"


class RuleViolation(RuleError):
    """The code uses something the sandbox does not offer: an import, a `_name`, an attribute
    outside the whitelist, a forbidden statement."""

    code = "RULE-E002"
    kind = "violation"


class RuleTimeout(RuleError):
    code = "RULE-E003"
    kind = "timeout"


class RuleLimit(RuleError):
    """Too big, too many or too deep: sizes, iterations, work, recursion, memory, output."""

    code = "RULE-E004"
    kind = "limit"


class RuleRuntimeError(RuleError):
    """An ordinary exception the rule raised or caused and did not catch."""

    code = "RULE-E005"
    kind = "runtime"


KINDS: dict[str, type[RuleError]] = {cls.kind: cls for cls in (
    RuleError, RuleSyntaxError, RuleViolation, RuleTimeout, RuleLimit, RuleRuntimeError)}


class Stop(BaseException):
    """Ends a run from inside the sandbox. Carries either the RuleError to raise or, when a
    callback the caller passed raised, that exception, which the caller gets back unchanged."""

    def __init__(self, error: BaseException):
        super().__init__(error)
        self.error = error

