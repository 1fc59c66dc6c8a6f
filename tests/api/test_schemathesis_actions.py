"""Property-based testing of the pack-action operations (on the `actions` test pack, whose
prospects have actions with inputs of several types): schemathesis generates valid and invalid
requests from /api/v1/openapi.json and checks no response is a 5xx and each matches the
document. The whole API is fuzzed on the standard CRM in test_schemathesis.py."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.conftest import install, signed_in
from api.test_schemathesis import CHECKS, EXAMPLES
from conftest import TEST_PACKS, fresh_database
from packwork.web.app import create_app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp("fuzz-actions"), request) as url:
        engine = install(url, TEST_PACKS / "actions")
        secret = signed_in(engine, "fuzzer", ["boss"])
        app = create_app(url, PACKWORK_API_RATE="off")
        client = app.test_client()
        for n in range(3):  # records for the generated ids to find, at least sometimes
            made = client.post("/api/v1/prospect", json={"name": f"P{n}", "company": f"Co {n}"},
                               headers={"Authorization": f"Bearer {secret}"})
            assert made.status_code == 201, made.json
        yield app, secret
        engine.dispose()


@pytest.fixture(scope="module")
def api_schema(served):
    app, _ = served
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="/actions")


@schema.parametrize()
@settings(max_examples=max(40, EXAMPLES), deadline=None, suppress_health_check=list(HealthCheck))
def test_action_operations_conform_to_the_openapi_document(case, served):
    _, secret = served
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)
