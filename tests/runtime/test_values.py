"""Write values are coerced and checked from metadata alone, and rows read back as JSON."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from conftest import TEST_PACKS
from packwork.errors import BadRequest, ValidationError
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.runtime.values import EntityValues


@pytest.fixture(scope="module")
def widget() -> EntityValues:
    sources, problems = read_pack_folders([TEST_PACKS / "mini"])
    assert not problems
    metadata = resolve_sources(sources)
    return EntityValues(metadata.entities["widget"], metadata)


def errors_of(widget: EntityValues, data: dict, creating: bool = True) -> dict:
    with pytest.raises(ValidationError) as caught:
        widget.load(data, creating=creating)
    return caught.value.errors


def test_defaults_and_currency_apply_on_create(widget):
    values = widget.load({"name": "w", "price": "12.5"}, creating=True)
    assert values["count"] == 0 and values["active"] is True
    assert values["price"] == Decimal("12.5") and values["price_currency"] == "EUR"


def test_required_only_when_creating_or_when_cleared(widget):
    assert errors_of(widget, {"code": "x"}) == {"name": ["is required"]}
    assert widget.load({"code": "x"}, creating=False) == {"code": "x"}
    assert errors_of(widget, {"name": ""}, creating=False) == {"name": ["is required"]}


@pytest.mark.parametrize("field, value, message", [
    ("weight", "1.2345", "at most 3 decimal places"),
    ("weight", "1234567890.1", "at most 9 digits before the decimal point"),
    ("weight", "1E+9", "at most 9 digits before the decimal point"),
    ("price", 1e16, "at most 16 digits before the decimal point"),
    ("price", "NaN", None),
    ("count", 2**63, None),
    ("count", True, None),
    ("count", "3", None),
    ("name", "a" * 121, None),
    ("name", "nul\x00byte", "must not contain NUL characters"),
    ("name", "lone \ud800 surrogate", "is not valid Unicode text"),
    ("size", "xl", None),
    ("tags", ["new", "old"], None),
    ("made_on", "2023-02-29", None),
    ("email", "not-an-address", "not a valid email address"),
    ("site", "javascript:alert(1)", "not a valid URL"),
    ("bin", 0, None),
    ("price_currency", "euro", None),
])
def test_bad_values_are_refused_by_field(widget, field, value, message):
    errors = errors_of(widget, {"name": "w", field: value})
    assert list(errors) == [field]
    if message:
        assert any(message in m for m in errors[field]), errors


def test_decimals_keep_their_digits(widget):
    assert widget.load({"weight": "123456789.125"}, creating=False)["weight"] == Decimal("123456789.125")


def test_datetimes_are_stored_in_utc(widget):
    stored = widget.load({"checked_at": "2024-05-01T10:00:00+02:00"}, creating=False)["checked_at"]
    assert stored == datetime(2024, 5, 1, 8, tzinfo=timezone.utc)


def test_unwritable_keys_are_named_with_the_reason(widget):
    with pytest.raises(BadRequest) as caught:
        widget.load({"id": 1, "total": 3, "updated_at": "x", "nope": 1}, creating=True)
    assert caught.value.errors == {"id": ["is set by the system and cannot be written"],
                                   "total": ["is computed and cannot be written"],
                                   "updated_at": ["is set by the system and cannot be written"],
                                   "nope": ["is not a field of 'widget'"]}


def test_rows_dump_as_json_values(widget):
    row = {key: None for key in widget.output_keys} | {
        "id": 3, "version": 2, "price": Decimal("9.90"), "made_on": datetime(2024, 1, 2).date(),
        "checked_at": datetime(2024, 1, 2, 3, 4, 5), "tags": ["new"]}
    dumped = widget.dump(row)
    assert dumped["price"] == "9.90" and dumped["made_on"] == "2024-01-02"
    assert dumped["checked_at"] == "2024-01-02T03:04:05Z" and dumped["tags"] == ["new"]
    assert "notes" in dumped and widget.dump(row, frozenset({"id"})) == {"id": 3}
