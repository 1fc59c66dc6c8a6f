"""Build packs from text in a test, without files."""

from __future__ import annotations

from packwork.metadata.loader import PackSource, SourceFile
from packwork.metadata.resolver import resolve_sources


def source(name: str, files: dict[str, str], depends: tuple[str, ...] = ()) -> PackSource:
    manifest = f"name: {name}\nversion: 1.0.0\n" + (f"depends: [{', '.join(depends)}]\n" if depends else "")
    all_files = {"pack.yaml": manifest + files.pop("pack.yaml", "")} | files
    return PackSource(name, tuple(SourceFile(p, t) for p, t in all_files.items()))


def resolve(*sources: PackSource):
    return resolve_sources(list(sources))
