"""Pack lifecycle on a database: which packs a plan installs or upgrades, and the metadata
they resolve to together with the packs already installed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from packwork.errors import PackError, PackworkError
from packwork.metadata.loader import PackSource, manifest_depends
from packwork.metadata.model import Metadata
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import admin_layer, packstore
from packwork.runtime.archives import read_pack_paths
from packwork.runtime.migrate import Plan, make_plan

MODES = ("install", "upgrade", "plan")


class PackStateError(PackworkError):
    status = 409
    code = "PACK-E409"


def installed_metadata(engine: sa.Engine) -> Metadata | None:
    """Metadata rebuilt from the pack sources recorded in the database."""
    with engine.connect() as conn:
        sources = packstore.installed_sources(conn)
    return resolve_sources(sources) if sources else None


def plan_packs(engine: sa.Engine, paths: list[str | Path], mode: str = "plan", *, force: bool = False) -> Plan:
    """Plan installing (or upgrading) the packs at `paths` (folders or built archives) on top
    of what is installed."""
    if mode not in MODES:
        raise ValueError(mode)
    with engine.connect() as conn:
        installed = {s.display: s for s in packstore.installed_sources(conn)}
        versions = packstore.installed_packs(conn)
    sources, problems = read_pack_paths(list(paths), known=frozenset(installed))
    if problems:
        raise PackError(problems)
    given = {manifest_depends(s)[0]: s for s in sources}
    _check_mode(mode, list(given)[:len(paths)], versions)
    combined = [s for name, s in installed.items() if name not in given] + list(given.values())
    layer = None
    if admin_layer.LAYER not in given:  # the installed admin layer comes after every pack, new ones too
        combined, layer = admin_layer.relayered(combined)
    metadata = resolve_sources(combined)
    changed = [s for name, s in given.items()
               if name not in installed or packstore.checksum(installed[name]) != packstore.checksum(s)]
    if layer is not None:
        changed.append(layer)
    return make_plan(engine, metadata, changed, force=force)


def _check_mode(mode: str, names: list[str], versions: dict[str, str]) -> None:
    for name in names:
        if mode == "install" and name in versions:
            raise PackStateError(f"pack {name!r} is already installed (version {versions[name]}); "
                                 "use `packwork pack upgrade` to change it")
        if mode == "upgrade" and name not in versions:
            raise PackStateError(f"pack {name!r} is not installed; use `packwork pack install` first")


def plan_uninstall(engine: sa.Engine, name: str, *, purge: bool = False) -> Plan:
    """Plan removing pack `name`: a metadata version without it. Its tables and the columns it
    added to other packs' entities are kept, orphaned, with their data (installing it again
    adopts them) unless `purge`, which drops them. Refused while an installed pack depends on it."""
    with engine.connect() as conn:
        sources = packstore.installed_sources(conn)
        versions = packstore.installed_packs(conn)
    if name not in versions:
        installed = ", ".join(sorted(versions)) or "none"
        raise PackStateError(f"pack {name!r} is not installed (installed: {installed})")
    dependents = sorted(n for s in sources for n, depends in [manifest_depends(s)] if name in depends)
    if dependents:
        raise PackStateError(f"pack {name!r} is needed by the installed pack(s) {', '.join(map(repr, dependents))}, "
                             "which depend on it; uninstall them first")
    remaining = [s for s in sources if manifest_depends(s)[0] != name]
    return make_plan(engine, resolve_sources(remaining), [], [name], drop_orphaned=purge)


def plan_purge(engine: sa.Engine) -> Plan:
    """Plan dropping every orphaned column and table, with their data."""
    return make_plan(engine, installed_metadata(engine), [], purge=True)


def describe_sources(sources: list[PackSource]) -> str:
    return ", ".join(manifest_depends(s)[0] or s.display for s in sources)
