"""`packwork pack test`: the cases a pack declares for its rules pass or fail with file:line."""

from __future__ import annotations

from conftest import PACKS, TEST_PACKS
from test_cli import packwork


def test_the_packs_own_rule_tests_pass():
    for pack in (PACKS / "standard_crm", TEST_PACKS / "mini", TEST_PACKS / "actions"):
        ran = packwork("pack", "test", str(pack))
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert " 0 failed." in ran.stdout and "FAILED" not in ran.stdout


def test_a_wrong_expectation_fails_naming_the_case(pack_copy):
    pack = pack_copy("mini")
    text = (pack / "entities.yaml").read_text()
    (pack / "entities.yaml").write_text(text.replace("        values: {location: unsorted}",
                                                     "        values: {location: attic}"))
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "values: {location: unsorted}" in t) - 1
    ran = packwork("pack", "test", str(pack))
    assert ran.returncode == 1
    failed = [row for row in ran.stdout.splitlines() if "FAILED" in row]
    assert len(failed) == 1 and failed[0].startswith(f"{pack / 'entities.yaml'}:{line}: unsorted_bins: case 1:")
    assert "expected values {'location': 'attic'}, got {'location': 'unsorted'}" in failed[0]
    assert ran.stdout.splitlines()[-1] == "4 passed, 1 failed."


def test_a_case_for_a_rule_that_breaks_fails(pack_copy):
    pack = pack_copy("mini")
    text = (pack / "entities.yaml").read_text()
    (pack / "entities.yaml").write_text(text.replace("      - record: {count: 0}\n", "      - record: {count: '0'}\n"))
    ran = packwork("pack", "test", str(pack))
    assert ran.returncode == 1 and "the rule broke:" in ran.stdout and "TypeError" in ran.stdout
