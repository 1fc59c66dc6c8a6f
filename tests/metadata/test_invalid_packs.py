"""Each broken pack in tests/data/packs/invalid yields exactly the `file:line: path: message`
lines of its expected.txt, through the path `packwork pack validate` takes, never a traceback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import TEST_PACKS
from packwork.errors import PackError
from packwork.metadata.loader import MAX_FILE_BYTES, read_pack_folders
from packwork.metadata.resolver import resolve_sources
from test_cli import packwork

INVALID = TEST_PACKS / "invalid"
CASES = sorted(p for p in INVALID.iterdir() if p.is_dir())


def problems(*folders: Path) -> list[str]:
    """What `pack validate` would print for these folders, paths relative to the first one."""
    sources, found = read_pack_folders([str(f) for f in folders])
    if not found:
        try:
            resolve_sources(sources)
        except PackError as exc:
            found = list(exc.problems)
    return [p.format().replace(f"{folders[0]}/", "") for p in found]


def expected(case: Path) -> list[str]:
    return (case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_the_corpus_has_at_least_twenty_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_each_broken_pack_reports_its_expected_problem(case: Path):
    assert sorted(problems(case)) == sorted(expected(case))


def test_the_cli_reports_every_case_without_a_traceback():
    with ThreadPoolExecutor(max_workers=4) as pool:  # one process per case (~1 s each), a few at a time
        results = list(pool.map(lambda case: packwork("pack", "validate", str(case)), CASES))  # no Traceback
    for case, result in zip(CASES, results):
        printed = result.stderr.replace(f"{case}/", "").splitlines()
        assert result.returncode == 1, case.name
        assert printed[:-1] == expected(case), case.name


def test_a_file_linking_outside_the_pack_is_refused(tmp_path: Path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("entities: {}\n")
    pack = tmp_path / "linked"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: linked\nversion: 1.0.0\n")
    (pack / "entities.yaml").symlink_to(secret)
    assert problems(pack) == ["entities.yaml:1: $: links outside the pack folder; a pack may only read its "
                              "own files [PACK-E002]"]


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path):
    pack = tmp_path / "large"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: large\nversion: 1.0.0\n")
    (pack / "big.yaml").write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 1))  # generated, never committed
    size = (pack / "big.yaml").stat().st_size
    assert problems(pack) == [f"big.yaml:1: $: file is {size} bytes; the limit is {MAX_FILE_BYTES} [PACK-E003]"]


def test_a_dependency_cycle_is_named(tmp_path: Path):
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pack.yaml").write_text(f"name: {name}\nversion: 1.0.0\ndepends: [{other}]\n")
    found = problems(tmp_path / "alpha", tmp_path / "beta")
    assert len(found) >= 1 and all("PACK-E021" in line and "cycle" in line for line in found), found
