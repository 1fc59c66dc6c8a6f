"""The OpenAPI paths and schemas of reports and dashboards (the same for every pack: a report's
groups and measures are data, named in the answer itself)."""

from __future__ import annotations

PROBLEM = {"$ref": "#/components/responses/Problem"}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
KEY_VALUE = {"type": ["string", "integer", "boolean", "null"],
             "description": "An option or stage, a user or record id, true/false, or a date bucket "
                              "(2026-03, 2026-Q1, 2026); null for records without a value"}

SCHEMAS = {
    "ReportSummary": {"type": "object", "required": ["name", "label", "entity", "chart"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"}, "entity": {"type": "string"},
        "chart": {"type": "string", "enum": ["bar", "line", "pie", "funnel", "table"]}}},
    "Report": {"type": "object", "required": ["name", "label", "entity", "chart", "keys", "measures", "groups",
                                              "truncated"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"}, "entity": {"type": "string"},
        "chart": {"type": "string"}, "width": {"type": "string", "enum": ["third", "half", "full"]},
        "keys": {"type": "array", "items": {"type": "object", "required": ["field", "label", "bucket"], "properties": {
            "field": {"type": "string"}, "label": {"type": "string"},
            "bucket": {"type": ["string", "null"], "enum": ["month", "quarter", "year", None]}}}},
        "measures": {"type": "array", "items": {"type": "object", "required": ["name", "label", "function", "entity"],
                                                "properties": {
            "name": {"type": "string"}, "label": {"type": "string"}, "entity": {"type": "string"},
            "function": {"type": "string", "enum": ["count", "sum", "avg", "min", "max"]},
            "field": {"type": ["string", "null"]}}}},
        "groups": {"type": "array", "items": {"type": "object", "required": ["keys", "count", "figures"],
                                              "properties": {
            "keys": {"type": "array", "items": {"type": "object", "required": ["value", "label"], "properties": {
                "value": KEY_VALUE, "label": {"type": "string"}}}},
            "count": {"type": "integer", "description": "Records of the report's entity in the group"},
            "figures": {"type": "object", "additionalProperties": {"type": ["number", "null"]},
                        "description": "{measure name: figure}; null where no record has a value"}}}},
        "conversion": {"type": "array", "description": "With `conversion: true`: stage to stage, lost stages "
                                                       "left out (docs/packs.md)",
                       "items": {"type": "object", "required": ["from", "to", "reached_from", "reached_to", "rate"],
                                 "properties": {
                           "from": {"type": "string"}, "to": {"type": "string"},
                           "reached_from": {"type": "integer"}, "reached_to": {"type": "integer"},
                           "rate": {"type": ["number", "null"]}}}},
        "truncated": {"type": "boolean", "description": "More groups than an answer holds (2000)"}}},
    "Dashboard": {"type": "object", "required": ["name", "label", "reports"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"},
        "reports": {"type": "array", "items": {"$ref": "#/components/schemas/Report"}}}},
}


def _ok(description: str, schema: dict) -> dict:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}},
            "401": PROBLEM, "404": PROBLEM}


def _listing(ref: str) -> dict:
    return {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": ref}}}


PATHS = {
    "/api/v1/reports": {"get": {
        "operationId": "list_reports", "tags": ["reports"],
        "summary": "The reports you may run (you read their entity and every field they group by)",
        "responses": _ok("Reports", _listing({"$ref": "#/components/schemas/ReportSummary"}))}},
    "/api/v1/reports/{name}": {"parameters": [NAME], "get": {
        "operationId": "run_report", "tags": ["reports"],
        "summary": "Run a report over the records you may read; measures of fields hidden from you are left out",
        "responses": _ok("The report's groups and figures", {"$ref": "#/components/schemas/Report"})}},
    "/api/v1/dashboards": {"get": {
        "operationId": "list_dashboards", "tags": ["reports"], "summary": "The dashboards you see",
        "responses": _ok("Dashboards", _listing({"type": "object", "required": ["name", "label", "reports"],
                                                  "properties": {"name": {"type": "string"},
                                                                 "label": {"type": "string"},
                                                                 "reports": {"type": "array",
                                                                             "items": {"type": "string"}}}}))}},
    "/api/v1/dashboards/{name}": {"parameters": [NAME], "get": {
        "operationId": "run_dashboard", "tags": ["reports"], "summary": "Run each report of a dashboard",
        "responses": _ok("The dashboard and its reports", {"$ref": "#/components/schemas/Dashboard"})}},
}
