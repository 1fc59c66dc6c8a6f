"""Who may do what. Every check the record service makes goes through these functions.

Until roles are enforced (the permissions issue) they allow everything and add no row scope;
that issue replaces the bodies, not the callers."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from packwork.metadata.model import Entity

@dataclass(frozen=True, slots=True)
class Actor:
    """The user a request or job acts for. `user_id` None means the platform itself (CLI, jobs)."""

    user_id: int | None
    roles: frozenset[str] = frozenset()
    language: str = "en"


def check(actor: Actor, action: str, entity: Entity, record: dict | None = None) -> None:
    """Raise PermissionDenied unless `actor` may do `action` on `entity` (or on `record`)."""


def row_scope(actor: Actor, entity: Entity, table: sa.Table, action: str = "read") -> sa.ColumnElement | None:
    """A predicate limiting the rows `actor` may reach for `action`, or None for all rows."""
    return None


def hidden_fields(actor: Actor, entity: Entity) -> frozenset[str]:
    """Fields `actor` may not see: absent from output, filters and sorts."""
    return frozenset()
