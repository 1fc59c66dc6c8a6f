"""An entity's values: what a write may contain, how it is checked, how a row reads as JSON.

Input goes through a marshmallow schema generated from the entity's fields (built once per
metadata version, see `runtime.catalog`). Checks here need no database; the record service
adds the ones that do (references exist, unique values are free). Output is a precomputed
list of converters per column, because it runs for every row of every page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime, timezone
from decimal import ROUND_DOWN, Decimal

from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from packwork.errors import BadRequest, ValidationError
from packwork.metadata.model import Entity, Field, Metadata
from packwork.runtime.loaders import direct_loaders

INT64 = 2**63 - 1
# Set by the platform, never by a write body. `owner_id` and `record_type` are writable.
SYSTEM_READ_ONLY = ("id", "created_at", "updated_at", "created_by", "version", "deleted_at")
SYSTEM_OUTPUT = ("id", "record_type", "owner_id", "created_by", "created_at", "updated_at", "version",
                 "deleted_at")
CURRENCY = r"^[A-Z]{3}$"


@dataclass(frozen=True, slots=True)
class OutputColumn:
    key: str
    convert: Callable[[object], object]
    stored: bool = True  # False: a computed field evaluated when read, not a column


def _storable_text(value: str) -> bool:
    if "\x00" in value:
        raise SchemaError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \ud800 escape
        raise SchemaError("is not valid Unicode text") from None
    return True


def _storable(value: str) -> bool:
    """`_storable_text` as a test, quick for ASCII."""
    return "\x00" not in value and (value.isascii() or _storable_text(value))


def _decimal_fits(precision: int, scale: int) -> Callable[[Decimal], bool]:
    def check(value: Decimal) -> bool:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -scale and value.adjusted() < precision - scale:
            return True  # fits as written, so normalized too: the common case, without normalizing
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > scale:
            raise SchemaError(f"at most {scale} decimal places")
        whole = abs(value).to_integral_value(rounding=ROUND_DOWN)
        if whole and whole.adjusted() + 1 > precision - scale:  # adjusted(): 1E+16 has 17 digits
            raise SchemaError(f"at most {precision - scale} digits before the decimal point")
        return True
    return check


def _text(max_length: int | None, *extra) -> fields.Field:
    checks = [_storable_text, *extra]
    if max_length:
        checks.append(validate.Length(max=max_length))
    return fields.String(validate=checks, allow_none=True)


def _decimal(precision: int, scale: int) -> fields.Field:
    return fields.Decimal(allow_nan=False, allow_none=True, validate=_decimal_fits(precision, scale))


def _choice(values: list[str]) -> validate.Validator:
    return validate.OneOf(values, error="must be one of: {choices}")


def _reference() -> fields.Field:
    return fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=INT64))


def input_fields(field: Field) -> dict[str, fields.Field]:
    """The marshmallow fields a write of `field` may carry (a money field carries two)."""
    kind = field.type
    if kind in ("text", "long_text", "phone"):
        return {field.name: _text(field.max_length or (255 if kind == "text" else 40 if kind == "phone"
                                                       else None))}
    if kind == "email":
        return {field.name: _text(254, validate.Email(error="not a valid email address"))}
    if kind == "url":
        return {field.name: _text(2048, validate.URL(error="not a valid URL", schemes={"http", "https"}))}
    if kind == "integer":
        return {field.name: fields.Integer(strict=True, allow_none=True,
                                           validate=validate.Range(min=-INT64, max=INT64))}
    if kind == "decimal":
        return {field.name: _decimal(field.precision or 18, 2 if field.scale is None else field.scale)}
    if kind == "percent":
        return {field.name: _decimal(7, 2)}
    if kind == "money":
        return {field.name: _decimal(field.precision or 18, 2 if field.scale is None else field.scale),
                f"{field.name}_currency": fields.String(allow_none=True, validate=validate.Regexp(
                    CURRENCY, error="must be a three-letter currency code such as EUR"))}
    if kind == "boolean":
        return {field.name: fields.Boolean(allow_none=True)}
    if kind == "date":
        return {field.name: fields.Date(allow_none=True)}
    if kind == "datetime":
        return {field.name: fields.AwareDateTime(default_timezone=timezone.utc, allow_none=True)}
    if kind in ("choice", "stage"):
        return {field.name: fields.String(allow_none=True, validate=_choice([c.value for c in field.choices]))}
    if kind == "multi_choice":
        return {field.name: fields.List(fields.String(validate=_choice([c.value for c in field.choices])),
                                        allow_none=True)}
    if kind in ("reference", "user"):
        return {field.name: _reference()}
    raise ValueError(f"no input for field type {kind!r}")


class EntityValues:
    """Everything about an entity's values that does not need a database."""

    def __init__(self, entity: Entity, metadata: Metadata):
        self.entity = entity
        self.fields = {f.name: f for f in entity.fields if not f.hidden}
        self.writable = {f.name: f for f in self.fields.values() if not f.read_only and f.type != "computed"}
        declared = {}
        for field in self.writable.values():
            declared |= input_fields(field)
        declared["owner_id"] = _reference()
        if entity.record_types:
            declared["record_type"] = fields.String(
                allow_none=True, validate=_choice([r.name for r in entity.record_types]))
        self.input_keys = frozenset(declared)
        self._schema = Schema.from_dict(declared, name=f"{entity.name}_input")(unknown=RAISE)
        self._direct = direct_loaders(self._schema, {_storable_text: _storable})
        self._defaults = tuple((f.name, Decimal(str(f.default)) if isinstance(f.default, float) else f.default)
                               for f in self.writable.values() if f.default is not None)
        self._currencies = tuple((f.name, f"{f.name}_currency", f.currency) for f in self.writable.values()
                                 if f.type == "money" and f.currency)
        self._required_names = tuple(f.name for f in self.writable.values() if f.required)
        self.references = {name: ("pw_user" if f.type == "user" else f.target)
                           for name, f in self.writable.items() if f.type in ("reference", "user")}
        self.references["owner_id"] = "pw_user"
        self.unique = tuple(name for name, f in self.writable.items() if f.unique)
        self.output = tuple(_output_columns(entity, self.fields))
        self.output_keys = frozenset(c.key for c in self.output)
        self.computed_on_read = frozenset(c.key for c in self.output if not c.stored)
        self._convert = {c.key: c.convert for c in self.output}
        self.to_json = {c.key: c.convert for c in self.output if c.convert is not _same}  # the others are JSON

    def load_set_by_rules(self, set_by_rules: Mapping) -> dict[str, object]:
        """Values rule code set, checked and coerced like input. A rule may also set fields no
        user may write (`read_only: true`, `hidden: true`): a pack declares them so that only
        its rules do. Python values go through their JSON form, as a client's would."""
        schema, direct, convert = self._rule_input
        data = {k: convert.get(k, _same)(v) for k, v in set_by_rules.items()}
        try:  # as in `load`: the direct loaders when they take every value, else the schema
            values = {key: load(data[key]) for key, load in direct if key in data} if direct else None
        except Exception:  # noqa: BLE001 - any doubt: the schema decides, and names the problem
            values = None
        if values is None or len(values) != len(data):
            try:
                values = schema.load(data, partial=True)
            except SchemaError as exc:
                raise ValidationError("some values are not valid", _flatten(exc.messages)) from None
        errors = self._required(values, creating=False)  # a rule may not blank a required field
        if errors:
            raise ValidationError("some values are not valid", errors)
        return {k: v.astimezone(timezone.utc) if isinstance(v, datetime) else v for k, v in values.items()}

    @cached_property
    def _rule_input(self) -> tuple[Schema, tuple | None, dict[str, Callable]]:
        stored = {f.name: f for f in self.entity.fields if f.has_column and f.type != "computed"}
        declared = {"owner_id": _reference()}
        for field in stored.values():
            declared |= input_fields(field)
        if self.entity.record_types:
            declared["record_type"] = fields.String(
                allow_none=True, validate=_choice([r.name for r in self.entity.record_types]))
        schema = Schema.from_dict(declared, name=f"{self.entity.name}_rule_values")(unknown=RAISE)
        return (schema, direct_loaders(schema, {_storable_text: _storable}),
                {c.key: c.convert for c in _output_columns(self.entity, stored)})

    def refuse_unwritable(self, data: Mapping) -> None:
        """Read-only, computed, system and unknown keys are named in a 400, never ignored."""
        errors: dict[str, list[str]] = {}
        for key in data:
            if key in self.input_keys:
                continue
            field = self.fields.get(key)
            if key in SYSTEM_READ_ONLY:
                errors[key] = ["is set by the system and cannot be written"]
            elif field is not None and field.type == "computed":
                errors[key] = ["is computed and cannot be written"]
            elif field is not None:
                errors[key] = ["is read-only"]
            elif key == "record_type":
                errors[key] = [f"{self.entity.name!r} declares no record types"]
            else:
                errors[key] = [f"is not a field of {self.entity.name!r}"]
        if errors:
            raise BadRequest("the body names fields that cannot be written", errors)

    def load(self, data: object, *, creating: bool) -> dict[str, object]:
        """A write body as column values: coerced, checked, with defaults on create.
        Raises BadRequest for keys that may not be written, ValidationError for bad values."""
        if not isinstance(data, Mapping):
            raise BadRequest("the body must be a JSON object")
        self.refuse_unwritable(data)
        values = self._load_directly(data)
        if values is None:
            try:
                values = self._schema.load(data, partial=True)
            except SchemaError as exc:
                raise ValidationError("some values are not valid", _flatten(exc.messages)) from None
        if creating:
            values = self._with_defaults(values)
        errors = self._required(values, creating)
        if errors:
            raise ValidationError("some values are not valid", errors)
        for name, value in values.items():
            if isinstance(value, datetime):  # stored in UTC: SQLite keeps no offset
                values[name] = value.astimezone(timezone.utc)
        return values

    def _load_directly(self, data: Mapping) -> dict | None:
        """What the schema would make of `data` (in its key order, as it returns them), when
        the direct loaders (`runtime.loaders`) take every value; None when any is refused."""
        if self._direct is None:
            return None
        try:
            return {key: load(data[key]) for key, load in self._direct if key in data}
        except Exception:  # noqa: BLE001 - any doubt: the schema decides, and names the problem
            return None

    def _with_defaults(self, values: dict) -> dict:
        result = dict(values)
        for name, default in self._defaults:
            if name not in result:
                result[name] = default
        for name, key, currency in self._currencies:
            if result.get(name) is not None and result.get(key) is None:
                result[key] = currency
        return result

    def _required(self, values: dict, creating: bool) -> dict[str, list[str]]:
        errors = {}
        for name in self._required_names:
            present = name in values
            value = values.get(name)
            if (creating and not present) or (present and (value is None or value == "" or value == [])):
                errors[name] = ["is required"]
        return errors

    def keys_of(self, names: frozenset[str]) -> frozenset[str]:
        """The input and output keys of the named fields: a money field's currency key too."""
        if not names:
            return frozenset()
        return frozenset(names) | {f"{n}_currency" for n in names if (f := self.fields.get(n)) and f.type == "money"}

    def json_value(self, key: str, value: object) -> object:
        """One column's value as JSON (for audit entries)."""
        return self._convert.get(key, _same)(value)

    def dump(self, row: Mapping, only: frozenset[str] | None = None) -> dict[str, object]:
        """A row as JSON-ready values: decimals as strings, dates and datetimes as ISO 8601."""
        return self.dump_rows([row], only)[0]

    def dump_rows(self, rows: list[Mapping], only: frozenset[str] | None = None) -> list[dict[str, object]]:
        """Many rows at once: the columns to convert are chosen once, not per row."""
        wanted = [c for c in self.output if c.stored and (only is None or c.key in only)]
        plain = [c.key for c in wanted if c.convert is _same]
        converted = [(c.key, c.convert) for c in wanted if c.convert is not _same]
        result = []
        for row in rows:
            item = {key: row[key] for key in plain}
            for key, convert in converted:
                item[key] = convert(row[key])
            result.append(item)
        return result


def same_value(old: object, new: object) -> bool:
    """Whether a stored value and a loaded one are the same (a write that changes nothing)."""
    if isinstance(old, float) or isinstance(new, float):
        return old is not None and new is not None and float(old) == float(new)
    if isinstance(old, datetime) and isinstance(new, datetime) and old.tzinfo is None:
        return old == new.replace(tzinfo=None)  # SQLite hands back UTC without an offset
    if isinstance(old, date) is not isinstance(new, date):
        return False
    return old == new


def _flatten(messages: Mapping) -> dict[str, list[str]]:
    """marshmallow's nested messages (lists index items) as {field: [message, ...]}."""
    result = {}
    for key, value in messages.items():
        if isinstance(value, Mapping):
            result[str(key)] = [f"item {i}: {m}" for i, ms in value.items() for m in ms]
        else:
            result[str(key)] = [str(m) for m in value]
    return result


def _same(value: object) -> object:
    return value


def _decimal_text(value: object) -> object:
    return None if value is None else str(Decimal(str(value)) if isinstance(value, float) else value)


def _iso_date(value: object) -> object:
    if isinstance(value, str):  # SQLite may hand back text for a date it did not write
        return value
    return None if value is None else value.isoformat()


def iso_datetime(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:  # SQLite: stored as UTC without an offset
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_CONVERT = {"decimal": _decimal_text, "money": _decimal_text, "percent": _decimal_text,
            "date": _iso_date, "datetime": iso_datetime}


def _output_columns(entity: Entity, visible: Mapping[str, Field]):
    system = {"created_at": iso_datetime, "updated_at": iso_datetime, "deleted_at": iso_datetime}
    for name in SYSTEM_OUTPUT:
        yield OutputColumn(name, system.get(name, _same))
    for field in visible.values():
        kind = field.value_type
        if not field.has_column:
            if field.type == "computed" and field.formula:
                yield OutputColumn(field.name, _CONVERT.get(kind, _same), stored=False)
            continue
        yield OutputColumn(field.name, _CONVERT.get(kind, _same))
        if kind == "money":
            yield OutputColumn(f"{field.name}_currency", _same)


