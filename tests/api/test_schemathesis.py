"""Property-based API testing: schemathesis generates requests from /api/v1/openapi.json, valid
and invalid, for every operation of every entity, and checks that no response is a 5xx and
every response (status, content type, headers, body) matches the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

from conftest import PACKS, fresh_database
from api.conftest import install, signed_in
from packwork.web.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz"), request) as url:
        engine = install(url, PACKS / "standard_crm")
        secret = signed_in(engine, "fuzzer", ["sales_manager"])
        app = create_app(url, PACKWORK_API_RATE="off")  # every example must reach the operation
        yield app, secret
        engine.dispose()


@pytest.fixture(scope="module")
def api_schema(served):
    app, _ = served
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, served):
    _, secret = served
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)
