"""The OpenAPI 3.1 document, generated from the catalog: one set of paths and schemas per entity."""

from __future__ import annotations

from packwork import __version__
from packwork.metadata.model import Entity, Field, Relation
from packwork.runtime.catalog import Catalog
from packwork.runtime.listing import DEFAULT_LIMIT, MAX_LIMIT, UNSORTABLE
from packwork.runtime.records import MAX_BULK
from packwork.runtime.values import EntityValues
from packwork.web import openapi_actions, openapi_reports

PROBLEM = {"$ref": "#/components/responses/Problem"}
NUMBER_TEXT = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
REFUSALS = ("400", "401", "403", "404", "415", "422", "429")


def _nullable(schema: dict) -> dict:
    kind = schema.get("type")
    if isinstance(kind, str):
        return schema | {"type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _value_schema(field: Field, kind: str, *, reading: bool) -> dict:
    if kind in ("text", "long_text", "email", "phone", "url"):
        schema = {"type": "string"}
        if field.max_length and not reading:
            schema["maxLength"] = field.max_length
        return schema
    if kind in ("integer",):
        return {"type": "integer", "format": "int64"}
    if kind in ("decimal", "money", "percent"):
        return NUMBER_TEXT if reading else {"anyOf": [NUMBER_TEXT, {"type": "number"}]}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    values = [c.value for c in field.choices]
    if kind in ("choice", "stage"):
        return {"type": "string"} if reading else {"type": "string", "enum": values}
    if kind == "multi_choice":
        return {"type": "array", "items": {"type": "string"} if reading else {"type": "string", "enum": values}}
    if kind in ("reference", "user"):
        schema = {"type": "integer", "minimum": 1, "format": "int64"}
        if reading:  # `expand=` replaces the id by the record
            return {"anyOf": [schema, {"type": "object"}]}
        return schema
    raise ValueError(f"no schema for {kind!r}")


def _field_schema(field: Field, *, reading: bool) -> dict:
    schema = _value_schema(field, field.value_type, reading=reading)
    schema = schema | {"title": field.label.en}
    if field.help:
        schema["description"] = field.help.en
    if field.read_only or field.type == "computed":
        schema["readOnly"] = True
    return _nullable(schema)


SYSTEM_READ = {
    "id": {"type": "integer", "format": "int64"},
    "record_type": {"type": ["string", "null"]},
    "owner_id": {"anyOf": [{"type": "integer"}, {"type": "object"}, {"type": "null"}]},
    "created_by": {"type": ["integer", "null"]},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
    "version": {"type": "integer", "description": "Send it back in If-Match (or the body) to update."},
    "deleted_at": {"type": ["string", "null"], "format": "date-time"},
}


def _read_schema(entity: Entity, values: EntityValues) -> dict:
    properties = dict(SYSTEM_READ)
    for field in values.fields.values():
        if not field.has_column and field.name not in values.computed_on_read:
            continue
        properties[field.name] = _field_schema(field, reading=True)
        if field.value_type == "money":
            properties[f"{field.name}_currency"] = {"type": ["string", "null"]}
    return {"type": "object", "title": entity.label.en, "properties": properties,
            "required": ["id", "version"]}


def _write_schema(entity: Entity, values: EntityValues, *, creating: bool) -> dict:
    properties = {}
    for field in values.writable.values():
        properties[field.name] = _field_schema(field, reading=False)
        if field.type == "money":
            properties[f"{field.name}_currency"] = {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"}
    properties["owner_id"] = {"type": ["integer", "null"], "minimum": 1, "format": "int64"}
    if entity.record_types:
        properties["record_type"] = {"type": ["string", "null"], "enum": [r.name for r in entity.record_types]
                                     + [None]}
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if creating:
        required = [f.name for f in values.writable.values() if f.required and f.default is None]
        if required:
            schema["required"] = required
    else:
        properties["version"] = {"type": "integer", "description": "The version this change is based on."}
    return schema


IMPORT_PARAMETERS = [
    {"name": "mode", "in": "query", "description": "all_or_nothing (default) or skip_bad (write the good rows)",
     "schema": {"type": "string", "enum": ["all_or_nothing", "skip_bad"]}},
    {"name": "key", "in": "query", "description": "Fields whose values find the record a row updates; repeatable",
     "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": True},
    {"name": "dry_run", "in": "query", "description": "Check every row, write nothing",
     "schema": {"type": "boolean"}},
]
IMPORT_REPORT = {
    "type": "object", "required": ["entity", "mode", "dry_run", "written", "rows", "created", "updated", "failed",
                                   "ignored_columns", "errors"],
    "properties": {
        "entity": {"type": "string"}, "mode": {"type": "string"}, "dry_run": {"type": "boolean"},
        "written": {"type": "boolean", "description": "Whether the good rows were kept"},
        "rows": {"type": "integer"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
        "failed": {"type": "integer", "description": "Rows refused"},
        "ignored_columns": {"type": "object", "additionalProperties": {"type": "string"}},
        "errors": {"type": "array", "items": {"type": "object", "required": ["row", "field", "message"], "properties": {
            "row": {"type": "integer", "description": "The row in the file; the header is row 1"},
            "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


def _responses(ok: dict, *refusals: str) -> dict:
    return ok | {code: PROBLEM for code in (*REFUSALS, *refusals)}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _entity_paths(entity: Entity, values: EntityValues) -> dict:
    name = entity.name
    ref = {"$ref": f"#/components/schemas/{name}"}
    one = {"description": "The record", "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
           "content": {"application/json": {"schema": ref}}}
    rows = {"type": "object", "properties": {"data": {"type": "array", "items": ref}}, "required": ["data"]}
    page = {"type": "object", "required": ["data", "next"], "properties": {
        "data": {"type": "array", "items": ref}, "next": {"type": ["string", "null"]},
        "count": {"type": "integer"}}}
    item = [{"$ref": "#/components/parameters/id"}]
    tag = [name]
    written = one | {"links": _record_links(name)}
    create = {"$ref": f"#/components/schemas/{name}_create"}
    change = {"$ref": f"#/components/schemas/{name}_update"}
    equality = [{"name": f, "in": "query", "required": False, "schema": {"type": "string"},
                 "description": f"Shorthand for filter `{f} = value` (empty value: is null)."}
                for f in _filterable(values)]
    return {
        f"/api/v1/{name}": {
            "get": {"operationId": f"list_{name}", "tags": tag, "summary": f"List {entity.plural.en}",
                    "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in
                                   ("filter", "sort", "fields", "expand", "limit", "after", "count")] + equality,
                    "responses": _responses({"200": _content("A page of records", page)})},
            "post": {"operationId": f"create_{name}", "tags": tag, "summary": f"Create a {entity.label.en}",
                     "requestBody": _json_body(create), "responses": _responses({"201": written}, "409")},
        },
        f"/api/v1/{name}/bulk": {
            "post": {"operationId": f"bulk_{name}", "tags": tag,
                     "summary": "Create (no id) or update (id and version) many records, all or nothing",
                     "requestBody": _json_body({"type": "array", "minItems": 1, "maxItems": MAX_BULK, "items": {
                         "anyOf": [create, {"allOf": [change], "type": "object",
                                            "properties": {"id": {"type": "integer", "minimum": 1}}}]}}),
                     "responses": _responses({"200": _content("The records written", rows)}, "409")},
        },
        f"/api/v1/{name}/export": {
            "get": {"operationId": f"export_{name}", "tags": tag, "summary": "Export as CSV (the export grant)",
                    "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in ("filter", "sort", "fields")]
                    + equality,
                    "responses": _responses({"200": {"description": "CSV, a header row then one row per record",
                                                     "content": {"text/csv": {"schema": {"type": "string"}}}}})},
        },
        f"/api/v1/{name}/deleted": {
            "get": {"operationId": f"deleted_{name}", "tags": tag,
                    "summary": "The recycle bin: deleted records you may restore (the delete grant), newest "
                               "deletion first",
                    "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in
                                   ("filter", "fields", "expand", "limit", "after", "count")] + equality,
                    "responses": _responses({"200": _content("A page of deleted records", {
                        "type": "object", "required": ["data", "next"], "properties": {
                            "data": {"type": "array", "items": _deleted_item(ref)},
                            "next": {"type": ["string", "null"]}, "count": {"type": "integer"}}})})},
        },
        f"/api/v1/{name}/import": {
            "post": {"operationId": f"import_{name}", "tags": tag,
                     "summary": "Import a JSON array (all or nothing) or a CSV or XLSX file (the import grant)",
                     "parameters": IMPORT_PARAMETERS,
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"type": "array", "minItems": 1, "maxItems": MAX_BULK,
                                                         "items": create}},
                         "text/csv": {"schema": {"type": "string"}},
                         "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                             "file": {"type": "string", "format": "binary"}}}}}},
                     "responses": _responses({"201": _content("The records written (a JSON array)", rows),
                                              "200": _content("The import report (a file)", IMPORT_REPORT)},
                                             "409")},
        },
        f"/api/v1/{name}/{{id}}/shares": {
            "parameters": item,
            "get": {"operationId": f"shares_{name}", "tags": tag, "summary": "Who the record is shared with",
                    "responses": _responses({"200": _content("Shares", {
                        "type": "object", "required": ["data"],
                        "properties": {"data": {"type": "array", "items": SHARE}}})})},
            "post": {"operationId": f"share_{name}", "tags": tag,
                     "summary": "Share with a user or a team (owner, or whoever may transfer it)",
                     "requestBody": _json_body(SHARE_REQUEST),
                     "responses": _responses({"201": _content("The share", SHARE)})},
        },
        f"/api/v1/{name}/{{id}}/shares/{{share_id}}": {
            "parameters": item + [{"name": "share_id", "in": "path", "required": True,
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}],
            "delete": {"operationId": f"unshare_{name}", "tags": tag, "summary": "Stop sharing",
                       "responses": _responses({"204": {"description": "No longer shared"}})},
        },
        f"/api/v1/{name}/{{id}}": {
            "parameters": item,
            "get": {"operationId": f"get_{name}", "tags": tag, "summary": f"Read a {entity.label.en}",
                    "parameters": [{"$ref": "#/components/parameters/expand"}],
                    "responses": _responses({"200": written})},
            "patch": {"operationId": f"update_{name}", "tags": tag, "summary": f"Change a {entity.label.en}",
                      "parameters": [{"$ref": "#/components/parameters/if_match"}],
                      "requestBody": _json_body(change), "responses": _responses({"200": written}, "409", "428")},
            "delete": {"operationId": f"delete_{name}", "tags": tag, "summary": "Delete (restorable)",
                       "parameters": [{"$ref": "#/components/parameters/if_match"}],
                       "responses": _responses({"204": {"description": "Deleted", "links": {
                           "RestoreRecord": {"operationId": f"restore_{name}",
                                             "parameters": {"id": "$request.path.id"}}}}}, "409")},
        },
        f"/api/v1/{name}/{{id}}/restore": {
            "parameters": item,
            "post": {"operationId": f"restore_{name}", "tags": tag, "summary": "Restore a deleted record",
                     "responses": _responses({"200": one}, "409")},
        },
        f"/api/v1/{name}/{{id}}/history": {
            "parameters": item,
            "get": {"operationId": f"history_{name}", "tags": tag, "summary": "The audit trail, newest first",
                    "responses": _responses({"200": _content("Audit entries", {
                        "type": "object", "required": ["data"],
                        "properties": {"data": {"type": "array",
                                                "items": {"$ref": "#/components/schemas/AuditEntry"}}}})})},
        },
    }


def _deleted_item(record: dict) -> dict:
    """One record in the recycle bin: the record, when it was deleted and by whom."""
    return {"type": "object", "required": ["record", "deleted_at", "deleted_by"], "properties": {
        "record": record, "deleted_at": {"type": "string", "format": "date-time"},
        "deleted_by": {"description": "Who deleted it, from the audit trail (null: the platform, or unknown)",
                       "anyOf": [{"type": "null"}, {"type": "object", "required": ["id", "username"],
                                                    "properties": {"id": {"type": "integer"},
                                                                   "username": {"type": "string"},
                                                                   "display_name": {"type": "string"}}}]}}}


def _link_paths(entity: Entity, relation: Relation, other: str) -> dict:
    """A relation's links as a sub-resource of each record of `entity`, `other` at the far end."""
    name, key = entity.name, relation.name
    fields = {f.name: _field_schema(f, reading=False) for f in relation.fields}
    shown = {f.name: _field_schema(f, reading=True) for f in relation.fields}
    link = {"type": "object", "required": ["id", "record", "created_at"], "properties": {
        "id": {"type": "integer"}, "record": {"$ref": f"#/components/schemas/{other}"},
        "created_at": {"type": "string", "format": "date-time"}} | shown}
    required = ["id"] + [f.name for f in relation.fields if f.required and f.default is None]
    request = {"type": "object", "required": required, "additionalProperties": False, "properties": {
        "id": {"type": "integer", "minimum": 1, "format": "int64", "description": f"The {other} to link"}} | fields}
    item = [{"$ref": "#/components/parameters/id"}]
    return {
        f"/api/v1/{name}/{{id}}/links/{key}": {
            "parameters": item,
            "get": {"operationId": f"links_{name}_{key}", "tags": [name],
                    "summary": f"{relation.label.en}: the linked {other} records you may read",
                    "responses": _responses({"200": _content("Links", {
                        "type": "object", "required": ["data", "total"], "properties": {
                            "data": {"type": "array", "items": link}, "total": {"type": "integer"}}})})},
            "post": {"operationId": f"link_{name}_{key}", "tags": [name],
                     "summary": f"Link a {other} (needs update access to this record)",
                     "requestBody": _json_body(request),
                     "responses": _responses({"201": _content("The link", link)}, "409")},
        },
        f"/api/v1/{name}/{{id}}/links/{key}/{{link_id}}": {
            "parameters": item + [{"name": "link_id", "in": "path", "required": True,
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}],
            "delete": {"operationId": f"unlink_{name}_{key}", "tags": [name], "summary": "Remove the link",
                       "responses": _responses({"204": {"description": "Unlinked"}})},
        },
    }


def _filterable(values: EntityValues) -> list[str]:
    return [f.name for f in values.fields.values()
            if f.value_type not in UNSORTABLE and f.has_column]


def _record_links(name: str) -> dict:
    """What a client can do next with a record it was given (OpenAPI links: the record's id,
    and its ETag as the If-Match of a change)."""
    by_id = {"id": "$response.body#/id"}
    versioned = by_id | {"header.If-Match": "$response.header.ETag"}
    return {"GetRecord": {"operationId": f"get_{name}", "parameters": by_id},
            "UpdateRecord": {"operationId": f"update_{name}", "parameters": versioned},
            "DeleteRecord": {"operationId": f"delete_{name}", "parameters": versioned},
            "RecordHistory": {"operationId": f"history_{name}", "parameters": by_id}}


def _content(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(catalog: Catalog, server: str = "") -> dict:
    """The whole OpenAPI 3.1 document for the catalog's metadata version."""
    paths, schemas = {}, dict(COMMON_SCHEMAS)
    for entity in catalog.metadata.entities.values():
        if entity.hidden:
            continue
        values = catalog.values(entity)
        paths |= _entity_paths(entity, values)
        for relation in catalog.metadata.relations.values():
            for end, other in ((relation.source, relation.target), (relation.target, relation.source)):
                if end == entity.name and not catalog.metadata.entities[other].hidden:
                    paths |= _link_paths(entity, relation, other)
        schemas[entity.name] = _read_schema(entity, values)
        schemas[f"{entity.name}_create"] = _write_schema(entity, values, creating=True)
        schemas[f"{entity.name}_update"] = _write_schema(entity, values, creating=False)
        actions = [r for r in catalog.metadata.rules if r.entity == entity.name and r.action is not None]
        paths |= openapi_actions.action_paths(entity, actions, _field_schema, _responses, _json_body, _content)
    paths["/api/v1/transfers"] = {"post": {
        "operationId": "transfer_records", "tags": ["users"],
        "summary": "Give every record of one user to another, as far as the caller may transfer",
        "requestBody": _json_body(TRANSFER_REQUEST),
        "responses": _responses({"200": _content("Records moved per entity; `_left` what stayed",
                                                 {"type": "object"})})}}
    paths |= openapi_reports.PATHS
    schemas |= openapi_reports.SCHEMAS
    return {
        "openapi": "3.1.0",
        "info": {"title": "Packwork API", "version": f"{__version__}+{catalog.metadata.version[:12]}",
                 "description": "Generated from the installed packs. Filters: see docs/filters.md."},
        "servers": [{"url": server}] if server else [],
        "security": [{"token": []}],
        "paths": paths,
        "components": {"schemas": schemas, "parameters": PARAMETERS, "responses": RESPONSES,
                       "headers": {"ETag": {"description": "The record's version, quoted",
                                            "schema": {"type": "string"}}},
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "`packwork token create USER`"}}},
    }


COMMON_SCHEMAS = {
    "Problem": {"type": "object", "required": ["title", "status", "detail", "errors"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                   "description": "Messages per field; bulk writes name fields `row.field`."},
        "current": {"type": "object", "description": "On a stale update: the record as it is now."}}},
    "AuditEntry": {"type": "object", "required": ["id", "action", "at", "changes"], "properties": {
        "id": {"type": "integer"}, "action": {"type": "string", "enum": [
            "create", "update", "delete", "restore", "share", "unshare", "transfer", "link", "unlink"]},
        "at": {"type": "string", "format": "date-time"}, "actor": {"type": ["string", "null"]},
        "actor_id": {"type": ["integer", "null"]},
        "changes": {"type": "object", "description": "{field: [old, new]}"}}},
}

SHARE = {"type": "object", "required": ["id", "access"], "properties": {
    "id": {"type": "integer"}, "user_id": {"type": "integer"}, "team_id": {"type": "integer"},
    "access": {"type": "string", "enum": ["read", "edit"]}}}
SHARE_REQUEST = {"type": "object", "additionalProperties": False, "properties": {
    "user": {"type": "integer", "minimum": 1}, "team": {"type": "integer", "minimum": 1},
    "access": {"type": "string", "enum": ["read", "edit"], "default": "read"}},
    "oneOf": [{"required": ["user"]}, {"required": ["team"]}]}
TRANSFER_REQUEST = {"type": "object", "required": ["from", "to"], "additionalProperties": False, "properties": {
    "from": {"type": "integer", "minimum": 1}, "to": {"type": "integer", "minimum": 1},
    "entities": {"type": "array", "items": {"type": "string"}}}}

PARAMETERS = {
    "id": {"name": "id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
    "filter": {"name": "filter", "in": "query", "schema": {"type": "string", "maxLength": 4000},
               "description": "e.g. `stage in ('won','lost') and amount >= 10000 and owner_id = $me`"},
    "sort": {"name": "sort", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated fields, `-` for descending, e.g. `-amount,name`."},
    "fields": {"name": "fields", "in": "query", "schema": {"type": "string"},
               "description": "Comma-separated fields to return (id and version always come)."},
    "expand": {"name": "expand", "in": "query", "schema": {"type": "string"},
               "description": "Comma-separated reference fields to return as records."},
    "limit": {"name": "limit", "in": "query",
              "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
    "after": {"name": "after", "in": "query", "schema": {"type": "string"},
              "description": "The `next` cursor of the previous page."},
    "count": {"name": "count", "in": "query", "schema": {"type": "string", "enum": ["true", "false"]},
              "description": "`true` adds the total number of matching records (costs a count)."},
    "if_match": {"name": "If-Match", "in": "header", "schema": {"type": "string"},
                 "description": "The ETag (version) the change is based on."},
}

RESPONSES = {"Problem": {"description": "Refused; `errors` names the fields",
                         "content": {"application/problem+json": {
                             "schema": {"$ref": "#/components/schemas/Problem"}}}}}
