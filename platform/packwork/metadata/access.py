"""Who may do what, from the roles and permission matrices of the packs. Pure: metadata and role
names in, an `EntityPolicy` out; `runtime.permissions` turns a policy into SQL predicates.

How grants combine, for a user holding several roles:
- an action's scope is the widest any role grants (none < own < team < all);
- a grant's row rule (`rows`, in the filter language) widens every action that grant gives at
  a scope other than `none`; row rules of several roles are ORed;
- a field is hidden only if every role that reads the entity hides it, and read-only only if
  no role that writes the entity may write it;
- a grant's `stages` map sets the scope for moving a record into that stage, in place of the
  grant's update scope; the move also needs the update grant on the record (the record
  service checks both), so a stage grant narrows, never widens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from packwork.metadata.model import Grant, Metadata

SCOPES = ("none", "own", "team", "all")
ACTIONS = ("read", "create", "update", "delete", "export", "import", "transfer")
ADMIN_ROLE = "admin"  # the platform's own role: manages metadata and users, reaches every record


@dataclass(frozen=True, slots=True)
class Reach:
    """The records one action may touch: those within `scope` of their owner, or matching any
    of the row rules."""

    scope: str = "none"
    rows: tuple[str, ...] = ()

    @property
    def granted(self) -> bool:
        return self.scope != "none" or bool(self.rows)

    @property
    def everything(self) -> bool:
        return self.scope == "all"

    def widen(self, other: "Reach") -> "Reach":
        scope = max(self.scope, other.scope, key=SCOPES.index)
        return Reach(scope, self.rows + tuple(r for r in other.rows if r not in self.rows))


NOTHING = Reach()
EVERYTHING = Reach("all")


@dataclass(frozen=True, slots=True)
class EntityPolicy:
    entity: str
    actions: Mapping[str, Reach] = field(default_factory=lambda: MappingProxyType({}))
    stages: Mapping[str, Reach] = field(default_factory=lambda: MappingProxyType({}))
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()

    def reach(self, action: str) -> Reach:
        return self.actions.get(action, NOTHING)

    def stage_reach(self, stage: str) -> Reach:
        """Who may move a record into `stage`: its own scope where a grant restricts it."""
        return self.stages.get(stage, self.reach("update"))


def unrestricted(entity: str) -> EntityPolicy:
    """The policy of the platform itself (CLI, jobs) and of the `admin` role."""
    return EntityPolicy(entity, MappingProxyType({a: EVERYTHING for a in ACTIONS}))


def _grant_reach(grant: Grant, scope: str) -> Reach:
    if scope == "none":
        return NOTHING
    return Reach(scope, (grant.row_filter,) if grant.row_filter else ())


def entity_policy(metadata: Metadata, roles: Iterable[str], entity: str) -> EntityPolicy:
    """What a user holding `roles` may do with `entity`."""
    roles = set(roles)
    if ADMIN_ROLE in roles:
        return unrestricted(entity)
    grants = [g for g in metadata.grants if g.entity == entity and g.role in roles]
    actions: dict[str, Reach] = {}
    for grant in grants:
        for action, scope in grant.scopes:
            actions[action] = actions.get(action, NOTHING).widen(_grant_reach(grant, scope))
    restricted = {stage for grant in grants for stage, _ in grant.stage_scopes}
    stages = {}
    for stage in sorted(restricted):
        reach = NOTHING
        for grant in grants:
            scope = dict(grant.stage_scopes).get(stage, dict(grant.scopes).get("update", "none"))
            reach = reach.widen(_grant_reach(grant, scope))
        stages[stage] = reach
    readers = [g for g in grants if _grant_reach(g, dict(g.scopes).get("read", "none")).granted]
    writers = [g for g in grants if any(_grant_reach(g, dict(g.scopes).get(a, "none")).granted
                                        for a in ("create", "update"))]
    hidden = _in_every(readers, {"hidden"})
    read_only = _in_every(writers, {"hidden", "read_only"}) - hidden
    return EntityPolicy(entity, MappingProxyType({a: r for a, r in actions.items() if r.granted}),
                        MappingProxyType(stages), hidden, read_only)


def _in_every(grants: list[Grant], kinds: set[str]) -> frozenset[str]:
    """Fields every grant restricts to one of `kinds`."""
    if not grants:
        return frozenset()
    sets = [{name for name, kind in g.field_access if kind in kinds} for g in grants]
    return frozenset(set.intersection(*sets))


def role_matrix(metadata: Metadata, role: str) -> dict[str, EntityPolicy]:
    """Every entity's effective policy for one role (what `packwork perms show` prints)."""
    return {name: entity_policy(metadata, [role], name) for name, entity in metadata.entities.items()
            if not entity.hidden}
