"""A widget per field type: the form control it renders (a macro in `templates/ui/widgets.html`)
and how the form's text becomes the JSON value the record service expects (the parsing itself
is `runtime.text_values`, shared with import). The registry is
built in `create_app`; a contract test checks every field type of the metadata registry has one.

Parsing only turns text into typed values (a number field's "12" into 12); whether the value is
allowed is the record service's decision, so the same rules hold here as in the API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from packwork.metadata.model import Field
from packwork.runtime.text_values import Unparsable, parse_currency, parse_text

Parse = Callable[[Field, MultiDict, str], dict]

__all__ = ["Parse", "Unparsable", "Widget", "Widgets", "builtin_widgets"]


@dataclass(frozen=True, slots=True)
class Widget:
    macro: str  # the macro in templates/ui/widgets.html that renders the control
    parse: Parse  # (field, form, time zone) -> {key: value} for the record service


# The form's side only picks the control's text out of the form; `runtime.text_values` reads it.
def _single(field: Field, form: MultiDict, tz: str) -> dict:
    return parse_text(field, form.get(field.name, ""), tz)


def _money(field: Field, form: MultiDict, tz: str) -> dict:
    return _single(field, form, tz) | parse_currency(field, form.get(f"{field.name}_currency", ""))


def _multi_choice(field: Field, form: MultiDict, tz: str) -> dict:
    return parse_text(field, [v for v in form.getlist(field.name) if v], tz)


def _computed(_field: Field, _form: MultiDict, _tz: str) -> dict:
    return {}


class Widgets:
    """The registry: one widget per field type name; a duplicate name is an error."""

    def __init__(self, widgets: Mapping[str, Widget]):
        self._widgets = dict(widgets)

    def __getitem__(self, type_name: str) -> Widget:
        return self._widgets[type_name]

    def names(self) -> list[str]:
        return list(self._widgets)

    def parse(self, fields: list[Field], form: MultiDict, time_zone: str) -> tuple[dict, dict[str, list[str]]]:
        """The values of `fields` in `form`, and the fields whose text is not of their type."""
        body, errors = {}, {}
        for field in fields:
            try:
                body |= self[field.type].parse(field, form, time_zone)
            except Unparsable as exc:
                errors[field.name] = [str(exc)]
        return body, errors


def builtin_widgets() -> Widgets:
    return Widgets({
        "text": Widget("text", _single), "email": Widget("email", _single), "phone": Widget("phone", _single),
        "url": Widget("url", _single), "long_text": Widget("long_text", _single),
        "integer": Widget("integer", _single), "decimal": Widget("decimal", _single),
        "percent": Widget("percent", _single), "money": Widget("money", _money),
        "boolean": Widget("boolean", _single), "date": Widget("date", _single),
        "datetime": Widget("datetime", _single), "choice": Widget("choice", _single),
        "stage": Widget("choice", _single), "multi_choice": Widget("multi_choice", _multi_choice),
        "reference": Widget("reference", _single), "user": Widget("user", _single),
        "computed": Widget("computed", _computed),
    })
