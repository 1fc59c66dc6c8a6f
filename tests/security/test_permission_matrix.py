"""The generated permission matrix: every role of a pack x every entity x every action (and
every stage move a grant restricts) x a record of the actor's own, of their team (a sub-team
member's) and of someone else, through the HTTP API, on SQLite and PostgreSQL. What each case
expects is read straight from the pack's grants (not from the code under test), and every
refused write is checked to have written nothing.

Runs for standard_crm and for the custom entities of the `mini` test pack alike."""

from __future__ import annotations

import pytest

from security.conftest import DATABASES, PACKS_UNDER_TEST
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources

ACTIONS = ("read", "create", "update", "delete", "export", "import", "transfer")
RELATIONS = ("own", "team", "other")
COVERS = {"none": set(), "own": {"own"}, "team": {"own", "team"}, "all": set(RELATIONS)}
SIMPLE_TYPES = ("text", "long_text", "integer", "boolean")


def _metadata(pack: str):
    sources, problems = read_pack_folders([PACKS_UNDER_TEST[pack]])
    assert not problems
    return resolve_sources(sources)


def pytest_generate_tests(metafunc):
    if "role" not in metafunc.fixturenames:
        return
    cases, ids = [], []
    for db in DATABASES:
        for pack in PACKS_UNDER_TEST:
            metadata = _metadata(pack)
            for role in metadata.roles:
                for entity in metadata.entities:
                    cases.append(((db, pack), role, entity))
                    ids.append(f"{db}-{pack}-{role}-{entity}")
    metafunc.parametrize(("world", "role", "entity"), cases, ids=ids, indirect=["world"], scope="module")


def _grant(metadata, role: str, entity: str):
    return next((g for g in metadata.grants if g.role == role and g.entity == entity), None)


def _scope(grant, action: str) -> str:
    return dict(grant.scopes).get(action, "none") if grant else "none"


def _editable_field(entity, grant) -> str:
    restricted = dict(grant.field_access) if grant else {}
    return next(f.name for f in entity.fields if f.value_type in SIMPLE_TYPES
                and not f.read_only and not f.unique and f.name not in restricted and f.has_column)


class Case:
    """One role and entity, with the users who own the records of each relation."""

    def __init__(self, world, role: str, entity: str):
        self.world, self.role, self.name = world, role, entity
        self.metadata = world.metadata
        self.entity = self.metadata.entities[entity]
        self.grant = _grant(self.metadata, role, entity)
        self.client = world.clients[role]
        self.owners = {"own": world.users[role], "team": world.users["mate"], "other": world.users["stranger"]}
        self.problems: list[str] = []

    def scope(self, action: str) -> str:
        return _scope(self.grant, action)

    def covers(self, action: str, relation: str) -> bool:
        return relation in COVERS[self.scope(action)]

    def record(self, relation: str) -> dict:
        return self.world.create(self.name, self.owners[relation])

    def expect(self, what: str, got: object, wanted: object) -> None:
        if got != wanted:
            self.problems.append(f"{self.role} {what} {self.name}: got {got}, the pack says {wanted}")

    def no_leak(self, what: str, response, record: dict) -> None:
        title = str(record[self.entity.title_field]) if self.entity.title_field in record else None
        if response.status_code in (403, 404) and title and title in response.get_data(as_text=True):
            self.problems.append(f"{self.role} {what} {self.name}: refusal body shows the record")


def _expected_write(case: Case, action: str, relation: str) -> int:
    """Status of a write to an existing record: entity-level grant first (403), then whether the
    record can be read at all (404: no existence leak), then whether this record is in reach."""
    if case.scope("update" if action == "transfer" else action) == "none":
        return 403
    if not case.covers("read", relation):
        return 404
    if action == "transfer":
        if not case.covers("update", relation) or not case.covers("transfer", relation):
            return 403
        return 200
    return {"update": 200, "delete": 204}[action] if case.covers(action, relation) else 403


def check_read(case: Case, relation: str) -> None:
    record = case.record(relation)
    one = case.client.call("GET", f"{case.name}/{record['id']}")
    listed = case.client.call("GET", case.name, query_string={"filter": f"id = {record['id']}", "count": "true"})
    if case.scope("read") == "none":
        case.expect(f"reads one {relation}", one.status_code, 403)
        case.expect(f"lists {relation}", listed.status_code, 403)
    else:
        visible = case.covers("read", relation)
        case.expect(f"reads one {relation}", one.status_code, 200 if visible else 404)
        case.expect(f"lists {relation}", [r["id"] for r in listed.json["data"]], [record["id"]] if visible else [])
        case.expect(f"counts {relation}", listed.json["count"], 1 if visible else 0)
    case.no_leak(f"reads one {relation}", one, record)


def check_create(case: Case, relation: str, action: str = "create") -> None:
    payload = case.world.sample(case.entity, case.owners[relation])
    before = case.world.count(case.name)  # the sample may have created referenced records
    if action == "create":
        response = case.client.call("POST", case.name, json=payload)
        allowed = case.covers("create", relation)
        wanted = 201 if allowed else 403
    else:
        response = case.client.call("POST", f"{case.name}/import", json=[payload])
        allowed = case.covers("import", relation) and case.covers("create", relation)
        wanted = 201 if allowed else 403
    case.expect(f"{action}s for {relation}", response.status_code, wanted)
    case.expect(f"{action}s for {relation} (rows written)", case.world.count(case.name) - before, 1 if allowed else 0)


def check_write(case: Case, relation: str, action: str) -> None:
    record = case.record(relation)
    path, headers = f"{case.name}/{record['id']}", {"If-Match": '"1"'}
    if action == "update":
        field = _editable_field(case.entity, case.grant)
        value = case.world.value(case.entity.field(field), case.owners[relation])
        response = case.client.call("PATCH", path, json={field: value}, headers=headers)
    elif action == "transfer":
        response = case.client.call("PATCH", path, json={"owner_id": case.world.users["heir"]}, headers=headers)
    else:
        response = case.client.call("DELETE", path, headers=headers)
    wanted = _expected_write(case, action, relation)
    case.expect(f"{action}s {relation}", response.status_code, wanted)
    case.no_leak(f"{action}s {relation}", response, record)
    row = case.world.row(case.name, record["id"])
    case.expect(f"{action}s {relation} (version after)", row["version"], 1 if wanted >= 400 else 2)
    if action == "transfer":
        owner = case.world.users["heir"] if wanted == 200 else case.owners[relation]
        case.expect(f"transfers {relation} (owner after)", row["owner_id"], owner)


def check_stage_move(case: Case, relation: str, stage: str) -> None:
    """Moving into a stage the grant restricts needs the update grant and that stage's grant.
    The record has every field filled, so the stage's gates and required fields pass."""
    record = case.world.create(case.name, case.owners[relation], every_field=True)
    field = case.entity.pipeline.field
    response = case.client.call("PATCH", f"{case.name}/{record['id']}", json={field: stage},
                                headers={"If-Match": '"1"'})
    wanted = _expected_write(case, "update", relation)
    if wanted == 200 and relation not in COVERS[dict(case.grant.stage_scopes)[stage]]:
        wanted = 403
    case.expect(f"moves {relation} to {stage}", response.status_code, wanted)
    case.expect(f"moves {relation} to {stage} (stage after)", case.world.row(case.name, record["id"])[field],
                stage if wanted == 200 else record[field])


def check_export(case: Case, relation: str) -> None:
    record = case.record(relation)
    response = case.client.call("GET", f"{case.name}/export", query_string={"filter": f"id = {record['id']}"})
    if case.scope("read") == "none" or case.scope("export") == "none":
        case.expect(f"exports {relation}", response.status_code, 403)
        return
    case.expect(f"exports {relation}", response.status_code, 200)
    text = response.get_data(as_text=True)
    ids = [int(line.split(",")[0]) for line in text.splitlines()[1:]]
    visible = case.covers("read", relation) and case.covers("export", relation)
    case.expect(f"exports {relation}", ids, [record["id"]] if visible else [])


def test_the_api_grants_exactly_what_the_pack_says(world, role, entity):
    case = Case(world, role, entity)
    for relation in RELATIONS:
        check_read(case, relation)
        check_create(case, relation)
        check_create(case, relation, "import")
        check_write(case, relation, "update")
        check_write(case, relation, "delete")
        check_write(case, relation, "transfer")
        check_export(case, relation)
        for stage, _ in case.grant.stage_scopes if case.grant else ():
            check_stage_move(case, relation, stage)
    assert not case.problems, "\n".join(case.problems)


@pytest.mark.parametrize("pack", list(PACKS_UNDER_TEST))
def test_the_matrix_covers_every_scope_and_action(pack):
    """The packs under test exercise each scope for each action somewhere, so the matrix test
    above cannot pass by testing only one kind of answer."""
    metadata = _metadata(pack)
    seen = {(action, _scope(g, action)) for g in metadata.grants for action in ACTIONS}
    missing = {(a, s) for a in ("read", "create", "update", "export") for s in ("own", "team", "all")} - seen
    assert not missing, f"{pack} never grants {sorted(missing)}"
    assert any(g.stage_scopes for g in metadata.grants), f"{pack} restricts no stage move"
