"""The OpenAPI document's links (create → read, change, delete, history; delete → restore): each
names an operation of the document and parameters that operation has, and following them by
hand, as a generated client would, works on SQLite and PostgreSQL: the id from the body, the
ETag as the next change's If-Match."""

from __future__ import annotations

import pytest

from api.conftest import install, signed_in
from conftest import TEST_PACKS
from packwork.web.app import create_app
from packwork.web.services import services


@pytest.fixture
def client(db_url):
    engine = install(db_url, TEST_PACKS / "mini")
    headers = {"Authorization": f"Bearer {signed_in(engine, 'ann', ['keeper'])}"}
    app = create_app(db_url)
    yield app.test_client(), headers
    services(app).engine.dispose()
    engine.dispose()


def _operations(document: dict) -> dict[str, tuple[str, str, set[str]]]:
    """operationId -> (method, path, names of its parameters as links name them)."""
    found = {}
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            names = set()
            for parameter in shared + operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
                names.add(("header." if parameter["in"] == "header" else "") + parameter["name"])
            found[operation["operationId"]] = (method, path, names)
    return found


def test_every_link_names_a_real_operation_and_its_parameters(client):
    api, headers = client
    document = api.get("/api/v1/openapi.json", headers=headers).json
    operations = _operations(document)
    links = [(op, code, name, link) for op, (method, path, _) in operations.items()
             for code, response in document["paths"][path][method]["responses"].items()
             for name, link in response.get("links", {}).items()]
    assert {name for *_, name, _ in links} >= {"GetRecord", "UpdateRecord", "DeleteRecord", "RestoreRecord"}
    for op, code, name, link in links:
        assert link["operationId"] in operations, (op, name)
        assert set(link["parameters"]) <= operations[link["operationId"]][2], (op, code, name)


def test_following_the_links_by_hand_works(client):
    api, headers = client
    made = api.post("/api/v1/widget", json={"name": "w1"}, headers=headers)
    assert made.status_code == 201
    record_id, etag = made.json["id"], made.headers["ETag"]  # $response.body#/id, $response.header.ETag
    assert api.get(f"/api/v1/widget/{record_id}", headers=headers).status_code == 200
    changed = api.patch(f"/api/v1/widget/{record_id}", json={"notes": "n"}, headers=headers | {"If-Match": etag})
    assert changed.status_code == 200, changed.text
    stale = api.delete(f"/api/v1/widget/{record_id}", headers=headers | {"If-Match": etag})
    assert stale.status_code == 409  # the ETag of the answer before: refused
    deleted = api.delete(f"/api/v1/widget/{record_id}", headers=headers | {"If-Match": changed.headers["ETag"]})
    assert deleted.status_code == 204
    assert api.post(f"/api/v1/widget/{record_id}/restore", headers=headers).status_code == 200  # $request.path.id
