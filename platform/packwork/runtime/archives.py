"""Pack archives: one versioned file to hand from the consultant's machine to a server.

`build_archive` packs a pack folder into `NAME-VERSION.tar.gz` with its sha256 beside it
(`NAME-VERSION.tar.gz.sha256`, the format `sha256sum -c` reads) and a manifest inside naming
every file with its own sha256. The bytes depend only on the pack's files: entries are sorted,
times, owners and modes fixed, so building twice gives the same file and the same checksum.

`read_archive` is the way back, for every command that takes pack paths. It checks the
archive against the checksum beside it, unpacks it in memory with a size cap (never onto disk,
so no name in it can write anywhere), refuses links, devices, absolute paths and `..`, and
checks each file against the manifest, all before any of it is parsed, so a tampered archive is
refused with nothing done.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packwork.errors import PackError, PackworkError
from packwork.metadata.loader import (
    DATA_FOLDER, MANIFEST, MAX_FILE_BYTES, MAX_FILES, MAX_PACK_BYTES, YAML_SUFFIXES, PackSource, SourceFile,
    manifest_depends, read_pack_folders,
)
from packwork.metadata.problems import Problem
from packwork.metadata.resolver import resolve_sources

SUFFIXES = (".tar.gz", ".tgz")
CHECKSUM_SUFFIX = ".sha256"
CONTENTS = "packwork-archive.json"  # the manifest inside; not YAML, so never read as pack metadata
FORMAT = "packwork-pack-archive/1"
MTIME = 946684800  # 2000-01-01T00:00:00Z for every entry and the gzip header: same files, same bytes
MAX_ARCHIVE_BYTES = 2 * MAX_PACK_BYTES
# Unpacked: the files plus their tar headers (a header, and at most a PAX header, per file).
MAX_UNPACKED_BYTES = MAX_PACK_BYTES + (MAX_FILES + 2) * 3 * tarfile.BLOCKSIZE


class ArchiveError(PackworkError):
    """An archive that is not whole, not what its checksum says, or not safe to read."""

    status = 422
    code = "PACK-E007"


@dataclass(frozen=True, slots=True)
class BuiltArchive:
    path: Path
    checksum_path: Path
    sha256: str
    name: str
    version: str
    files: int
    size: int


def is_archive(path: str | Path) -> bool:
    return str(path).endswith(SUFFIXES)


# -- building ------------------------------------------------------------------------------

def build_archive(folder: str | Path, out_dir: str | Path) -> BuiltArchive:
    """Check the pack as `pack validate` does (a broken pack is not packed), then write its
    archive and checksum file into `out_dir`, each replaced only once whole."""
    sources, problems = read_pack_folders([folder])
    if problems:
        raise PackError(problems)
    metadata = resolve_sources(sources)
    name, _ = manifest_depends(sources[0])
    version = next(p.version for p in metadata.packs if p.name == name)
    files = list(sources[0].files) + _demo_files(Path(folder))
    data = archive_bytes(name, version, files)
    digest = hashlib.sha256(data).hexdigest()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{version}{SUFFIXES[0]}"
    _write_whole(path, data)
    checksum_path = path.with_name(path.name + CHECKSUM_SUFFIX)
    _write_whole(checksum_path, f"{digest}  {path.name}\n".encode())
    return BuiltArchive(path, checksum_path, digest, name, version, len(files), len(data))


def _demo_files(root: Path) -> list[SourceFile]:
    """The pack's demo data set (`demo/`, which the loader skips as metadata) goes in too: it is
    part of the pack. The loader's rules apply: YAML only, nothing hidden, nothing outside."""
    folder, real_root = root / DATA_FOLDER, root.resolve()
    files = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        rel = path.relative_to(root)
        if any(p.startswith(".") for p in rel.parts) or path.suffix not in YAML_SUFFIXES or not path.is_file():
            continue
        if not path.resolve().is_relative_to(real_root):
            raise PackError([Problem("PACK-E002", f"{root}/{rel.as_posix()}", 1, "$",
                                     "links outside the pack folder; a pack may only read its own files")])
        files.append(SourceFile(rel.as_posix(), path.read_text(encoding="utf-8")))
    return files


def archive_bytes(name: str, version: str, files: list[SourceFile]) -> bytes:
    """The archive: `NAME-VERSION/` holding the manifest first (a reader meets it before the
    files it vouches for), then the files in sorted order."""
    top = f"{name}-{version}"
    entries = sorted((f.path, f.text.encode("utf-8")) for f in files)
    contents = {"format": FORMAT, "name": name, "version": version,
                "files": {path: hashlib.sha256(data).hexdigest() for path, data in entries}}
    manifest = (json.dumps(contents, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=MTIME) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in [(CONTENTS, manifest)] + entries:
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _write_whole(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- reading -------------------------------------------------------------------------------

def read_archive(path: str | Path) -> PackSource:
    """The pack inside a built archive, after every check; ArchiveError says why not."""
    path = Path(path)
    refuse = _refuser(path)
    if not path.is_file():
        refuse("there is no such file")
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        refuse(f"it is larger than {MAX_ARCHIVE_BYTES} bytes")
    data = path.read_bytes()
    _check_sum(path, data, refuse)
    members = _members(_gunzip(data, refuse), refuse)
    files, name = _checked_against_manifest(members, refuse)
    try:
        texts = {p: files[p].decode("utf-8") for p in sorted(files) if _is_metadata(p)}
    except UnicodeDecodeError:
        refuse("a file in it is not UTF-8 text")
    source = PackSource(str(path), tuple(SourceFile(p, t) for p, t in texts.items()))
    if manifest_depends(source)[0] != name:
        refuse(f"its {MANIFEST} does not name the pack {name!r} its manifest names")
    return source


def _refuser(path: Path):
    def refuse(why: str):
        raise ArchiveError(f"pack archive {path} refused: {why}. Nothing was read from it or changed.")
    return refuse


def _check_sum(path: Path, data: bytes, refuse) -> None:
    sidecar = path.with_name(path.name + CHECKSUM_SUFFIX)
    if not sidecar.is_file():
        refuse(f"there is no checksum file {sidecar.name} beside it (`packwork pack build` writes one)")
    words = sidecar.read_text(encoding="utf-8", errors="replace").split()
    expected = words[0].lower() if words else ""
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        refuse(f"{sidecar.name} does not hold a sha256 checksum")
    if hashlib.sha256(data).hexdigest() != expected:
        refuse(f"its sha256 does not match {sidecar.name}; it was changed or damaged after it was built")


def _gunzip(data: bytes, refuse) -> bytes:
    """Unpack with a cap, so a small archive cannot expand into gigabytes."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        unpacked = unpacker.decompress(data, MAX_UNPACKED_BYTES)
    except zlib.error as exc:
        refuse(f"it is not a gzip file ({exc})")
    if unpacker.unconsumed_tail:
        refuse(f"it unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    if not unpacker.eof or unpacker.unused_data:
        refuse("it is cut short or has data after its end")
    return unpacked


def _members(tar_bytes: bytes, refuse) -> dict[str, bytes]:
    """Regular files by their path below the one top folder; anything else is refused."""
    members: dict[str, bytes] = {}
    tops: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar:
                parts = _safe_parts(member.name, refuse)
                if member.isdir():
                    continue
                if not member.isfile():
                    refuse(f"{member.name!r} is a link or special file; an archive may hold only files")
                tops.add(parts[0])
                rel = "/".join(parts[1:])
                if len(parts) < 2 or rel in members or len(tops) > 1:
                    refuse(f"{member.name!r} is outside the one top folder, or given twice")
                total += member.size
                if member.size > MAX_FILE_BYTES or total > MAX_PACK_BYTES or len(members) > MAX_FILES:
                    refuse(f"it holds more than a pack may ({MAX_FILES} files, {MAX_FILE_BYTES} bytes each, "
                           f"{MAX_PACK_BYTES} in all)")
                members[rel] = tar.extractfile(member).read()
    except tarfile.TarError as exc:
        refuse(f"it is not a tar archive ({exc})")
    return members


def _safe_parts(name: str, refuse) -> tuple[str, ...]:
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        refuse(f"{name!r} is an absolute path")
    parts = tuple(name.rstrip("/").split("/"))
    if any(p in ("", ".", "..") for p in parts):
        refuse(f"{name!r} leaves its folder or is not a plain path")
    return parts


def _checked_against_manifest(members: dict[str, bytes], refuse) -> tuple[dict[str, bytes], str]:
    """The files (without the manifest) once each matches the manifest, and the pack's name."""
    if CONTENTS not in members:
        refuse(f"it has no {CONTENTS}; build archives with `packwork pack build`")
    try:
        contents = json.loads(members[CONTENTS])
        listed, name, version = dict(contents["files"]), contents["name"], contents["version"]
        assert contents["format"] == FORMAT and isinstance(name, str) and isinstance(version, str)
    except (ValueError, KeyError, TypeError, AssertionError):
        refuse(f"its {CONTENTS} is not a {FORMAT} manifest")
    files = {p: data for p, data in members.items() if p != CONTENTS}
    if set(files) != set(listed):
        extra, missing = sorted(set(files) - set(listed)), sorted(set(listed) - set(files))
        refuse(f"its files differ from its manifest (not listed: {extra or 'none'}; missing: {missing or 'none'})")
    for path, data in sorted(files.items()):
        if hashlib.sha256(data).hexdigest() != listed[path]:
            refuse(f"{path} does not match the sha256 its manifest gives")
    return files, name


def _is_metadata(path: str) -> bool:
    """The files the loader would read from a folder: YAML, not hidden, not the demo data."""
    parts = path.split("/")
    return parts[0] != DATA_FOLDER and not any(p.startswith(".") for p in parts) and path.endswith(YAML_SUFFIXES)


# -- pack paths: folders and archives alike -------------------------------------------------

def read_pack_paths(paths: list[str | Path], known: frozenset[str] = frozenset()
                    ) -> tuple[list[PackSource], list[Problem]]:
    """Like `read_pack_folders`, but a path may also be a built archive (checked first, so a
    refused archive stops everything). The given packs come first, in the order given, then
    the dependencies found beside folders."""
    archives = {i: read_archive(p) for i, p in enumerate(paths) if is_archive(p)}
    folders = [p for i, p in enumerate(paths) if i not in archives]
    names = known | {manifest_depends(s)[0] for s in archives.values()}
    found, problems = read_pack_folders(folders, known=frozenset(names))
    if problems:
        return list(archives.values()) + found, problems
    given, dependencies = iter(found[:len(folders)]), found[len(folders):]
    return [archives[i] if i in archives else next(given) for i in range(len(paths))] + dependencies, []

