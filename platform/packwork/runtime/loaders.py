"""What marshmallow's `Schema.load` makes of a write body's values, without its machinery.

marshmallow's load costs some 10 µs a field, most of it machinery around the conversion. For
the values a body usually holds (a string for a string field, an int for an integer...) the
conversion and the field's own validators are run here directly, by marshmallow's exact rules.
Any other value, and any value a validator refuses, makes a loader raise: the caller then loads
the body with the schema, so every refusal, and so every message, still comes from marshmallow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal

from marshmallow import Schema, fields, validate


class _Unsure(Exception):
    """A value the loaders leave to the schema."""


def _string(value: object) -> object:
    if type(value) is not str:  # marshmallow also takes bytes, and names what is wrong
        raise _Unsure
    return value


def _integer(value: object) -> object:
    if type(value) is not int:  # bool is an int, and marshmallow refuses it
        raise _Unsure
    return value


def _decimal_number(value: object) -> object:
    if type(value) not in (str, int, float):
        raise _Unsure
    number = Decimal(str(value))  # as fields.Decimal does; a bad text raises, and the schema reports it
    if not number.is_finite():
        raise _Unsure
    return number


def _boolean(value: object) -> object:
    if value is True or value is False:
        return value
    raise _Unsure


def _iso_date_text(value: object) -> object:
    if type(value) is not str:
        raise _Unsure
    return date.fromisoformat(value)


def _aware(default_timezone) -> Callable[[object], object]:
    def load(value: object) -> object:
        if type(value) is not str:
            raise _Unsure
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
            moment = moment.replace(tzinfo=default_timezone)
        return moment
    return load


def _conversion(field: fields.Field, known: Mapping) -> Callable[[object], object] | None:
    """The conversion marshmallow's `field._deserialize` makes of the plain values, or None
    for a field configured in a way these do not follow."""
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Integer and field.strict:
        return _integer
    if kind is fields.Decimal and field.places is None and not field.allow_nan and not field.as_string:
        return _decimal_number
    if kind is fields.Boolean and field.truthy == fields.Boolean.truthy and field.falsy == fields.Boolean.falsy:
        return _boolean
    if kind is fields.Date and field.format == "iso":
        return _iso_date_text
    if kind is fields.AwareDateTime and field.format == "iso" and field.default_timezone is not None:
        return _aware(field.default_timezone)
    if kind is fields.List:
        item = _direct(field.inner, known)
        if item is None:
            return None

        def items(value: object) -> object:
            if type(value) is not list:
                raise _Unsure
            return [item(each) for each in value]
        return items
    return None


def _test(validator: Callable, known: Mapping[Callable, Callable[[object], bool]]) -> Callable[[object], bool]:
    """A field's validator as a test (True: the converted value passes): `known` ones as given,
    marshmallow's common ones written out; any other is called, and raises on a bad value."""
    for candidate, test in known.items():
        if validator is candidate:
            return test
    kind = type(validator)
    if kind is validate.Length and validator.min is None and validator.equal is None and validator.max is not None:
        most = validator.max
        return lambda value: len(value) <= most
    if kind is validate.OneOf and all(type(choice) is str for choice in validator.choices):
        return frozenset(validator.choices).__contains__  # the loaders only pass it strings
    if kind is validate.Range and validator.min_inclusive and validator.max_inclusive \
            and validator.min is not None and validator.max is not None:
        low, high = validator.min, validator.max
        return lambda value: low <= value <= high

    def passes(value: object) -> bool:
        validator(value)
        return True
    return passes


def _direct(field: fields.Field, known: Mapping) -> Callable[[object], object] | None:
    """`field.deserialize` for the plain values, the field's validators included."""
    convert = _conversion(field, known)
    if convert is None or field.pre_load or field.post_load or field.data_key or field.attribute:
        return None
    tests, allow_none = tuple(_test(v, known) for v in field.validators), field.allow_none

    def load(value: object) -> object:
        if value is None:
            if allow_none:
                return None
            raise _Unsure
        converted = convert(value)
        for test in tests:
            if not test(converted):
                raise _Unsure
        return converted
    return load


def direct_loaders(schema: Schema, known: Mapping[Callable, Callable[[object], bool]]
                   ) -> tuple[tuple[str, Callable[[object], object]], ...] | None:
    """Each input key's loader, in the schema's order (the order its `load` returns them);
    None if a field has none. `known` maps validators of the caller's own to quicker tests of
    the same values. A loader raises for any value it does not simply accept."""
    found = []
    for name, field in schema.load_fields.items():
        load = _direct(field, known)
        if load is None:
            return None
        found.append((name, load))
    return tuple(found)
