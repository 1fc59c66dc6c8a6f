"""The metadata a process serves from, cached per version.

A `Catalog` is everything derived from one metadata version that requests need: the frozen
`Metadata`, the SQLAlchemy tables as they exist (orphaned columns included) and the value
schemas of each entity. Building one parses pack sources; that happens once per version per
process, never per request. `CatalogCache.current` costs one cheap query (the newest version
id) and rebuilds only when another process recorded a newer version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa

from packwork.errors import NotInstalled
from packwork.metadata.access import EntityPolicy, entity_policy
from packwork.metadata.model import Entity, Metadata
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore
from packwork.runtime.tables import build_tables
from packwork.runtime.values import EntityValues

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EntityStatements:
    """Statements built once per catalog: building a SQLAlchemy statement per request costs more
    than the database round trip for small reads and writes."""

    insert: sa.Insert  # execute with the values as parameters
    by_id: sa.Select  # bind `record_id`


def _statements(table: sa.Table) -> EntityStatements:
    return EntityStatements(table.insert().returning(*table.c),
                            sa.select(table).where(table.c.id == sa.bindparam("record_id")))


@dataclass(eq=False)
class Catalog:
    version_id: int
    metadata: Metadata
    tables: dict[str, sa.Table]
    _derived: dict[tuple, object] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def entity(self, name: str) -> Entity | None:
        return self.metadata.entities.get(name)

    def derived(self, key: tuple, build: Callable[[], T]) -> T:
        """What `build` makes from this metadata version, made once per `key` and kept with it."""
        built = self._derived.get(key)
        if built is None:
            with self._lock:
                built = self._derived.get(key)
                if built is None:
                    built = self._derived[key] = build()
        return built

    def values(self, entity: Entity) -> EntityValues:
        """The entity's value schemas (coercion, validation, JSON output)."""
        return self.derived(("values", entity.name), lambda: EntityValues(entity, self.metadata))

    def statements(self, name: str) -> EntityStatements:
        return self.derived(("statements", name), lambda: _statements(self.tables[name]))

    def policy(self, roles: frozenset[str], entity: str) -> EntityPolicy:
        """What a user holding `roles` may do with `entity`."""
        return self.derived(("policy", roles, entity), lambda: entity_policy(self.metadata, roles, entity))


def load_catalog(conn: sa.Connection) -> Catalog:
    version = packstore.current_version(conn)
    if version is None:
        raise NotInstalled("no packs are installed in this database; run `packwork pack install PATH`")
    metadata = resolve_sources(packstore.installed_sources(conn))
    return Catalog(version.id, metadata, build_tables(version.schema))


class CatalogCache:
    """One per process: the newest catalog, rebuilt when the database has a newer version."""

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    @property
    def current_catalog(self) -> Catalog | None:
        """The catalog built last (None before the first request)."""
        return self._catalog

    def current(self, conn: sa.Connection, version_id: int | None = None) -> Catalog:
        """The catalog for the database's newest version. Pass `version_id` if the caller already
        read it (it can ride along with another query); otherwise it is queried here."""
        if version_id is None:
            version_id = packstore.current_version_id(conn)
        catalog = self._catalog
        if catalog is not None and catalog.version_id == version_id:
            return catalog
        with self._lock:
            if self._catalog is None or self._catalog.version_id != version_id:
                self._catalog = load_catalog(conn)
            return self._catalog
