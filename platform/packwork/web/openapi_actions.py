"""The OpenAPI paths of pack actions: per entity, the actions a record offers now, and one POST
per declared action with its inputs as the body's schema."""

from __future__ import annotations

from packwork.metadata.model import Entity, Rule

ACTION_INFO = {"type": "object", "required": ["name", "label", "grant", "inputs"], "properties": {
    "name": {"type": "string"}, "label": {"type": "object"}, "confirm": {"type": ["object", "null"]},
    "condition": {"type": ["string", "null"]}, "grant": {"type": "string"},
    "roles": {"type": "array", "items": {"type": "string"}},
    "inputs": {"type": "array", "items": {"type": "object"}}}}
CREATED = {"type": "array", "description": "The records the action created, in order", "items": {
    "type": "object", "required": ["entity", "id"], "properties": {
        "entity": {"type": "string"}, "id": {"type": "integer"}}}}


def action_paths(entity: Entity, rules: list[Rule], field_schema, responses, json_body, content) -> dict:
    """Paths for `rules` (the entity's actions); the helpers are openapi.py's, passed in so this
    module does not import that one (which calls this)."""
    name = entity.name
    item = [{"$ref": "#/components/parameters/id"}]
    paths = {f"/api/v1/{name}/{{id}}/actions": {
        "parameters": item,
        "get": {"operationId": f"actions_{name}", "tags": [name],
                "summary": "The actions you may run on this record now",
                "responses": responses({"200": content("Actions", {
                    "type": "object", "required": ["data"],
                    "properties": {"data": {"type": "array", "items": ACTION_INFO}}})})}}}
    for rule in rules:
        action = rule.action
        inputs = {f.name: field_schema(f, reading=False) for f in action.inputs}
        required = [f.name for f in action.inputs if f.required and f.default is None]
        body = {"type": "object", "additionalProperties": False, "properties": {
            "version": {"type": "integer", "description": "The version you read (or send If-Match)."},
            "inputs": {"type": "object", "additionalProperties": False, "properties": inputs, "required": required}}}
        result = {"type": "object", "required": ["record", "created"], "properties": {
            "record": {"$ref": f"#/components/schemas/{name}"}, "created": CREATED}}
        paths[f"/api/v1/{name}/{{id}}/actions/{rule.name}"] = {
            "parameters": item,
            "post": {"operationId": f"action_{name}_{rule.name}", "tags": [name],
                     "summary": f"{action.label.en} (needs {action.grant} access to the record)"
                     + (f"; offered when {action.condition}" if action.condition else ""),
                     "parameters": [{"$ref": "#/components/parameters/if_match"}],
                     "requestBody": json_body(body),
                     "responses": responses({"200": content("The record after the action, and what it created",
                                                            result)}, "409", "428")}}
    return paths
