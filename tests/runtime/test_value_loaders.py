"""The direct loaders (`runtime.loaders`) load exactly what marshmallow's schema loads, and
leave every value it refuses to it, so each refusal keeps marshmallow's message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import PACKS, TEST_PACKS
from packwork.errors import RequestError
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.runtime.values import EntityValues

SAMPLES = [None, "", " ", "x", "a" * 120, "a" * 121, "nul\x00byte", "lone \ud800", "名称", 0, 1, -1, 2**63, 2**63 - 1,
           -(2**63), True, False, 1.5, 1e16, float("nan"), float("inf"), "NaN", "1.2345", "12.5", " 12.5 ", "1_000",
           "1E+9", "-0", "-0.00", Decimal("7.1"), b"bytes", "2024-02-29", "2023-02-29", "20240201",
           "2024-02-03T10:00", "2024-02-03T10:00:00+02:00", "2024-02-03 10:00Z", "EUR", "eur", "EUR\n", "red",
           "Red", "s", "xl", ["new"], ["new", "old"], [None], ("new",), [], "i@example.org", "not-an-address",
           "https://example.org", "javascript:alert(1)", {"a": 1}, "big", "true", "1", 3.0]


def _metadata(folder):
    sources, problems = read_pack_folders([folder])
    assert not problems
    return resolve_sources(sources)


@pytest.fixture(scope="module")
def widget() -> EntityValues:
    metadata = _metadata(TEST_PACKS / "mini")
    return EntityValues(metadata.entities["widget"], metadata)


def _outcome(values: EntityValues, body: dict, direct: bool) -> tuple:
    saved = values._direct
    values._direct = saved if direct else None
    try:
        loaded = values.load(body, creating=True)
        return "loaded", [(k, type(v), v) for k, v in loaded.items()]
    except RequestError as exc:
        return type(exc).__name__, exc.detail, exc.errors
    finally:
        values._direct = saved


def test_every_field_of_the_test_pack_has_a_direct_loader(widget):
    assert widget._direct is not None and {key for key, _ in widget._direct} == widget.input_keys


def test_every_entity_of_the_standard_crm_has_direct_loaders():
    metadata = _metadata(PACKS / "standard_crm")
    assert [name for name, entity in metadata.entities.items() if EntityValues(entity, metadata)._direct is None] == []


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_the_direct_loaders_load_and_refuse_as_the_schema_does(widget, value):
    for key in sorted(widget.input_keys):
        body = {"name": "w", key: value}
        assert _outcome(widget, body, direct=True) == _outcome(widget, body, direct=False), key
