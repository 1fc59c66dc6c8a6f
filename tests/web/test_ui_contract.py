"""Contracts of the generated UI that need no database: every field type has a widget the
form template renders and that parses its text, and every UI word has a Chinese translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from packwork.metadata.access import ACTIONS, SCOPES
from packwork.metadata.fieldtypes import builtin_field_types
from packwork.metadata.model import Choice, Field, Label
from packwork.web.i18n import ZH
from packwork.web.widgets import Unparsable, builtin_widgets

TEMPLATES = Path(__file__).resolve().parents[2] / "platform" / "packwork" / "web" / "templates" / "ui"
WIDGETS = builtin_widgets()


@pytest.mark.parametrize("type_name", builtin_field_types().names())
def test_every_field_type_has_a_widget_the_template_renders(type_name):
    widget = WIDGETS[type_name]
    source = (TEMPLATES / "widgets.html").read_text(encoding="utf-8")
    assert type_name == "computed" or f'"{widget.macro}"' in source, f"widgets.html has no branch for {widget.macro}"


def _field(kind: str, **extra) -> Field:
    return Field("f", kind, Label("F", "F"), **extra)


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("text", "  Acme ", "Acme"), ("text", "", None), ("integer", "12", 12), ("integer", "", None),
    ("decimal", "1,234.50", "1234.50"), ("percent", "12.5", "12.5"), ("boolean", "true", True),
    ("boolean", "false", False), ("boolean", "", None), ("date", "2026-01-31", "2026-01-31"),
    ("reference", "42", 42), ("reference", "", None), ("user", "7", 7), ("long_text", "a\r\nb", "a\nb"),
])
def test_text_becomes_the_value_the_record_service_expects(kind, text, expected):
    assert WIDGETS[kind].parse(_field(kind), MultiDict({"f": text}), "UTC") == {"f": expected}


def test_a_datetime_is_read_in_the_users_time_zone():
    parsed = WIDGETS["datetime"].parse(_field("datetime"), MultiDict({"f": "2026-03-01T09:30"}), "Asia/Shanghai")
    assert parsed == {"f": "2026-03-01T09:30:00+08:00"}


def test_money_carries_its_currency_and_multi_choice_a_list():
    assert WIDGETS["money"].parse(_field("money"), MultiDict({"f": "10", "f_currency": "eur"}), "UTC") == \
        {"f": "10", "f_currency": "EUR"}
    choices = (Choice("a", Label("A", "A")), Choice("b", Label("B", "B")))
    form = MultiDict([("f", "a"), ("f", "b")])
    assert WIDGETS["multi_choice"].parse(_field("multi_choice", choices=choices), form, "UTC") == {"f": ["a", "b"]}


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("integer", "twelve", "must be a whole number"), ("decimal", "1.2.3", "must be a number"),
    ("reference", "1 OR 1=1", "choose a record from the list"), ("datetime", "tomorrow", "must be a date and time"),
])
def test_text_that_is_not_of_the_type_is_named(kind, text, message):
    with pytest.raises(Unparsable, match=message):
        WIDGETS[kind].parse(_field(kind), MultiDict({"f": text}), "UTC")
    body, errors = WIDGETS.parse([_field(kind)], MultiDict({"f": text}), "UTC")
    assert body == {} and errors == {"f": [message]}


def _ui_words() -> set[str]:
    """What the templates of the UI and of the studio pass to `_()`, and the sentences the Python
    side of the UI hands them."""
    words = set(ACTIONS) | set(SCOPES)  # the permission matrix's `_(a)` and `_(s)`
    for path in [*TEMPLATES.glob("*.html"), *(TEMPLATES.parent / "admin").glob("*.html")]:
        found = re.findall(r"""_\(\s*(?:"([^"]+)"|'([^']+)')\s*\)""", path.read_text(encoding="utf-8"))
        words |= {double or single for double, single in found}
    code = "".join(p.read_text(encoding="utf-8") for p in TEMPLATES.parent.parent.glob("*.py"))
    callers = r"(?:word|_login_page|_form|Needed|Refused|Administrator)"
    words |= set(re.findall(callers + r'\((?:[^"()]*, )?"([A-Z][^"]+)"', code))
    words |= set(re.findall(r'message = "([A-Z][^"]+)"', code))
    words |= set(re.findall(r'\b\d{3}: "([A-Z][^"]+)"', code))  # error page titles
    words |= set(re.findall(r'SYSTEM_LABELS = \{([^}]+)\}', code)[0].split('"')[3::4])
    return words


def test_every_ui_word_has_a_chinese_translation():
    words = _ui_words()
    assert {"Save", "Sign in", "Other", "Owner", "Page not found", "Some values are not valid.",
            "The user name or password is wrong.", "Your session has expired; sign in again."} <= words
    assert {"Review the change", "Field access", "team", "The studio is for administrators.",
            "Drag fields between sections, or choose each field's section and position."} <= words  # the studio
    assert sorted(w for w in words if w not in ZH and w != "#") == []
