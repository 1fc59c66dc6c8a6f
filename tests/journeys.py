"""What the journey tests over the HTTP API share: a person with a token, and how a refusal
is checked (tests/packs_standard, tests/packs_industry)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Person:
    """One user's signed-in API client."""

    client: object
    headers: dict
    id: int

    def call(self, method: str, path: str, body: dict | None = None, version: int | None = None,
             query: dict | None = None):
        headers = self.headers | ({"If-Match": f'"{version}"'} if version is not None else {})
        return self.client.open(f"/api/v1/{path}", method=method, json=body, headers=headers, query_string=query)

    def make(self, entity: str, **values) -> dict:
        made = self.call("POST", entity, values)
        assert made.status_code == 201, made.json
        return made.json

    def read(self, entity: str, record_id: int) -> dict:
        got = self.call("GET", f"{entity}/{record_id}")
        assert got.status_code == 200, got.json
        return got.json

    def change(self, entity: str, record: dict, **values):
        """PATCH with the version last read; the response (refused or not)."""
        return self.call("PATCH", f"{entity}/{record['id']}", values, version=record["version"])

    def changed(self, entity: str, record: dict, **values) -> dict:
        """PATCH that must be accepted; the record after it."""
        response = self.change(entity, record, **values)
        assert response.status_code == 200, response.json
        return response.json

    def act(self, entity: str, record: dict, action: str, inputs: dict | None = None):
        body = {"version": record["version"]} | ({"inputs": inputs} if inputs is not None else {})
        return self.call("POST", f"{entity}/{record['id']}/actions/{action}", body)

    def report(self, name: str) -> dict:
        """A report's figures by its groups' key values."""
        got = self.call("GET", f"reports/{name}")
        assert got.status_code == 200, got.json
        return {tuple(k["value"] for k in g["keys"]): g["figures"] for g in got.json["groups"]}


def refused(response, status: int, field: str, words: str | None = None) -> dict:
    """The response is a problem+json `status` naming `field` (with `words` in a message)."""
    assert response.status_code == status, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    assert field in response.json.get("errors", {}), response.json
    if words is not None:
        assert any(words in message for message in response.json["errors"][field]), response.json
    return response.json["errors"]
