"""The demo data generator (runtime/demo_data.py) over the standard CRM's demo/data.yaml and over a
test pack, on SQLite and PostgreSQL: every record it asks for is created through the record
service (none refused), every reference points at a live record, the same seed gives the same
data, it runs once per database, and the generator itself names no entity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.conftest import install
from conftest import PACKS, ROOT, TEST_PACKS, fresh_database
from packwork.runtime import demo_data, users
from packwork.runtime.catalog import load_catalog

CRM = PACKS / "standard_crm"
SCALE = 0.2  # a fifth of the demo's counts keeps the test quick; the demo itself runs at 1


def _world(url: str, pack: Path, spec: dict, scale: float = SCALE) -> tuple[sa.Engine, demo_data.Report]:
    engine = install(url, pack)
    with engine.begin() as conn:
        users.ensure_demo_users(conn, load_catalog(conn).metadata.roles)
    return engine, demo_data.generate(engine, spec, scale=scale)


def _fingerprint(engine: sa.Engine, spec: dict) -> dict:
    """The values the spec fills, per entity, by id (times set by rules from the clock left out)."""
    out = {}
    with engine.connect() as conn:
        for name, entity_spec in spec["entities"].items():
            columns = ["id", *entity_spec.get("fields", {})]
            rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM {name} ORDER BY id")).all()
            out[name] = [tuple(str(v) for v in row) for row in rows]
    return out


def _expected(spec: dict, scale: float) -> dict:
    return {name: max(1, round(s["count"] * scale)) for name, s in spec["entities"].items()}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crm(request, tmp_path_factory):
    spec = demo_data.load_spec(demo_data.spec_path(CRM))
    with fresh_database(request.param, tmp_path_factory.mktemp(request.param), request) as url:
        engine, report = _world(url, CRM, spec)
        yield engine, report, spec, request
        engine.dispose()


def test_every_record_asked_for_is_created_and_none_refused(crm):
    engine, report, spec, _ = crm
    assert report.refused == [] and report.refusals == 0
    assert report.created == _expected(spec, SCALE)
    with engine.connect() as conn:
        for name, count in report.created.items():
            stored = conn.execute(sa.text(f"SELECT count(*) FROM {name} WHERE deleted_at IS NULL")).scalar()
            assert stored >= count, name  # rules (a lead's conversion) may add records of their own
    assert report.updated["sales_contract"] > 0 and report.linked["account_partner"] > 0


def test_every_reference_points_at_a_live_record(crm):
    engine, _, _, _ = crm
    with engine.connect() as conn:
        metadata = load_catalog(conn).metadata
        for entity in metadata.entities.values():
            for f in entity.fields:
                if f.type != "reference":
                    continue
                dangling = conn.execute(sa.text(
                    f"SELECT count(*) FROM {entity.name} r WHERE r.{f.name} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {f.target} t WHERE t.id = r.{f.name} AND t.deleted_at IS NULL)")).scalar()
                assert dangling == 0, f"{entity.name}.{f.name}"


def test_a_step_may_run_an_action(crm):
    """The spec converts a share of the working leads with the pack's `convert` action."""
    engine, report, spec, _ = crm
    assert report.updated["lead"] > 0
    with engine.connect() as conn:
        converted = conn.execute(sa.text(
            "SELECT count(*) FROM lead l JOIN opportunity o ON o.id = l.converted_opportunity"
            " JOIN contact c ON c.id = l.converted_contact JOIN account a ON a.id = l.converted_account"
            " WHERE l.conversion_status = 'converted' AND o.source_lead = l.id AND c.account = a.id")).scalar()
    assert converted == report.updated["lead"]


def test_stages_and_owners_are_spread(crm):
    engine, _, _, _ = crm
    with engine.connect() as conn:
        stages = set(conn.execute(sa.text("SELECT DISTINCT stage FROM opportunity")).scalars())
        statuses = set(conn.execute(sa.text("SELECT DISTINCT status FROM ticket")).scalars())
        owners = conn.execute(sa.text("SELECT count(DISTINCT owner_id) FROM account")).scalar()
        pool = conn.execute(sa.text("SELECT count(*) FROM account WHERE owner_id IS NULL")).scalar()
    assert stages == {"qualify", "needs_analysis", "proposal", "negotiation", "won", "lost"}
    assert statuses == {"created", "assigned", "handling", "feedback", "archived"}
    assert owners >= 5 and pool > 0


def test_the_same_seed_gives_the_same_data(crm, tmp_path):
    engine, _, spec, request = crm
    kind = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"
    with fresh_database(kind, tmp_path, request) as url:
        again, report = _world(url, CRM, spec)
        assert report.refusals == 0
        assert _fingerprint(again, spec) == _fingerprint(engine, spec)
        again.dispose()


def test_it_runs_once_per_database(crm):
    engine, _, spec, _ = crm
    with engine.connect() as conn:
        assert demo_data.has_data(conn, load_catalog(conn), spec)


MINI_SPEC = {
    "seed": 3,
    "users": {"kim": {"roles": ["keeper"]}},
    "lists": {"shelf": ["A", "B", "C"]},
    "entities": {
        "bin": {"count": 5, "fields": {"owner_id": {"user": {"roles": ["keeper"]}},
                                       "label_text": {"pattern": "Shelf {shelf}-{n:03}"}}},
        "widget": {"count": 30, "fields": {
            "bin": {"ref": "any"}, "owner_id": {"copy": "bin.owner_id"},
            "name": {"pattern": "Widget {n}"}, "count": {"between": [0, 9]},
            "price": {"between": [1, 100]}, "size": {"choose": {"s": 1, "m": 2}},
            "tags": {"some": {"from": ["new", "hot"]}}, "made_on": {"days": [-30, 0]},
            "notes": [{"when": {"size": "s"}, "value": "small"}, {"value": "not small"}]}},
    },
}


def test_the_generator_serves_any_pack(tmp_path, request):
    with fresh_database("sqlite", tmp_path, request) as url:
        engine, report = _world(url, TEST_PACKS / "mini", MINI_SPEC, scale=1)
        assert report.refusals == 0 and report.created == {"bin": 5, "widget": 30}
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT size, notes, bin, owner_id FROM widget")).all()
            bins = dict(conn.execute(sa.text("SELECT id, owner_id FROM bin")).all())
        assert all((size == "s") == (notes == "small") for size, notes, _, _ in rows)
        assert all(bins[bin_id] == owner for _, _, bin_id, owner in rows)
        engine.dispose()


def test_a_spec_that_does_not_fit_the_packs_is_refused_with_every_problem(tmp_path, request):
    spec = {"entities": {"nothing": {"count": 1},
                         "widget": {"count": 1, "fields": {"colr": {"value": "red"}, "bin": {"choose": [1], "ref": "any"}},
                                    "then": [{"action": "polish"}]}}}
    with fresh_database("sqlite", tmp_path, request) as url:
        engine = install(url, TEST_PACKS / "mini")
        with pytest.raises(demo_data.DemoDataError) as refused:
            demo_data.generate(engine, spec)
        engine.dispose()
    message = str(refused.value)
    assert "there is no entity 'nothing'" in message and "no field 'colr'" in message
    assert "give exactly one of" in message
    assert "entities.widget.then.0.action: widget has no action 'polish'" in message


def test_the_generator_names_no_entity():
    spec = demo_data.load_spec(demo_data.spec_path(CRM))
    names = set(spec["entities"]) | set(spec.get("links", {}))
    source = (ROOT / "platform" / "packwork" / "runtime" / "demo_data.py").read_text(encoding="utf-8")
    found = re.findall(r"\b(" + "|".join(sorted(names)) + r")\b", source, re.IGNORECASE)
    assert found == []
