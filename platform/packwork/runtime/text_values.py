"""Text as a person types it (a form control, a CSV or spreadsheet cell) turned into the JSON
value the record service takes, per field type. The UI's widgets and the importer both parse
here, so "12", "yes" or "Red" mean the same everywhere.

Parsing only turns text into typed values; whether the value is allowed (a choice that does not
exist, a date that is not one) is the record service's decision, so its messages hold for every
door. A text that cannot be read as its type at all raises `Unparsable` with a person's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from packwork.metadata.model import Field

Text = str | Sequence[str] | None  # a multi-choice form control sends several texts
# Non-numeric text of a user or reference field (a username, a title) -> the record's id.
Resolve = Callable[[Field, str], int]
Parser = Callable[[Field, Text, str, Resolve | None], object]

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "是", "真"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "否", "假"})
MULTI_SEPARATORS = (";", "；")


class Unparsable(ValueError):
    """The text is not a value of its field's type; the message says what is."""


def _one(text: Text) -> str:
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    return text[0] if text else ""


def _text(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    return _one(text).strip() or None


def _long_text(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    value = _one(text).replace("\r\n", "\n")
    return value if value.strip() else None


def _integer(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    value = _one(text).strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise Unparsable("must be a whole number") from None


def _decimal(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    """A string, not a Decimal: the record service checks digits and scale on the text."""
    value = _one(text).strip().replace(",", "").removesuffix("%").strip()
    if not value:
        return None
    try:
        Decimal(value)
    except InvalidOperation:
        raise Unparsable("must be a number") from None
    return value


def _boolean(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    value = _one(text).strip().lower()
    if not value:
        return None
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise Unparsable("must be yes or no (true/false, 1/0, 是/否)")


def _date(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    return _one(text).strip() or None


def _datetime(_field: Field, text: Text, tz: str, _resolve: Resolve | None) -> object:
    """Wall-clock text without an offset is read in the person's time zone; the service wants
    an offset."""
    value = _one(text).strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unparsable("must be a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.isoformat()


def choice_value(field: Field, text: str) -> str:
    """A choice by its value, else by its label in either language (case-insensitive). Text
    that is neither is passed on, for the record service to name the allowed values."""
    for choice in field.choices:
        if choice.value == text:
            return text
    folded = text.casefold()
    for choice in field.choices:
        if folded in (choice.value.casefold(), choice.label.en.casefold(), choice.label.zh.casefold()):
            return choice.value
    return text


def _choice(field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    value = _one(text).strip()
    return choice_value(field, value) if value else None


def _multi_choice(field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    """Several texts (a form), or one text with `a;b` (a cell)."""
    if text is None:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    for separator in MULTI_SEPARATORS:
        parts = [piece for part in parts for piece in part.split(separator)]
    return [choice_value(field, part.strip()) for part in parts if part.strip()]


def _reference(field: Field, text: Text, _tz: str, resolve: Resolve | None) -> object:
    value = _one(text).strip()
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if resolve is None:
        raise Unparsable("choose a record from the list")
    return resolve(field, value)


def _nothing(_field: Field, _text: Text, _tz: str, _resolve: Resolve | None) -> object:
    raise Unparsable("is computed and cannot be written")


PARSERS: dict[str, Parser] = {
    "text": _text, "email": _text, "phone": _text, "url": _text, "long_text": _long_text,
    "integer": _integer, "decimal": _decimal, "percent": _decimal, "money": _decimal,
    "boolean": _boolean, "date": _date, "datetime": _datetime, "choice": _choice, "stage": _choice,
    "multi_choice": _multi_choice, "reference": _reference, "user": _reference, "computed": _nothing,
}


def parse_text(field: Field, text: Text, time_zone: str, resolve: Resolve | None = None) -> dict:
    """`{field name: value}` for the record service from the text of one field (a money
    field's currency is a key of its own: see `parse_currency`)."""
    return {field.name: PARSERS[field.type](field, text, time_zone, resolve)}


def parse_currency(field: Field, text: Text) -> dict:
    """A money field's currency code, upper-cased; blank is None (the field's default applies)."""
    return {f"{field.name}_currency": _currency(field, text, "", None)}


def _currency(_field: Field, text: Text, _tz: str, _resolve: Resolve | None) -> object:
    return _one(text).strip().upper() or None


def parser_for(field: Field, currency: bool = False) -> tuple[str, Parser]:
    """The key `parse_text` (or, for a money field's `currency`, `parse_currency`) fills for
    `field`, and the parser it calls: for a caller parsing many texts of one field."""
    if currency:
        return f"{field.name}_currency", _currency
    return field.name, PARSERS[field.type]
