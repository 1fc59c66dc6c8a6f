"""`packwork pack test`: the cases a pack declares for its rules pass or fail with file:line."""

from __future__ import annotations

from conftest import PACKS, TEST_PACKS
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.rules import engine
from packwork.rules.testing import NOW, run_case
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


def test_run_case_says_what_a_rule_did():
    """The run behind `pack test` (and the studio's trial): errors, changes, records it asked
    `create()` for (none made), or how it broke."""
    sources, problems = read_pack_folders([str(TEST_PACKS / "mini")])
    assert not problems
    metadata = resolve_sources(sources)
    widget = metadata.entities["widget"]
    rules = engine.compile_entity(metadata, widget)
    compiled = {c.rule.name: c for c in (*rules.validations, *rules.triggers)}
    env = engine.Env({"id": 1, "roles": []}, NOW)

    kit = run_case(rules, compiled["kits_get_a_bin"], widget, {"record": {"code": "KIT", "name": "w"}}, env)
    assert kit.broke is None and kit.errors == {} and kit.changes == {"bin": 1}
    assert kit.created == ({"entity": "bin", "values": {"label_text": "Kit for w"}},)
    refused = run_case(rules, compiled["count_not_negative"], widget, {"record": {"count": -2}}, env)
    assert refused.errors == {"count": ["must not be negative"]} and refused.changes == {}
    broke = run_case(rules, compiled["count_not_negative"], widget, {"record": {"count": "x"}}, env)
    assert broke.broke is not None and "TypeError" in str(broke.broke) and broke.changes == {}
