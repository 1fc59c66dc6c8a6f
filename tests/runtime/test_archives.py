"""Pack archives: built deterministically with a checksum beside and a manifest inside; installed
from on SQLite and PostgreSQL; refused, with nothing read or changed, when tampered with, cut
short, or holding paths that leave the archive, links or too much data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from conftest import TEST_PACKS
from packwork.errors import PackError
from packwork.runtime import packstore
from packwork.runtime.archives import MAX_UNPACKED_BYTES, ArchiveError, build_archive, read_archive
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_building_twice_gives_the_same_bytes(tmp_path, pack_copy):
    plus = pack_copy("depot_plus")
    pack_copy("depot")
    (plus / "demo").mkdir()
    (plus / "demo" / "data.yaml").write_text("counts: {rack: 3}\n", encoding="utf-8")
    (plus / "notes.txt").write_text("not a pack file\n", encoding="utf-8")
    (plus / ".hidden.yaml").write_text("entities: {}\n", encoding="utf-8")
    first = build_archive(plus, tmp_path / "one")
    for file in plus.rglob("*"):
        os.utime(file, (1_800_000_000, 1_800_000_000))  # other times, same content
    second = build_archive(plus, tmp_path / "two")
    assert first.path.name == "depot_plus-1.0.0.tar.gz"
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256 == sha256(first.path)
    assert first.checksum_path.read_text() == f"{first.sha256}  depot_plus-1.0.0.tar.gz\n"

    with tarfile.open(first.path) as tar:
        names = tar.getnames()
        contents = json.load(tar.extractfile("depot_plus-1.0.0/packwork-archive.json"))
        assert {m.mtime for m in tar} == {946684800} and {(m.uid, m.uname) for m in tar} == {(0, "")}
    assert names == ["depot_plus-1.0.0/packwork-archive.json", "depot_plus-1.0.0/demo/data.yaml",
                     "depot_plus-1.0.0/pack.yaml", "depot_plus-1.0.0/racks.yaml"]
    assert contents["name"] == "depot_plus" and contents["version"] == "1.0.0"
    assert contents["files"]["pack.yaml"] == hashlib.sha256((plus / "pack.yaml").read_bytes()).hexdigest()
    assert [f.path for f in read_archive(first.path).files] == ["pack.yaml", "racks.yaml"]  # demo/ is not metadata


def test_a_broken_pack_is_not_built(tmp_path, pack_copy):
    stock = pack_copy("stock")
    (stock / "pack.yaml").write_text("name: stock\nversion: 1.0.0\nentities: {item: {fields: {n: {type: txt}}}}\n")
    with pytest.raises(PackError):
        build_archive(stock, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_install_from_archives_then_upgrade_from_the_folder_is_a_no_op(engine, tmp_path):
    depot = build_archive(TEST_PACKS / "depot", tmp_path)
    plus = build_archive(TEST_PACKS / "depot_plus", tmp_path)
    plan = plan_packs(engine, [depot.path, plus.path], "install")
    assert [c.table for c in plan.changes if c.describe().startswith("create table")] == \
        ["bin", "rack", "rack_neighbour"]
    apply(engine, plan)
    with engine.connect() as conn:
        assert packstore.installed_packs(conn) == {"depot": "1.0.0", "depot_plus": "1.0.0"}
    assert plan_packs(engine, [TEST_PACKS / "depot_plus"], "upgrade").empty


def rewrite(archive: Path, change) -> None:
    """Unpack, let `change(name, data)` alter each member, and pack again (times and order kept)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for member, data in members:
            data = change(member.name, data)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    archive.write_bytes(buffer.getvalue())


def vouch(archive: Path) -> None:
    """Write the checksum file anew, as someone tampering with both files would."""
    archive.with_name(archive.name + ".sha256").write_text(f"{sha256(archive)}  {archive.name}\n")


def widen(name: str, data: bytes) -> bytes:
    return data.replace(b"max_length: 80", b"max_length: 8") if name.endswith("pack.yaml") else data


def refused(engine, path: Path, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        plan_packs(engine, [path], "install")
    with engine.connect() as conn:
        assert packstore.installed_packs(conn) == {}


def test_a_tampered_archive_is_refused_and_nothing_is_applied(engine, tmp_path):
    built = build_archive(TEST_PACKS / "depot", tmp_path)
    rewrite(built.path, widen)
    refused(engine, built.path, r"its sha256 does not match depot-1\.0\.0\.tar\.gz\.sha256; it was changed")
    vouch(built.path)  # the outer checksum made to fit: the manifest inside still tells
    refused(engine, built.path, r"pack\.yaml does not match the sha256 its manifest gives")
    built.checksum_path.unlink()
    refused(engine, built.path, r"there is no checksum file depot-1\.0\.0\.tar\.gz\.sha256 beside it")


def test_a_cut_short_archive_is_refused(engine, tmp_path):
    built = build_archive(TEST_PACKS / "depot", tmp_path)
    built.path.write_bytes(built.path.read_bytes()[:-20])
    vouch(built.path)
    refused(engine, built.path, "cut short")


def crafted(tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """An archive holding these entries, with a matching checksum file beside it."""
    path = tmp_path / "evil-1.0.0.tar.gz"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for info, data in entries:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path.write_bytes(buffer.getvalue())
    vouch(path)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


MANIFEST = b"name: evil\nversion: 1.0.0\n"


@pytest.mark.parametrize("evil, why", [
    (entry("evil-1.0.0/../../outside.yaml"), "leaves its folder"),
    (entry("/etc/evil.yaml"), "is an absolute path"),
    (entry("evil-1.0.0/link.yaml", tarfile.SYMTYPE, "/etc/passwd"), "is a link or special file"),
    (entry("evil-1.0.0/hard.yaml", tarfile.LNKTYPE, "evil-1.0.0/pack.yaml"), "is a link or special file"),
    (entry("evil-1.0.0/fifo", tarfile.FIFOTYPE), "is a link or special file"),
    (entry("other/pack.yaml"), "outside the one top folder"),
], ids=["dot-dot", "absolute", "symlink", "hard-link", "fifo", "two-tops"])
def test_unsafe_entries_are_refused(tmp_path, evil, why):
    path = crafted(tmp_path, [(entry("evil-1.0.0/pack.yaml"), MANIFEST), (evil, MANIFEST)])
    with pytest.raises(ArchiveError, match=why):
        read_archive(path)
    assert not (tmp_path.parent / "outside.yaml").exists()


def test_an_archive_that_unpacks_to_too_much_is_refused(tmp_path):
    path = crafted(tmp_path, [(entry("evil-1.0.0/pack.yaml"), b"#" * (MAX_UNPACKED_BYTES + 1))])
    assert path.stat().st_size < 100_000
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        read_archive(path)


def test_an_archive_without_a_manifest_is_refused(tmp_path):
    path = crafted(tmp_path, [(entry("evil-1.0.0/pack.yaml"), MANIFEST)])
    with pytest.raises(ArchiveError, match="it has no packwork-archive.json"):
        read_archive(path)
