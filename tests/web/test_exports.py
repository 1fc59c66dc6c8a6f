"""Exports of a list view (UI, CSV and XLSX) and of an entity (API, CSV), on SQLite and
PostgreSQL: streamed (the body is sent as the records are read, across several pages), with the
view's filter and columns, masked as the person may see the records, cells a spreadsheet would
run as formulas quoted, and refusals answered before any byte of a file."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from api.conftest import install, signed_in
from conftest import TEST_PACKS, fresh_database
from packwork.runtime.catalog import load_catalog
from packwork.runtime.sessions import set_password
from packwork.runtime.tokens import create_token
from packwork.runtime.users import create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

ROWS = 1_203  # three pages of the export's 500, and a short fourth


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            users = {name: create_user(conn, name, [role], [role]) for name, role in (("kim", "keeper"),
                                                                                        ("max", "maker"))}
            for user_id in users.values():
                set_password(conn, user_id, PASSWORD)
            now = datetime(2026, 1, 1, tzinfo=timezone.utc)
            widgets = load_catalog(conn).tables["widget"]  # its column types store the times as the app does
            conn.execute(widgets.insert(),
                         [{"name": "=HYPERLINK(\"http://evil\")" if n == 7 else f"w{n:04}", "code": f"C{n}",
                           "notes": f"secret {n}", "count": n % 3, "active": True, "owner_id": users["max" if n % 2 else "kim"],
                           "version": 1, "created_at": now, "updated_at": now}
                          for n in range(ROWS)])
        app = create_app(url, PACKWORK_API_RATE="off")
        yield app, engine, {name: Visitor(app).sign_in(name) for name in users}
        services(app).engine.dispose()
        engine.dispose()


def _streamed(app, client, path: str, **kwargs) -> tuple[int, str, bytes]:
    """(status, mimetype, body) of a GET whose body is read chunk by chunk, checking that an
    export of more than one page of widgets began its response before reading the last."""
    selects: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:
        if "FROM widget" in statement:
            selects.append(statement)

    engine = services(app).engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        response = client.get(path, buffered=False, **kwargs)
        chunks = iter(response.response)
        first = next(chunks, b"")
        read_when_it_began = len(selects)
        body = first + b"".join(chunks)
        response.close()
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    if len(selects) > 1:
        assert read_when_it_began < len(selects), "the body must be sent while the pages are still being read"
    return response.status_code, response.mimetype, body


def _csv(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_a_list_view_exports_as_csv_streamed_with_its_filter_and_columns(site):
    app, _, people = site
    status, mimetype, body = _streamed(app, people["kim"].client, "/r/widget/export.csv?filter=count != 2")
    assert status == 200 and mimetype == "text/csv"
    rows = _csv(body)
    assert len(rows) == len([n for n in range(ROWS) if n % 3 != 2]) > 500, "more than a page"
    assert list(rows[0]) == ["name", "code", "price", "phase"], "the view's columns (mini's `all` view)"
    assert {r["code"] for r in rows} == {f"C{n}" for n in range(ROWS) if n % 3 != 2}


def test_xlsx_holds_the_same_records_and_quotes_formulas(site):
    app, _, people = site
    status, _, body = _streamed(app, people["kim"].client, "/r/widget/export.xlsx")
    assert status == 200
    sheet = load_workbook(io.BytesIO(body), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("name", "code", "price", "phase") and len(rows) == ROWS + 1
    assert ("'=HYPERLINK(\"http://evil\")", "C7", None, None) in rows, "a formula is exported as text"


def test_the_api_export_is_streamed_and_masked_for_the_role(site):
    app, engine, _ = site
    client = app.test_client()
    with engine.connect() as conn:
        max_id = conn.exec_driver_sql("SELECT id FROM pw_user WHERE username = 'max'").scalar()
    # a keeper exports every widget; a maker only their own (odd ones), without `notes`, hidden from makers
    for who, shown, numbers in (({"username": "api_keeper", "roles": ["keeper"]}, True, range(ROWS)),
                                ({"token_of": max_id}, False, range(1, ROWS, 2))):
        secret = signed_in(engine, who["username"], who["roles"]) if "username" in who else \
            _token_of(engine, who["token_of"])
        headers = {"Authorization": f"Bearer {secret}"}
        status, mimetype, body = _streamed(app, client, "/api/v1/widget/export", headers=headers)
        assert status == 200 and mimetype == "text/csv"
        rows = _csv(body)
        assert {r["code"] for r in rows} == {f"C{n}" for n in numbers} and len(rows) == len(numbers)
        assert ("notes" in rows[0]) is shown, rows[0]
        if shown:
            assert {r["notes"] for r in rows} == {f"secret {n}" for n in range(ROWS)}
        else:
            asked = client.get("/api/v1/widget/export?fields=name,notes", headers=headers)
            assert asked.status_code == 400 and "notes" in asked.json["errors"]["fields"][0]


def _token_of(engine, user_id: int) -> str:
    with engine.begin() as conn:
        return create_token(conn, user_id, "tests")[1]


def test_a_refused_export_is_a_problem_not_a_file(site):
    app, engine, people = site
    client = app.test_client()
    no_role = {"Authorization": f"Bearer {signed_in(engine, 'no_role', [])}"}
    refused = client.get("/api/v1/widget/export", headers=no_role)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    keeper = {"Authorization": f"Bearer {signed_in(engine, 'api_keeper2', ['keeper'])}"}
    for path in ("/api/v1/widget/export?filter=count >>> 1", "/api/v1/widget/export?filter=nothing = 1"):
        bad = client.get(path, headers=keeper)
        assert bad.status_code == 400 and bad.mimetype == "application/problem+json", bad.data
    page = people["kim"].client.get("/r/widget/export.csv?filter=nothing = 1")
    assert page.status_code == 400 and "text/html" in page.content_type
