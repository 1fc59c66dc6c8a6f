"""Installed packs and metadata versions, as recorded in the database.

Installed packs keep their source text, so any worker can rebuild Metadata from the database
alone, with the same `file:line` positions, without the pack folders being present."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from packwork.metadata.loader import PackSource, SourceFile, manifest_depends
from packwork.metadata.physical import Schema, schema_from_json, schema_to_json
from packwork.runtime.system import pw_meta_version, pw_pack

if TYPE_CHECKING:
    from packwork.runtime.migrate import Plan


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


_PACK_COLUMNS = ("name", "version", "depends", "files", "checksum", "installed_at", "updated_at")
_VERSION_COLUMNS = ("version", "packs", "document", "schema", "summary", "applied_at")
_DELETE_PACKS = pw_pack.delete().where(pw_pack.c.name.in_(sa.bindparam("names", expanding=True)))


@functools.cache
def _recording(dialect: str, pack_count: int) -> tuple[sa.Insert, ...]:
    """The statements that record `pack_count` packs and the new version, built once per
    shape (building a statement costs more than executing it). The version is inserted only
    if the newest recorded one is still `previous`: that is the stale-plan check. On
    PostgreSQL each pack is written by a CTE of that same statement: one round trip."""
    newest = sa.select(pw_meta_version.c.version).order_by(pw_meta_version.c.id.desc()).limit(1)
    values = sa.select(*(sa.bindparam(c, type_=pw_meta_version.c[c].type) for c in _VERSION_COLUMNS))
    version = pw_meta_version.insert().from_select(
        _VERSION_COLUMNS,
        values.where(newest.scalar_subquery().is_not_distinct_from(
            sa.bindparam("previous", type_=pw_meta_version.c.version.type)))
    ).execution_options(preserve_rowcount=True)  # an INSERT's rowcount is kept only if asked
    packs = [_pack_upsert(dialect, i) for i in range(pack_count)]
    if dialect == "postgresql":
        return (version.add_cte(*(pack.cte(f"pack_{i}") for i, pack in enumerate(packs))),)
    return (*packs, version)  # SQLite has no INSERT inside WITH


def _pack_upsert(dialect: str, i: int) -> sa.Insert:
    """Insert or update pack `i`. One row per statement: SQLAlchemy cannot cache a multi-row
    VALUES, and compiling a statement each time costs more than a round trip."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(pw_pack)
    upsert = insert.values({c: sa.bindparam(f"{c}_{i}", type_=pw_pack.c[c].type) for c in _PACK_COLUMNS})
    return upsert.on_conflict_do_update(
        index_elements=[pw_pack.c.name],
        set_={c: upsert.excluded[c] for c in _PACK_COLUMNS if c not in ("name", "installed_at")})


def record(conn: sa.Connection, plan: "Plan", summary: str) -> bool:
    """Record the changed packs and the new metadata version; False if the plan is stale."""
    now = datetime.now(timezone.utc)
    packs = {p.name: p.version for p in plan.metadata.packs} if plan.metadata else installed_packs(conn)
    if plan.removed_packs:
        conn.execute(_DELETE_PACKS, {"names": list(plan.removed_packs)})
    params = {"version": plan.metadata.version if plan.metadata else plan.previous, "packs": packs,
              "document": plan.document or {}, "schema": schema_to_json(plan.schema), "summary": summary,
              "applied_at": now, "previous": plan.previous}
    for i, row in enumerate(plan.pack_rows):
        params |= {f"name_{i}": row.name, f"version_{i}": packs.get(row.name, "?"), f"depends_{i}": row.depends,
                   f"files_{i}": row.files, f"checksum_{i}": row.checksum, f"installed_at_{i}": now,
                   f"updated_at_{i}": now}
    *first, last = _recording(conn.dialect.name, len(plan.pack_rows))
    for statement in first:
        conn.execute(statement, params)
    return conn.execute(last, params).rowcount == 1
