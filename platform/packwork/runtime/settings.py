"""Pack settings as the database holds them: a pack declares each setting with its type and
default (`settings:`), an administrator changes its value (`packwork setting set NAME VALUE`),
and rule code (`settings.NAME`) and filters (`${NAME}`) see the value now in pw_setting, or the
default where none was set or the stored one no longer fits the declaration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from packwork.errors import BadRequest, NotFound
from packwork.metadata.model import Metadata, Setting
from packwork.runtime.system import pw_setting

TRUE, FALSE = frozenset({"true", "yes", "on", "1"}), frozenset({"false", "no", "off", "0"})
MAX_TEXT = 1000


class Settings(Mapping):
    """One unit of work's view of the settings' values, read from the database on first use
    (most requests use none) and then kept for the unit of work, so every rule and filter of
    one request sees the same values."""

    def __init__(self, conn: sa.Connection, metadata: Metadata):
        self._conn, self._metadata = conn, metadata
        self._values: dict[str, object] | None = None

    def _loaded(self) -> dict[str, object]:
        if self._values is None:
            self._values = current_values(self._conn, self._metadata)
        return self._values

    def __getitem__(self, name: str) -> object:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._metadata.settings)

    def __len__(self) -> int:
        return len(self._metadata.settings)

    def __contains__(self, name: object) -> bool:
        return name in self._metadata.settings


def current_values(conn: sa.Connection, metadata: Metadata) -> dict[str, object]:
    """Every declared setting's value: the stored one if it still fits, else the default."""
    values = {s.name: _default(s) for s in metadata.settings.values()}
    if not values:
        return values  # no query: a database of packs without settings may predate pw_setting
    for name, stored in conn.execute(sa.select(pw_setting.c.name, pw_setting.c.value)):
        setting = metadata.settings.get(name)
        if setting is not None:
            try:
                values[name] = _checked(setting, stored)
            except ValueError:
                pass  # the pack changed the setting's type or options since: its default holds
    return values


@dataclass(frozen=True, slots=True)
class Listed:
    setting: Setting
    value: object
    is_default: bool


def list_settings(conn: sa.Connection, metadata: Metadata) -> list[Listed]:
    stored = set(conn.execute(sa.select(pw_setting.c.name)).scalars()) if metadata.settings else set()
    values = current_values(conn, metadata)
    return [Listed(s, values[s.name], s.name not in stored or values[s.name] == _default(s))
            for s in sorted(metadata.settings.values(), key=lambda s: s.name)]


def set_setting(conn: sa.Connection, metadata: Metadata, name: str, text: str, now: datetime,
                user_id: int | None = None) -> object:
    """Store `text`, parsed as the setting's type; returns the value. 404 for an undeclared
    setting, 400 naming what a value of its type looks like."""
    setting = _declared(metadata, name)
    try:
        value = parse_text(setting, text)
    except ValueError as exc:
        raise BadRequest(f"{text!r} is not a valid value for {name}: {exc}", {name: [str(exc)]}) from None
    stored = str(value) if isinstance(value, Decimal) else value
    conn.execute(pw_setting.delete().where(pw_setting.c.name == name))
    conn.execute(pw_setting.insert().values(name=name, value=stored, updated_at=now, updated_by=user_id))
    return value


def unset_setting(conn: sa.Connection, metadata: Metadata, name: str) -> object:
    """Forget the stored value; returns the default, which holds again."""
    setting = _declared(metadata, name)
    conn.execute(pw_setting.delete().where(pw_setting.c.name == name))
    return _default(setting)


def parse_text(setting: Setting, text: str) -> object:
    """A value typed on the command line (or, later, in a form) as the setting's type."""
    text = text.strip()
    if setting.type == "boolean":
        if text.lower() not in TRUE | FALSE:
            raise ValueError("expected true or false")
        return text.lower() in TRUE
    if setting.type == "integer":
        if not (text.lstrip("-").isascii() and text.lstrip("-").isdigit()) or len(text) > 18:
            raise ValueError("expected a whole number")
        return int(text)
    return _checked(setting, text)


def _checked(setting: Setting, value: object) -> object:
    """A stored (JSON) value as the setting's type; ValueError if it is not one."""
    kind = setting.type
    if kind == "boolean" and type(value) is bool:
        return value
    if kind == "integer" and type(value) is int:
        return value
    if kind == "decimal" and type(value) in (int, float, str):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError("expected a number such as 12.50") from None
        if not number.is_finite():
            raise ValueError("expected a finite number")
        return number
    if kind in ("text", "choice") and type(value) is str and len(value) <= MAX_TEXT:
        if kind == "choice" and value not in {c.value for c in setting.choices}:
            raise ValueError(f"expected one of {', '.join(c.value for c in setting.choices)}")
        return value
    raise ValueError(f"expected a {kind} value")


def _default(setting: Setting) -> object:
    value = setting.default
    return Decimal(str(value)) if setting.type == "decimal" else value


def _declared(metadata: Metadata, name: str) -> Setting:
    setting = metadata.settings.get(name)
    if setting is None:
        known = ", ".join(sorted(metadata.settings)) or "the installed packs declare none"
        raise NotFound(f"there is no setting {name!r} (settings: {known})")
    return setting
