"""`packwork setting list | set | unset`, as an administrator runs them, on SQLite and
PostgreSQL: values are checked against the setting's type, stored in pw_setting, and the pack
default holds again once unset."""

from __future__ import annotations

import sqlalchemy as sa

from conftest import TEST_PACKS
from test_cli import packwork


def test_settings_are_listed_set_checked_and_unset(db_url):
    assert packwork("pack", "install", str(TEST_PACKS / "actions"), "--db", db_url, "--yes").returncode == 0
    listed = packwork("setting", "list", "--db", db_url)
    assert listed.returncode == 0
    assert "pool_claim_limit = 2  (integer, default)  Prospects one person may hold from the pool" in listed.stdout
    assert packwork("setting", "set", "pool_claim_limit", "25", "--db", db_url).stdout == "pool_claim_limit = 25\n"
    assert packwork("setting", "set", "max_deal_amount", "99.50", "--db", db_url).returncode == 0
    listed = packwork("setting", "list", "--db", db_url).stdout
    assert "pool_claim_limit = 25  (integer, set; default 2)" in listed and "max_deal_amount = 99.50" in listed
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT name, value FROM pw_setting")).all())
    engine.dispose()
    assert set(stored) == {"pool_claim_limit", "max_deal_amount"}
    wrong = packwork("setting", "set", "pool_claim_limit", "lots", "--db", db_url)
    assert wrong.returncode == 1 and "expected a whole number" in wrong.stderr
    unknown = packwork("setting", "set", "pool_size", "3", "--db", db_url)
    assert unknown.returncode == 1 and "there is no setting 'pool_size'" in unknown.stderr
    unset = packwork("setting", "unset", "pool_claim_limit", "--db", db_url)
    assert unset.stdout == "pool_claim_limit = 2 (the default)\n"
    assert "pool_claim_limit = 2  (integer, default)" in packwork("setting", "list", "--db", db_url).stdout
