"""Stateful API testing: schemathesis follows the OpenAPI links of /api/v1/openapi.json (create
→ read, change, delete, history; delete → restore), so sequences of calls work on records that
exist, with the ETag of each answer as the next change's If-Match. Every response of every step
is checked as the stateless fuzzing checks them (no 5xx; status, content type, headers and body
as documented), on SQLite and PostgreSQL, for the record operations of the entities the
stateless fuzzing covers.

Two settings make the sequences reach records. schemathesis infers from a create body's
`owner_id` a foreign key to an "Owner" resource no operation produces, and then never starts a
sequence with a create: owners are users, not API resources, so that inferred input is dropped.
And every sequence starts from an empty database: Hypothesis needs the same choices to meet the
same answers; examples are only generated, not replayed to shrink them (a failure is reported
as found)."""

from __future__ import annotations

import os
import warnings

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings

from api.test_schemathesis import CHECKS, FUZZED
from packwork.runtime.system import pw_audit
from packwork.web.services import services

EXAMPLES = int(os.environ.get("PACKWORK_FUZZ_STATEFUL", "100"))  # sequences, each of up to 10 calls
# a restore is a POST, which schemathesis starts sequences with as if it made a record: that
# spends the budget on restores of records that do not exist, so restores are left out
RECORD_PATHS = rf"^/api/v1/({'|'.join(sorted(FUZZED))})(/\{{id\}}(/history)?)?$"


def _creates_may_start(schema) -> None:
    graph = schema.analysis.dependency_graph
    produced = {output.resource.name for node in graph.operations.values() for output in node.outputs}
    for node in graph.operations.values():
        node.inputs = [slot for slot in node.inputs
                       if slot.resource.name in produced or slot.parameter_location.value != "body"]


@pytest.fixture(scope="module")
def workflow(served_crm):
    app, secret = served_crm
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app).include(path_regex=RECORD_PATHS)
    _creates_may_start(schema)

    class Workflow(schema.as_state_machine()):
        calls: list[tuple[str, str, int]] = []  # every call made: method, path template, status

        def after_call(self, response, case):
            self.calls.append((case.method, case.operation.path, response.status_code))

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {secret}"}}

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            case.validate_response(response, checks=CHECKS)

        def teardown(self):
            _empty(app)

    return Workflow


def _empty(app) -> None:
    """Every record table emptied after each sequence: each starts from the same database, so
    that the same choices meet the same answers (Hypothesis refuses a strategy that does not)."""
    state = services(app)
    with state.engine.begin() as conn, warnings.catch_warnings():
        # lead and opportunity refer to each other, each reference set to null when the other goes
        warnings.filterwarnings("ignore", "Cannot correctly sort tables", sa.exc.SAWarning)
        tables = state.catalogs.current(conn).tables
        for table in reversed(next(iter(tables.values())).metadata.sorted_tables):  # referring tables first
            if table.name in tables:
                conn.execute(table.delete())
        conn.execute(pw_audit.delete())


def test_linked_operations_keep_to_the_document(workflow):
    workflow.run(settings=settings(max_examples=EXAMPLES, stateful_step_count=10, deadline=None, database=None,
                                   phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    linked = [(method, status) for method, path, status in workflow.calls if "{id}" in path and status < 300]
    # the links led to records that exist (a random id finds none): read, changed, deleted
    assert linked, sorted(set(workflow.calls))
