"""Checks of the data migrations packs ship (docs/packs.md, "Data migrations"). Like the other
checks, each returns problems and never raises.

- a migration's name is a name (PACK-E030);
- its entity is declared by its pack or a pack that pack depends on (PACK-E033);
- its `version` is at most its pack's own version, or no upgrade would ever run it (PACK-E048);
- its code parses (PACK-E040), reads only declared settings (PACK-E047), and uses `record.NAME`
  only for fields the record has (PACK-E037), assigning none that is computed (PACK-E045);
- its filter is a filter over the entity (PACK-E043).

Whether the sandbox accepts the code is checked by the rules compiler, which `metadata` does not
import: `runtime.data_migrations.code_problems` does that for `pack validate` and every plan.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from packwork.metadata import checks, checks_actions
from packwork.metadata.model import Entity, Metadata, Migration
from packwork.metadata.names import identifier_problem
from packwork.metadata.problems import Problem, json_path

RECORD_KEYS = ("id", "owner_id", "record_type")  # what rule code sees of a record beyond its fields


def version_key(version: str) -> tuple[int, ...]:
    """`2.10.0` -> (2, 10, 0), which orders versions as numbers, not as text."""
    return tuple(int(part) for part in version.split("."))


def check_migrations(metadata: Metadata) -> list[Problem]:
    versions = {p.name: p.version for p in metadata.packs}
    reach = _dependency_closure(metadata)
    problems: list[Problem] = []
    for migration in metadata.migrations:
        problems += _check_migration(migration, metadata, versions, reach)
    return problems


def _dependency_closure(metadata: Metadata) -> dict[str, set[str]]:
    closure: dict[str, set[str]] = {}
    for pack in metadata.packs:  # in dependency order
        closure[pack.name] = {pack.name}.union(*(closure.get(d, set()) for d in pack.depends))
    return closure


def _check_migration(migration: Migration, metadata: Metadata, versions: dict[str, str],
                     reach: dict[str, set[str]]) -> Iterator[Problem]:
    origin = migration.origin
    reason = identifier_problem(migration.name)
    if reason:
        yield checks._p("PACK-E030", origin, reason)
    pack_version = versions.get(migration.pack)
    if pack_version and version_key(migration.version) > version_key(pack_version):
        yield checks._p("PACK-E048", origin, f"migration version {migration.version} is above the pack's own "
                        f"version {pack_version}, so no upgrade would run it; give the version that brings it",
                        "version")
    entity = metadata.entities.get(migration.entity)
    if entity is None or entity.pack not in reach.get(migration.pack, {migration.pack}):
        yield checks._p("PACK-E033", origin, f"migration for entity {migration.entity!r}, which neither "
                        f"{migration.pack!r} nor a pack it depends on declares", "entity")
        return
    if migration.filter:
        yield from checks._check_filter(migration.filter, entity, metadata, origin, "filter")
    yield from _check_code(migration, entity, metadata)


def _check_code(migration: Migration, entity: Entity, metadata: Metadata) -> Iterator[Problem]:
    origin, where = migration.origin, json_path(migration.origin.path + ("code",))
    try:
        tree = ast.parse(migration.code, mode="exec")
    except SyntaxError as exc:
        yield Problem("PACK-E040", origin.file, checks.code_line(origin, exc.lineno or 1), where,
                      f"migration code does not parse: {exc.msg}")
        return
    yield from checks_actions._code_names(migration.rule, metadata)
    readable = {f.name for f in entity.fields if f.has_column} | set(RECORD_KEYS)
    computed = {f.name for f in entity.fields if f.type == "computed"}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "record"):
            continue
        line = checks.code_line(origin, node.lineno)
        if node.attr not in readable:
            yield Problem("PACK-E037", origin.file, line, where,
                          f"migration code uses record.{node.attr}, which is not a stored field of {entity.name!r}")
        elif isinstance(node.ctx, ast.Store) and (node.attr in computed or node.attr == "id"):
            why = "computed: the record service works it out" if node.attr in computed else "the record's key"
            yield Problem("PACK-E045", origin.file, line, where, f"migration code assigns record.{node.attr}, "
                          f"which is {why}")
