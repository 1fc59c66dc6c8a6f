"""Field types: what each type stores and which properties it accepts.

A FieldType is a small strategy object; the registry is an instance built by
`builtin_field_types()` (never a module-level dict filled at import). Storage is described
abstractly (`Storage`) so this module stays pure; `runtime.tables` maps storage kinds to
SQLAlchemy column types, and `metadata.diff` decides from them whether a change is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from packwork.metadata.model import Field


@dataclass(frozen=True, slots=True)
class Storage:
    """How one column stores a value. `kind` is one of STORAGE_KINDS."""

    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def describe(self) -> str:
        if self.kind == "string":
            return f"string({self.length})"
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.kind


STORAGE_KINDS = ("string", "text", "integer", "decimal", "boolean", "date", "datetime", "json",
                 "reference")

COMMON_PROPERTIES = frozenset({
    "type", "label", "help", "required", "unique", "default", "hidden", "read_only", "indexed",
})


@dataclass(frozen=True, slots=True)
class FieldType:
    name: str
    properties: frozenset[str]
    columns: Callable[[Field], Iterator[tuple[str, Storage]]]
    has_choices: bool = False
    numeric: bool = False


def _single(storage: Callable[[Field], Storage]) -> Callable[[Field], Iterator[tuple[str, Storage]]]:
    def columns(field: Field) -> Iterator[tuple[str, Storage]]:
        yield field.name, storage(field)
    return columns


def _money_columns(field: Field) -> Iterator[tuple[str, Storage]]:
    yield field.name, Storage("decimal", precision=field.precision or 18, scale=field.scale or 2)
    yield f"{field.name}_currency", Storage("string", length=3)


def _computed_columns(field: Field) -> Iterator[tuple[str, Storage]]:
    if field.store:
        result = BUILTIN_RESULT_TYPES[field.result]
        yield from result.columns(field)


def _type(name: str, storage: Callable[[Field], Storage], extra: str = "", **flags) -> FieldType:
    return FieldType(name, COMMON_PROPERTIES | frozenset(extra.split()), _single(storage), **flags)


def _builtin() -> list[FieldType]:
    fixed = lambda kind, **kw: (lambda field: Storage(kind, **kw))  # noqa: E731
    return [
        _type("text", lambda f: Storage("string", length=f.max_length or 255), "max_length"),
        _type("long_text", fixed("text"), "max_length"),
        _type("integer", fixed("integer"), "", numeric=True),
        _type("decimal", lambda f: Storage("decimal", precision=f.precision or 18,
                                           scale=2 if f.scale is None else f.scale),
              "precision scale", numeric=True),
        FieldType("money", COMMON_PROPERTIES | {"precision", "scale", "currency"},
                  _money_columns, numeric=True),
        _type("percent", fixed("decimal", precision=7, scale=2), "", numeric=True),
        _type("boolean", fixed("boolean")),
        _type("date", fixed("date")),
        _type("datetime", fixed("datetime")),
        _type("choice", fixed("string", length=40), "options dictionary", has_choices=True),
        _type("multi_choice", fixed("json"), "options dictionary", has_choices=True),
        _type("email", fixed("string", length=254)),
        _type("phone", fixed("string", length=40)),
        _type("url", fixed("string", length=2048)),
        _type("reference", fixed("reference"), "entity on_delete"),
        _type("user", fixed("reference")),
        _type("stage", fixed("string", length=40), "", has_choices=True),
        FieldType("computed", frozenset({"type", "label", "help", "hidden", "indexed", "formula",
                                         "result", "store"}), _computed_columns),
    ]


class FieldTypes:
    """A registry of field types; a duplicate name is an error at construction."""

    def __init__(self, types: list[FieldType]):
        self._types: dict[str, FieldType] = {}
        for field_type in types:
            if field_type.name in self._types:
                raise ValueError(f"field type {field_type.name!r} registered twice")
            self._types[field_type.name] = field_type

    def __getitem__(self, name: str) -> FieldType:
        return self._types[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return list(self._types)


def builtin_field_types() -> FieldTypes:
    return FieldTypes(_builtin())


# The result types a computed field may have: the plain types that need no extra property.
COMPUTED_RESULTS = ("text", "integer", "decimal", "money", "percent", "boolean", "date", "datetime")
BUILTIN_RESULT_TYPES = {t.name: t for t in _builtin() if t.name in COMPUTED_RESULTS}
