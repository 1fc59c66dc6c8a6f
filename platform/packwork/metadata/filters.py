"""The filter language, parsed. Pure: text in, a small tree out; `runtime.query` compiles the
tree to SQL. The same language serves API filters, list views, dashboards and row rules.

    stage in ('won', 'lost') and amount >= 10000 and owner_id = $me
    close_date >= $today-30d and not (name startswith 'Test')

Every error names the position (0-based character offset) where it was noticed.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=", "contains", "startswith")
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false", "contains", "startswith"})
MAX_LENGTH = 4000
MAX_DEPTH = 32


class FilterError(ValueError):
    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at position {position})")
        self.message, self.position = message, position


@dataclass(frozen=True, slots=True)
class Var:
    """`$me`, `$today` or `$now`, with an optional offset such as `$today-30d`. An offset whose
    count is a pack setting (`$today-${return_days}d`) names it in `setting`; `offset` is then
    the sign (1 or -1) the setting's value is multiplied by when the filter is compiled."""

    name: str
    offset: int = 0
    unit: str = "d"  # d, w, m, y
    setting: str | None = None


@dataclass(frozen=True, slots=True)
class SettingValue:
    """`${name}`: the current value of a pack setting, compared like a literal."""

    name: str


@dataclass(frozen=True, slots=True)
class Compare:
    path: tuple[str, ...]
    op: str
    value: object  # str | int | Decimal | bool | None | Var
    position: int


@dataclass(frozen=True, slots=True)
class In:
    path: tuple[str, ...]
    values: tuple
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class IsNull:
    path: tuple[str, ...]
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple


@dataclass(frozen=True, slots=True)
class Not:
    item: object


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<var>\$(?:[a-z]+|\{[a-z][a-z0-9_]*\})(?:[+-](?:[0-9]+|\$\{[a-z][a-z0-9_]*\})[dwmy])?)
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)
_VARS = ("me", "today", "now")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[_Token]:
    if len(text) > MAX_LENGTH:
        raise FilterError(f"filter is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] == "'":
                raise FilterError("unterminated string", position)
            raise FilterError(f"unexpected character {text[position]!r}", position)
        kind = match.lastgroup
        if kind != "space":
            word = match.group()
            if kind == "word" and word.lower() in KEYWORDS:
                kind, word = "keyword", word.lower()
            tokens.append(_Token(kind, word, position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            return self.take()
        return None

    def expect(self, kind: str, text: str, what: str) -> _Token:
        token = self.accept(kind, text)
        if token is None:
            raise FilterError(f"expected {what}, found {_describe(self.peek())}", self.peek().position)
        return token

    def parse(self):
        if self.peek().kind == "end":
            raise FilterError("empty filter", 0)
        tree = self.or_expr()
        if self.peek().kind != "end":
            raise FilterError(f"unexpected {_describe(self.peek())}", self.peek().position)
        return tree

    def or_expr(self):
        items = [self.and_expr()]
        while self.accept("keyword", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self):
        items = [self.not_expr()]
        while self.accept("keyword", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self):
        if self.accept("keyword", "not"):
            return Not(self.not_expr())
        if self.accept("punct", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"nested deeper than {MAX_DEPTH} parentheses", self.peek().position)
            tree = self.or_expr()
            self.expect("punct", ")", "')'")
            self.depth -= 1
            return tree
        return self.comparison()

    def comparison(self):
        token = self.take()
        if token.kind != "word":
            raise FilterError(f"expected a field name, found {_describe(token)}", token.position)
        path = tuple(token.text.split("."))
        if self.accept("keyword", "is"):
            negated = bool(self.accept("keyword", "not"))
            self.expect("keyword", "null", "'null' after 'is'")
            return IsNull(path, negated, token.position)
        negated = bool(self.accept("keyword", "not"))
        if self.accept("keyword", "in"):
            return In(path, self.value_list(), negated, token.position)
        if negated:
            raise FilterError("expected 'in' after 'not'", self.peek().position)
        op = self.take()
        if op.kind == "op" or (op.kind == "keyword" and op.text in ("contains", "startswith")):
            return Compare(path, op.text, self.value(), token.position)
        raise FilterError(f"expected an operator ({', '.join(COMPARISONS)}, in, is) after "
                          f"{token.text!r}, found {_describe(op)}", op.position)

    def value_list(self) -> tuple:
        self.expect("punct", "(", "'(' to start the list")
        values = [self.value()]
        while self.accept("punct", ","):
            values.append(self.value())
        self.expect("punct", ")", "')' to end the list")
        return tuple(values)

    def value(self):
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return Decimal(token.text) if "." in token.text else int(token.text)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        if token.kind == "var":
            return _var(token)
        raise FilterError(f"expected a value, found {_describe(token)}", token.position)


def _var(token: _Token) -> Var | SettingValue:
    match = re.fullmatch(r"\$(?:([a-z]+)|\{([a-z0-9_]+)\})(?:([+-])(?:([0-9]+)|\$\{([a-z0-9_]+)\})([dwmy]))?",
                         token.text)
    name, setting, sign, count, count_setting, unit = match.groups()
    if setting is not None:
        if sign:
            raise FilterError(f"${{{setting}}} takes no offset; only $today and $now do", token.position)
        return SettingValue(setting)
    if name not in _VARS:
        raise FilterError(f"unknown variable ${name}; known: {', '.join('$' + v for v in _VARS)}", token.position)
    if sign and name == "me":
        raise FilterError("$me takes no offset", token.position)
    direction = -1 if sign == "-" else 1
    if count_setting is not None:
        return Var(name, direction, unit, count_setting)
    return Var(name, direction * int(count or 0), unit or "d")


def _describe(token: _Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def parse_filter(text: str):
    """Parse filter text into a tree of And/Or/Not/Compare/In/IsNull; raise FilterError."""
    return _Parser(text).parse()


def paths(tree) -> list[tuple[tuple[str, ...], int]]:
    """Every (field path, position) a filter tree names, in order."""
    if isinstance(tree, (And, Or)):
        return [p for item in tree.items for p in paths(item)]
    if isinstance(tree, Not):
        return paths(tree.item)
    return [(tree.path, tree.position)]


def settings_used(tree) -> list[tuple[str, int, bool]]:
    """Every (setting, position, whether it counts an offset) a filter tree names."""
    if isinstance(tree, (And, Or)):
        return [s for item in tree.items for s in settings_used(item)]
    if isinstance(tree, Not):
        return settings_used(tree.item)
    values = tree.values if isinstance(tree, In) else (tree.value,) if isinstance(tree, Compare) else ()
    found = []
    for value in values:
        if isinstance(value, SettingValue):
            found.append((value.name, tree.position, False))
        elif isinstance(value, Var) and value.setting is not None:
            found.append((value.setting, tree.position, True))
    return found


def resolve_var(var: Var, today: date) -> date:
    """The date a `$today±N` variable stands for on `today` (month ends are clamped)."""
    if var.unit in ("d", "w"):
        return today + timedelta(days=var.offset * (7 if var.unit == "w" else 1))
    months = today.month - 1 + var.offset * (12 if var.unit == "y" else 1)
    year, month = today.year + months // 12, months % 12 + 1
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
