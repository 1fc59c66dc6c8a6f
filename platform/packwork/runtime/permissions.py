"""Who may do what, made SQL. The record service asks an `Access` for every decision: whether an
action is granted on an entity at all, the predicate limiting the rows it may touch (always a
WHERE clause, never a filter after fetching), and the fields hidden from or read-only to the
actor. Policies come from `metadata.access`. Team scopes are subqueries over the team tree's
closure table, and shares are looked up only for users authentication found any for, so a
restricted list costs no more round trips than an unrestricted one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType

import sqlalchemy as sa

from packwork.errors import PermissionDenied
from packwork.metadata.access import EntityPolicy, Reach, unrestricted
from packwork.metadata.filters import parse_filter
from packwork.metadata.model import Entity
from packwork.runtime.catalog import Catalog
from packwork.runtime.query import FilterContext, compile_filter
from packwork.runtime.system import pw_share, pw_team_member, pw_team_path

# Which shares widen an action: a read share lets the recipient read, an edit share also update.
SHARED_FOR = {"read": ("read", "edit"), "export": ("read", "edit"), "update": ("edit",)}


@dataclass(frozen=True, slots=True)
class Actor:
    """The user a request or job acts for. `user_id` None means the platform itself (CLI, jobs)."""

    user_id: int | None
    roles: frozenset[str] = frozenset()
    language: str = "en"
    team_id: int | None = None
    shared: bool = False  # whether any record is shared with them or their teams


@lru_cache(maxsize=512)
def _parsed(text: str):
    return parse_filter(text)


class Access:
    """One unit of work's permissions: one actor, one catalog, one connection."""

    def __init__(self, conn: sa.Connection, catalog: Catalog, actor: Actor, now: datetime,
                 settings: Mapping[str, object] = MappingProxyType({})):
        self.conn, self.catalog, self.actor, self.now = conn, catalog, actor, now
        self.settings = settings  # for row rules that name a pack setting (`${name}`)
        self._members: list[int] | None = None
        self._shared: frozenset[str] | None = None

    def policy(self, entity: str) -> EntityPolicy:
        if self.actor.user_id is None:
            return unrestricted(entity)
        return self.catalog.policy(self.actor.roles, entity)

    def require(self, action: str, entity: Entity) -> None:
        """Refuse (403) unless `action` is granted on `entity` for at least some records."""
        if not self.policy(entity.name).reach(action).granted:
            raise PermissionDenied(f"you may not {action} {entity.name} records")

    def rows(self, action: str, entity: Entity, table: sa.Table) -> sa.ColumnElement | None:
        """The predicate for the rows `action` may touch, or None for every row."""
        return self._predicate(self.policy(entity.name).reach(action), entity, table, SHARED_FOR.get(action, ()))

    def stage_rows(self, stage: str, entity: Entity, table: sa.Table) -> sa.ColumnElement | None:
        """The predicate for the rows the actor may move into `stage`."""
        return self._predicate(self.policy(entity.name).stage_reach(stage), entity, table, ("edit",))

    def may_own(self, action: str, entity: Entity, owner_id: int | None) -> bool:
        """Whether `action` (create, import) may produce a record owned by `owner_id`."""
        scope = self.policy(entity.name).reach(action).scope
        if scope == "all" or self.actor.user_id is None:
            return True
        if scope == "team":
            return owner_id in self.team_members()
        return scope == "own" and owner_id == self.actor.user_id

    def hidden(self, entity: Entity) -> frozenset[str]:
        return self.policy(entity.name).hidden

    def read_only(self, entity: Entity) -> frozenset[str]:
        return self.policy(entity.name).read_only

    def team_members(self) -> list[int]:
        """The users of the actor's team and every team below it (the actor alone if teamless)."""
        if self._members is None:
            self._members = self.conn.execute(_members_below(self.actor)).scalars().all() \
                if self.actor.team_id is not None else [self.actor.user_id]
        return self._members

    def _shared_entities(self) -> frozenset[str]:
        """Entities with records shared with the actor; authentication already said whether
        there are any, so most users never run this query."""
        if self._shared is None:
            self._shared = frozenset(self.conn.execute(
                sa.select(pw_share.c.entity).where(self._recipient()).distinct()).scalars()) \
                if self.actor.shared else frozenset()
        return self._shared

    def _predicate(self, reach: Reach, entity: Entity, table: sa.Table,
                   shares: tuple[str, ...]) -> sa.ColumnElement | None:
        if reach.everything or self.actor.user_id is None:
            return None
        if not reach.granted:
            return sa.false()
        parts = []
        if reach.scope == "own":
            parts.append(table.c.owner_id == self.actor.user_id)
        elif reach.scope == "team" and self.actor.team_id is None:
            parts.append(table.c.owner_id == self.actor.user_id)
        elif reach.scope == "team":  # a subquery, not a list: no extra round trip
            parts.append(_owner_among(table.c.owner_id, _members_below(self.actor), self.conn.dialect))
        context = FilterContext(self.catalog.metadata, self.catalog.tables, self.actor.user_id,
                                self.now.date(), self.now, settings=self.settings)
        parts += [compile_filter(_parsed(text), entity, context) for text in reach.rows]
        # without shares the predicate stays a plain owner test that an index answers
        if shares and entity.name in self._shared_entities():
            parts.append(table.c.id.in_(self._share_select(entity.name, shares)))
        return sa.or_(*parts)

    def _recipient(self) -> sa.ColumnElement:
        """Shares with the actor, or with their team or a team above it."""
        mine = pw_share.c.user_id == self.actor.user_id
        if self.actor.team_id is None:
            return mine
        above = sa.select(pw_team_path.c.ancestor_id).where(pw_team_path.c.descendant_id == self.actor.team_id)
        return sa.or_(mine, pw_share.c.team_id.in_(above))

    def _share_select(self, entity: str, access: tuple[str, ...]) -> sa.Select:
        return sa.select(pw_share.c.record_id).where(
            pw_share.c.entity == entity, pw_share.c.access.in_(access), self._recipient())


def _owner_among(column: sa.Column, users: sa.Select, dialect: sa.Dialect) -> sa.ColumnElement:
    """`column IN (users)`. On PostgreSQL as `= ANY(ARRAY(users))`: the members are read once
    (an InitPlan), and a keyset page walks its index testing each row against that array,
    where a plain IN may be planned as a semi-join re-scanning the members for every row."""
    if dialect.name == "postgresql":
        return column == sa.func.any(sa.func.array(users.scalar_subquery()))
    return column.in_(users)


def _members_below(actor: Actor) -> sa.Select:
    """The users of the actor's team and of every team below it, through the closure table."""
    return (sa.select(pw_team_member.c.user_id)
            .join(pw_team_path, pw_team_path.c.descendant_id == pw_team_member.c.team_id)
            .where(pw_team_path.c.ancestor_id == actor.team_id))
