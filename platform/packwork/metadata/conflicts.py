"""Conflicts between packs that extend the same thing.

Packs are merged in dependency order, so a pack that depends on another may override what the
other set through `extends` (that is what layering means). Two packs that do not depend on each
other have no order between them: whichever happens to come second would win, and installing
them in the other order would give another CRM. So when such packs set the same property (of an
entity, a field, a view) to different values, or one uses a field only the other adds, that is
a conflict, reported at the second place with the first one's `file:line`.
"""

from __future__ import annotations

from dataclasses import dataclass

from packwork.metadata.model import Label, Origin
from packwork.metadata.problems import Problem, json_path

CONFLICT = "PACK-E028"  # two unrelated packs set the same thing differently
UNSEEN = "PACK-E029"  # a pack uses a field that only an unrelated pack adds


@dataclass(frozen=True, slots=True)
class Claim:
    pack: str
    origin: Origin
    value: object


def where(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}"


def shown(value: object) -> str:
    """A value as a pack author wrote it (YAML words, labels as `{en, zh}`), cut short."""
    if isinstance(value, Label):
        value = {"en": value.en, "zh": value.zh}
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {v if isinstance(v, str) else shown(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(shown(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ExtensionLedger:
    """Who set what through `extends`, so that a second, unrelated setter can be named."""

    def __init__(self, closure: dict[str, set[str]], problems: list[Problem]):
        self.closure = closure  # pack -> itself and every pack it depends on, directly or not
        self.claims: dict[tuple, Claim] = {}
        self.field_owners: dict[tuple[str, str], tuple[str, Origin]] = {}
        self.problems = problems  # the merge's own list, so problems keep the order they are found in

    def overrides(self, pack: str, earlier: str) -> bool:
        """May `pack` replace what `earlier` set? Only if it builds on it."""
        return earlier != pack and earlier in self.closure.get(pack, {pack})

    def claim(self, key: tuple, what: str, pack: str, origin: Origin, value: object,
              show_values: bool = True) -> None:
        """Record that `pack` sets `key` to `value`; a different value set by an unrelated pack
        (or elsewhere in the same pack) is a conflict."""
        previous = self.claims.get(key)
        self.claims[key] = Claim(pack, origin, value)
        if previous is None or previous.value == value or self.overrides(pack, previous.pack):
            return
        if previous.pack == pack:
            by = "elsewhere in this pack"
            fix = "set it in one place"
        else:
            by = f"by pack {previous.pack!r}"
            fix = (f"neither pack depends on the other, so which one wins would depend on the install "
                   f"order: make {pack!r} depend on {previous.pack!r}, or set it in one pack")
        values = f" to {shown(value)} here but to {shown(previous.value)}" if show_values else \
            " differently here and"
        self.problems.append(_problem(CONFLICT, origin,
                                      f"{what} is set{values} {by} at {where(previous.origin)}; {fix}"))

    def own_field(self, entity: str, field: str, pack: str, origin: Origin) -> None:
        self.field_owners.setdefault((entity, field), (pack, origin))

    def field_owner(self, entity: str, field: str) -> tuple[str, Origin] | None:
        return self.field_owners.get((entity, field))

    def sees_field(self, entity: str, field: str, pack: str, origin: Origin, verb: str) -> bool:
        """False (and a problem naming where it is added) if `pack` would `verb` a field that
        only a pack it does not depend on adds: without that pack installed it does not exist."""
        owner = self.field_owners.get((entity, field))
        if owner is None or owner[0] in self.closure.get(pack, {pack}):
            return True
        self.problems.append(_problem(
            UNSEEN, origin,
            f"field {field!r} of {entity!r} is added by pack {owner[0]!r} (at {where(owner[1])}), which "
            f"{pack!r} does not depend on; add {owner[0]!r} to its depends to {verb} it"))
        return False


def _problem(code: str, origin: Origin, message: str) -> Problem:
    return Problem(code, origin.file, origin.line, json_path(origin.path), message)
