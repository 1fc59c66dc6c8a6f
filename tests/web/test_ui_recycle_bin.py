"""The recycle bin page (/r/ENTITY/deleted), through the test client over SQLite and
PostgreSQL: linked from the list for those with the delete grant and refused (403) to others; it
lists the deleted records the reader may restore, with who deleted them; its Restore button (a
POST with the CSRF token) brings the record back into lists with an audit entry; a restore that
can no longer happen, or is not the reader's to make, is a clear message on the bin, never a
500; deleted records never appear in lists or exports.

The world is the `mini` test pack (see tests/api/test_recycle_bin_api.py for its grants)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import TEST_PACKS, fresh_database
from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.permissions import Actor
from packwork.runtime.sessions import set_password
from packwork.runtime.users import create_team, create_user
from packwork.web.app import create_app
from packwork.web.services import services
from web.test_ui_security import PASSWORD, Visitor

PEOPLE = {"kim": ("keeper", None), "max": ("maker", None), "fay": ("foreman", "north"),
          "gus": ("foreman", "north"), "hal": ("foreman", "south")}
ROW = re.compile(r'<tr data-record="(\d+)">(.*?)</tr>', re.DOTALL)


class Site:
    def __init__(self, app, engine: sa.Engine, ids: dict[str, int]):
        self.app, self.engine, self.ids = app, engine, ids
        self.visitors: dict[str, Visitor] = {}

    def visitor(self, name: str) -> Visitor:
        if name not in self.visitors:
            self.visitors[name] = Visitor(self.app).sign_in(name)
        return self.visitors[name]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def made(self, owner: str, name: str, **values) -> int:
        """A widget owned by `owner`, made by kim through the record service (the form has no
        owner picker; a keeper may give a record to anyone)."""
        with self.engine.begin() as conn:
            ctx = records.Context.start(conn, load_catalog(conn), Actor(self.ids["kim"], frozenset({"keeper"})))
            return records.create_record(ctx, "widget", {"name": name, "owner_id": self.ids[owner]} | values)["id"]

    def deleted(self, record_id: int, who: str = "kim") -> None:
        version = self.scalar("SELECT version FROM widget WHERE id = :i", i=record_id)
        answer = self.visitor(who).post(f"/r/widget/{record_id}/delete", {"version": str(version)})
        assert answer.status_code == 303 and "deleted=1" in answer.headers["Location"]

    def bin_rows(self, who: str, q: str) -> dict[int, str]:
        page = self.visitor(who).client.get("/r/widget/deleted", query_string={"q": q})
        assert page.status_code == 200, page.text
        return {int(record_id): body for record_id, body in ROW.findall(page.text)}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with engine.begin() as conn:
            create_team(conn, "north")
            create_team(conn, "south")
            ids = {}
            for name, (role, team) in PEOPLE.items():
                ids[name] = create_user(conn, name, [role], [role], display_name=name.title(), team=team)
                set_password(conn, ids[name], PASSWORD)
        app = create_app(url)
        yield Site(app, engine, ids)
        services(app).engine.dispose()
        engine.dispose()


def test_the_list_links_to_the_bin_only_for_those_who_may_delete(site):
    for name, linked in (("kim", True), ("fay", True), ("max", False)):
        listing = site.visitor(name).client.get("/r/widget")
        assert listing.status_code == 200
        assert ('href="/r/widget/deleted"' in listing.text) is linked, name
    refused = site.visitor("max").client.get("/r/widget/deleted")
    assert refused.status_code == 403 and "Not allowed" in refused.text and "Traceback" not in refused.text


def test_the_bin_shows_what_the_reader_may_restore_and_who_deleted_it(site):
    mine, teams, other = (site.made(owner, f"Seen {owner}") for owner in ("fay", "gus", "hal"))
    for record_id in (mine, teams, other):
        site.deleted(record_id)
    assert site.bin_rows("fay", "Seen").keys() == {mine, teams}
    kims = site.bin_rows("kim", "Seen")
    assert list(kims) == [other, teams, mine]  # newest deletion first
    assert "Seen hal" in kims[other] and "<td>Kim</td>" in kims[other]  # who deleted it, by display name
    assert 'action="/r/widget/%d/restore"' % other in kims[other] and 'name="csrf_token"' in kims[other]


def test_restoring_brings_the_record_back_with_an_audit_entry(site):
    record_id = site.made("kim", "Comeback widget")
    site.deleted(record_id)
    kim = site.visitor("kim")
    assert "Comeback widget" not in kim.client.get("/r/widget", query_string={"q": "Comeback"}).text
    assert kim.client.get(f"/r/widget/{record_id}").status_code == 404

    restored = kim.post(f"/r/widget/{record_id}/restore")

    assert restored.status_code == 303
    assert restored.headers["Location"].endswith(f"/r/widget/deleted?restored={record_id}")
    notice = kim.client.get(restored.headers["Location"])
    assert 'id="restored"' in notice.text and f'href="/r/widget/{record_id}"' in notice.text
    assert record_id not in site.bin_rows("kim", "Comeback")
    assert "Comeback widget" in kim.client.get("/r/widget", query_string={"q": "Comeback"}).text
    assert kim.client.get(f"/r/widget/{record_id}").status_code == 200
    with site.engine.connect() as conn:
        last = conn.execute(sa.text("SELECT action, actor_id FROM pw_audit WHERE entity = 'widget' AND "
                                    "record_id = :i ORDER BY id DESC"), {"i": record_id}).first()
    assert tuple(last) == ("restore", site.ids["kim"])


@pytest.mark.parametrize("token", ["missing", "wrong"])
def test_a_restore_without_the_csrf_token_is_refused_and_changes_nothing(site, token):
    record_id = site.made("kim", f"Forged restore {token}")
    site.deleted(record_id)
    entries = site.scalar("SELECT count(*) FROM pw_audit WHERE record_id = :i AND entity = 'widget'", i=record_id)
    sent = {} if token == "missing" else {"csrf_token": "x" * 43}

    refused = site.visitor("kim").post(f"/r/widget/{record_id}/restore", sent, token=False)

    assert refused.status_code == 403
    assert site.scalar("SELECT deleted_at FROM widget WHERE id = :i", i=record_id) is not None
    assert site.scalar("SELECT count(*) FROM pw_audit WHERE record_id = :i AND entity = 'widget'",
                       i=record_id) == entries


def test_a_stale_or_forbidden_restore_is_a_clear_message_on_the_bin(site):
    kim, fay = site.visitor("kim"), site.visitor("fay")
    twice = site.made("kim", "Twice widget")
    site.deleted(twice)
    assert kim.post(f"/r/widget/{twice}/restore").status_code == 303
    again = kim.post(f"/r/widget/{twice}/restore")  # an old page's button: restored meanwhile
    assert again.status_code == 409 and 'id="restore-refused"' in again.text
    assert f"widget {twice} is not deleted" in again.text and "The record could not be restored." in again.text

    hals = site.made("hal", "Not fays widget")
    site.deleted(hals)
    out_of_sight = fay.post(f"/r/widget/{hals}/restore")
    assert out_of_sight.status_code == 404 and 'id="restore-refused"' in out_of_sight.text
    assert site.scalar("SELECT deleted_at FROM widget WHERE id = :i", i=hals) is not None

    first = site.made("kim", "Clash one", code="CLASH")
    site.deleted(first)
    site.made("kim", "Clash two", code="CLASH")  # the code is free again, and taken
    clash = kim.post(f"/r/widget/{first}/restore")
    assert clash.status_code == 409 and "&#39;CLASH&#39; is already used" in clash.text
    assert site.scalar("SELECT deleted_at FROM widget WHERE id = :i", i=first) is not None

    maxs = site.visitor("max").post(f"/r/widget/{first}/restore")  # no delete grant at all
    assert maxs.status_code == 403 and "Traceback" not in maxs.text


def test_deleted_records_never_appear_in_the_list_or_its_export(site):
    gone = site.made("kim", "Exported gone")
    site.made("kim", "Exported kept")
    site.deleted(gone)
    kim = site.visitor("kim")
    listing = kim.client.get("/r/widget", query_string={"q": "Exported"}).text
    assert "Exported kept" in listing and "Exported gone" not in listing
    exported = kim.client.get("/r/widget/export.csv", query_string={"q": "Exported"})
    assert exported.status_code == 200 and "Exported kept" in exported.text and "Exported gone" not in exported.text
    assert site.bin_rows("kim", "Exported").keys() == {gone}
