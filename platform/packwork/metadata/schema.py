"""JSON Schema validation of pack files, with messages a person can act on."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from packwork.metadata.loader import Document
from packwork.metadata.problems import Problem

SCHEMA_FILE = "pack-v1.schema.json"
_TYPE_NAMES = {"string": "text", "object": "a mapping", "array": "a list", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "nothing"}


@cache
def pack_schema() -> dict:
    text = resources.files("packwork.metadata").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(pack_schema())


def did_you_mean(word: object, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def schema_problems(doc: Document) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(doc.data):
        if error.validator in ("oneOf", "anyOf") and error.context and not _is_alternative(error):
            error = best_match(error.context)
        path = tuple(error.absolute_path)
        if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
            path += (error.instance,)  # point at the offending key itself
        problems.append(doc.problem("PACK-E010", path, _message(error)))
    return sorted(problems, key=lambda p: (p.line, p.path))


def _is_alternative(error: ValidationError) -> bool:
    """A oneOf we explain as a whole (label forms, tabs-or-sections) rather than by branch."""
    return _is_label(error) or all(set(s) == {"required"} for s in error.validator_value)


def _is_label(error: ValidationError) -> bool:
    return any(isinstance(s, dict) and s.get("properties", {}).keys() == {"en", "zh"}
               for s in error.validator_value)


def _message(error: ValidationError) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "oneOf" and _is_label(error):
        return "expected text or a mapping with 'en' and/or 'zh'"
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        hint = did_you_mean(extra[0], allowed)
        return f"unknown key {extra[0]!r}" + (hint or f" (expected one of: {', '.join(allowed)})")
    if kind == "enum":
        hint = did_you_mean(instance, list(map(str, value)))
        return f"{instance!r} is not one of {', '.join(map(str, value))}" if not hint else (
            f"{instance!r} is not an allowed value{hint}")
    if kind == "required":
        missing = [k for k in value if k not in instance]
        return f"{missing[0]!r} is required"
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        return f"expected {' or '.join(_TYPE_NAMES.get(w, w) for w in wanted)}, got {instance!r}"
    if kind == "pattern" and value == "^[a-z][a-z0-9_]*$":
        return (f"{instance!r} is not a valid name: use lowercase letters, digits and '_', "
                "starting with a letter")
    if kind == "propertyNames":
        return f"{error.instance!r} has an invalid name"
    if kind == "oneOf":
        keys = " or ".join(repr(s["required"][0]) for s in value)
        return f"give exactly one of {keys}"
    return error.message
