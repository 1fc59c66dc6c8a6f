"""Property-based API testing: schemathesis generates requests from /api/v1/openapi.json, valid
and invalid, for every operation of the standard CRM's entities in FUZZED and every operation
that is not an entity's (reports, dashboards, users, metadata), and checks that no response is
a 5xx and every response (status, content type, headers, body) matches the document.

Every entity's operations are made by the same code from its metadata, so the entities fuzzed
are chosen to hold, between them, every field type and feature (pipelines, record types,
computed fields, actions, relations); fuzzing all 22 entities would take most of CI's time.

The long run fuzzes every entity with 200 examples an operation (about an hour on two cores):

    PACKWORK_FUZZ_ENTITIES=all PACKWORK_FUZZ_EXAMPLES=200 python -m pytest tests/api/test_schemathesis.py"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

from conftest import PACKS
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(served_crm):
    app, _ = served_crm
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


FUZZED = {"account", "lead", "opportunity", "ticket", "expense_claim", "sales_product", "sales_quote"}
EXAMPLES = int(os.environ.get("PACKWORK_FUZZ_EXAMPLES", "25"))  # per operation
EVERY_ENTITY = os.environ.get("PACKWORK_FUZZ_ENTITIES") == "all"


def _entities() -> set[str]:
    sources, problems = read_pack_folders([PACKS / "standard_crm"])
    assert not problems
    return set(resolve_sources(sources).entities)


def test_the_fuzzed_entities_hold_every_field_type_and_feature():
    sources, _ = read_pack_folders([PACKS / "standard_crm"])
    metadata = resolve_sources(sources)
    fuzzed = [metadata.entities[name] for name in FUZZED]
    every_type = {f.type for e in metadata.entities.values() for f in e.fields}
    assert every_type == {f.type for e in fuzzed for f in e.fields}
    assert any(e.pipeline for e in fuzzed) and any(e.record_types for e in fuzzed)
    assert any(r.kind == "action" and r.entity in FUZZED for r in metadata.rules)
    assert any({r.source, r.target} & FUZZED for r in metadata.relations.values())


schema = schemathesis.pytest.from_fixture("api_schema")
if not EVERY_ENTITY:
    schema = schema.exclude(tag=sorted(_entities() - FUZZED))


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, served_crm):
    _, secret = served_crm
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)
