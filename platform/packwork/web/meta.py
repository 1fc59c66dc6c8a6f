"""`/api/v1/meta`: what an integrator needs to know about entities, generated from metadata."""

from __future__ import annotations

from packwork.metadata.model import Entity, Field, Label, Rule
from packwork.runtime.records import Context, entity_for, runnable


def _label(label: Label | None) -> dict | None:
    return None if label is None else {"en": label.en, "zh": label.zh}


def describe_field(field: Field, read_only: bool = False) -> dict:
    described = {"name": field.name, "type": field.type, "label": _label(field.label),
                 "required": field.required, "unique": field.unique,
                 "read_only": read_only or field.read_only or field.type == "computed"}
    optional = {"help": _label(field.help), "default": field.default, "max_length": field.max_length,
                "precision": field.precision, "scale": field.scale, "entity": field.target,
                "currency": field.currency, "result": field.result}
    described |= {k: v for k, v in optional.items() if v is not None}
    if field.type == "user":
        described["entity"] = "user"
    if field.choices:
        described["choices"] = [{"value": c.value, "label": _label(c.label)} for c in field.choices]
    return described


def _summary(entity: Entity) -> dict:
    return {"name": entity.name, "label": _label(entity.label), "plural": _label(entity.plural),
            "pack": entity.pack, "icon": entity.icon, "title_field": entity.title_field}


def describe_action(rule: Rule) -> dict:
    """A pack action as a client needs it to offer and run it."""
    action = rule.action
    return {"name": rule.name, "label": _label(action.label), "confirm": _label(action.confirm),
            "condition": action.condition, "grant": action.grant, "roles": list(action.roles),
            "inputs": [describe_field(f) for f in action.inputs]}


def describe_all(ctx: Context) -> dict:
    entities = [e for e in ctx.catalog.metadata.entities.values()
                if not e.hidden and ctx.access.policy(e.name).reach("read").granted]
    return {"version": ctx.catalog.metadata.version, "entities": [_summary(e) for e in entities]}


def describe_entity(ctx: Context, name: str) -> dict:
    entity = entity_for(ctx, name)
    policy = ctx.access.policy(entity.name)
    described = _summary(entity) | {
        "search_fields": [f for f in entity.search_fields if f not in policy.hidden],
        "fields": [describe_field(f, f.name in policy.read_only) for f in entity.fields
                   if not f.hidden and f.name not in policy.hidden],
        "access": {action: reach.scope for action, reach in policy.actions.items()},
        "record_types": [{"name": r.name, "label": _label(r.label)} for r in entity.record_types],
        "list_views": [{"name": v.name, "label": _label(v.label), "columns": list(v.columns),
                        "sort": ",".join(("-" if k.descending else "") + k.field for k in v.sort),
                        "filter": v.filter} for v in entity.list_views],
        "actions": [describe_action(rule) for rule in runnable(ctx, entity.name)],
    }
    if entity.pipeline:
        described["pipeline"] = {"field": entity.pipeline.field, "stages": [
            {"name": s.name, "label": _label(s.label), "probability": s.probability, "outcome": s.outcome,
             "required_fields": list(s.required_fields)} for s in entity.pipeline.stages]}
    return described
