"""Installed packs and metadata versions, as recorded in the database.

Installed packs keep their source text, so any worker can rebuild Metadata from the database
alone, with the same `file:line` positions, without the pack folders being present."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from packwork.metadata.loader import PackSource, SourceFile, manifest_depends
from packwork.metadata.physical import Schema, schema_from_json
from packwork.runtime.system import pw_meta_version, pw_pack


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    version: str
    packs: dict
    document: dict
    schema: Schema
    summary: str
    applied_at: datetime


def _has_system_tables(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table(pw_meta_version.name)


def current_version(conn: sa.Connection) -> Version | None:
    if not _has_system_tables(conn):
        return None
    row = conn.execute(sa.select(pw_meta_version).order_by(pw_meta_version.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return Version(row.id, row.version, row.packs, row.document, schema_from_json(row.schema),
                   row.summary, row.applied_at)


def current_version_id(conn: sa.Connection) -> int | None:
    """The one cheap query a worker runs to notice newer metadata."""
    if not _has_system_tables(conn):
        return None
    return conn.execute(sa.select(sa.func.max(pw_meta_version.c.id))).scalar()


def installed_sources(conn: sa.Connection) -> list[PackSource]:
    if not _has_system_tables(conn):
        return []
    rows = conn.execute(sa.select(pw_pack.c.name, pw_pack.c.files).order_by(pw_pack.c.name))
    return [PackSource(name, tuple(SourceFile(path, text) for path, text in sorted(files.items())))
            for name, files in rows]


def installed_packs(conn: sa.Connection) -> dict[str, str]:
    if not _has_system_tables(conn):
        return {}
    return dict(conn.execute(sa.select(pw_pack.c.name, pw_pack.c.version)).all())


def checksum(source: PackSource) -> str:
    digest = hashlib.sha256()
    for file in sorted(source.files, key=lambda f: f.path):
        digest.update(file.path.encode() + b"\0" + file.text.encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PackRow:
    """A pack as `record` stores it; prepared when planning so applying parses nothing."""

    name: str
    depends: list[str]
    files: dict[str, str]
    checksum: str


def pack_rows(sources: list[PackSource]) -> list[PackRow]:
    rows = []
    for source in sources:
        name, depends = manifest_depends(source)
        rows.append(PackRow(name, depends, {f.path: f.text for f in source.files}, checksum(source)))
    return rows


