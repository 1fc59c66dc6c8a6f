"""The studio's forms read into pack data, and pack metadata written back into form values.
Pure: a form is a mapping of input names to the text typed. What the text means (a known type,
an existing target entity, a formula naming real fields) is the resolver's to check; here only
what cannot even be written as pack data is refused, each error under its input's name.

Labels have an input per language (`label_en`, `label_zh`); choice options are one per line,
`value, English label, 中文标签` (labels optional)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from packwork.metadata.model import Choice, Field, Label
from packwork.web.pages import whole_number

Errors = dict[str, list[str]]
FLAGS = ("required", "unique", "read_only", "hidden", "indexed")
CHANGEABLE_FLAGS = ("required", "read_only", "indexed")  # what a pack's field takes through change_fields
NUMERIC_DEFAULTS = frozenset({"integer", "decimal", "money", "percent"})
TYPE_INPUTS = {  # the type-specific inputs the field form shows, and the pack key each fills
    "text": ("max_length",), "long_text": ("max_length",), "choice": ("options",), "multi_choice": ("options",),
    "reference": ("entity", "on_delete"), "money": ("currency",), "computed": ("formula", "result"),
}


def label_value(form: Mapping[str, str], key: str) -> dict | None:
    """`{en, zh}` from the `KEY_en` and `KEY_zh` inputs; None when both are empty."""
    en, zh = (form.get(f"{key}_{lang}", "").strip() for lang in ("en", "zh"))
    value = {k: v for k, v in (("en", en), ("zh", zh)) if v}
    return value or None


def label_inputs(key: str, label: Label | None) -> dict[str, str]:
    return {f"{key}_en": label.en if label else "", f"{key}_zh": label.zh if label else ""}


def options_text(choices: tuple[Choice, ...]) -> str:
    return "\n".join(", ".join(dict.fromkeys([c.value, c.label.en, c.label.zh])) for c in choices)


def parse_options(text: str) -> tuple[list[dict], list[str]]:
    options, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        parts = [part.strip() for part in line.split(",")]
        if not parts[0]:
            if any(parts):
                errors.append(f"line {number}: starts with no value")
            continue
        option: dict[str, Any] = {"value": parts[0]}
        labels = {k: v for k, v in zip(("en", "zh"), parts[1:3]) if v}
        if labels:
            option["label"] = labels
        options.append(option)
    return options, errors


def default_value(text: str, field_type: str) -> Any:
    """The typed default as pack data: a number for numeric fields, true/false for a boolean."""
    text = text.strip()
    if not text:
        return None
    if field_type in NUMERIC_DEFAULTS or field_type == "boolean":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


def field_spec(form: Mapping[str, str]) -> tuple[dict, Errors]:
    """A whole field spec (a field the layer adds, or one it owns), from the field form."""
    errors: Errors = {}
    field_type = form.get("type", "").strip()
    spec: dict[str, Any] = {"type": field_type}
    if not field_type:
        errors["type"] = ["choose a type"]
    for key in ("label", "help"):
        if (value := label_value(form, key)) is not None:
            spec[key] = value
    for flag in FLAGS:
        if form.get(flag):
            spec[flag] = True
    if (default := default_value(form.get("default", ""), field_type)) is not None:
        spec["default"] = default
    for key in TYPE_INPUTS.get(field_type, ()):
        _type_input(form, key, spec, errors)
    return spec, errors


def _type_input(form: Mapping[str, str], key: str, spec: dict, errors: Errors) -> None:
    text = form.get(key, "").strip()
    if key == "max_length":
        if text and whole_number(text) is None:
            errors[key] = ["must be a whole number"]
        elif text:
            spec[key] = whole_number(text)
    elif key == "options":
        options, problems = parse_options(form.get(key, ""))
        if problems:
            errors[key] = problems
        elif not options and not form.get("dictionary"):
            errors[key] = ["give at least one option, one per line"]
        spec[key] = options
    elif key in ("entity", "formula") and not text:
        errors[key] = ["choose the entity it refers to" if key == "entity" else "write the formula"]
    elif key == "result":
        spec[key] = text or "decimal"
    elif key == "currency":
        if text:
            spec[key] = text.upper()
    elif text:
        spec[key] = text


def field_changes(form: Mapping[str, str], field: Field) -> tuple[dict, Errors]:
    """What the field form changes of a pack's field (`change_fields` takes only some keys):
    the keys whose value differs from the field as it is, None for "back to the pack's"."""
    errors: Errors = {}
    changes: dict[str, Any] = {}
    for key in ("label", "help"):
        value = label_value(form, key)
        current = getattr(field, key)
        if value is not None and (current is None or value != {"en": current.en, "zh": current.zh}):
            changes[key] = value
    for flag in CHANGEABLE_FLAGS:
        if bool(form.get(flag)) != getattr(field, flag):
            changes[flag] = bool(form.get(flag))
    default = default_value(form.get("default", ""), field.type)
    if default != field.default and not (default is None and field.default is None):
        changes["default"] = default
    if field.type in ("text", "long_text") and "max_length" in form:
        text = form.get("max_length", "").strip()
        if text and whole_number(text) is None:
            errors["max_length"] = ["must be a whole number"]
        elif text and whole_number(text) != field.max_length:
            changes["max_length"] = whole_number(text)
    if field.type in ("choice", "multi_choice") and not field.dictionary and "options" in form:
        options, problems = parse_options(form.get("options", ""))
        if problems:
            errors["options"] = problems
        elif form.get("options", "").strip() != options_text(field.choices):
            changes["options"] = options
    return changes, errors


def field_inputs(field: Field | None) -> dict[str, Any]:
    """The field form's values for an existing field (empty for a new one)."""
    if field is None:
        return {"type": "text"}
    values: dict[str, Any] = {"name": field.name, "type": field.type, **label_inputs("label", field.label),
                              **label_inputs("help", field.help)}
    values |= {flag: getattr(field, flag) for flag in FLAGS}
    values |= {"default": "" if field.default is None else str(field.default).lower()
               if isinstance(field.default, bool) else str(field.default),
               "max_length": str(field.max_length or ""), "options": options_text(field.choices),
               "entity": field.target or "", "on_delete": field.on_delete, "currency": field.currency or "",
               "formula": field.formula or "", "result": field.result or "", "dictionary": field.dictionary or ""}
    return values


def names_list(text: str) -> list[str]:
    """Names typed separated by commas or spaces."""
    return [name for name in text.replace(",", " ").split() if name]
