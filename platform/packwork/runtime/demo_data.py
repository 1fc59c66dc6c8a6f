"""Demo data: fill a database with the data set a pack's `demo/data.yaml` describes.

The spec names, per entity, how many records to make and where each field's value comes from
(docs/packs.md, "Demo data"); this module knows no entity. Every record is created through the
record service, as its owner (or the user the spec names), so permissions, validations, rules
and the audit trail apply exactly as for a person typing it in; a record the service refuses is
reported, never forced in. Entities are made in the order the spec lists them (a reference picks
among records made before it), in chunks, each chunk written with `records.create_many` per
acting user. Later steps (`then`) move a share of the records on by updates, as the users who
would make them; `links` joins records of many-to-many relations. The same seed, spec and day
give the same data: each entity draws from its own random stream.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from packwork.errors import PackworkError, RequestError
from packwork.metadata.loader import DATA_FOLDER, parse_document
from packwork.metadata.model import Entity, Field, Metadata
from packwork.runtime import records
from packwork.runtime.catalog import Catalog, load_catalog
from packwork.runtime.importer import actor_for_user
from packwork.runtime.permissions import Actor
from packwork.runtime.system import pw_team, pw_user, pw_user_role
from packwork.runtime.users import DEMO_TEAM, create_user

SPEC_FILE = "data.yaml"
CHUNK = 200  # records generated (then created) together
SOURCES = ("value", "choose", "some", "between", "days", "pattern", "ref", "copy", "user")
MODIFIERS = ("blank", "when", "round", "skew", "hours", "factor")
SYSTEM_FIELDS = ("owner_id", "record_type")
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)(?::([^}]*))?\}")


class DemoDataError(PackworkError):
    status = 400
    code = "DEMO-E001"


@dataclass
class Report:
    created: dict[str, int] = field(default_factory=dict)  # by the spec's own counts
    updated: dict[str, int] = field(default_factory=dict)
    linked: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # "entity #n: message", first ones
    refusals: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        made = ", ".join(f"{count} {name}" for name, count in self.created.items())
        moved = ", ".join(f"{count} {name}" for name, count in self.updated.items())
        linked = ", ".join(f"{count} {name}" for name, count in self.linked.items())
        return (f"{made}; then updated {moved or 'none'}; linked {linked or 'none'}; "
                f"{self.refusals} refused; {self.seconds:.1f} s")


def spec_path(pack_folder: str | Path) -> Path:
    return Path(pack_folder) / DATA_FOLDER / SPEC_FILE


def load_spec(path: str | Path) -> dict:
    """The spec, read with the packs' safe YAML reader (no tags, anchors or duplicate keys)."""
    path = Path(path)
    doc, problems = parse_document(str(path), path.read_text(encoding="utf-8"))
    if problems:
        raise DemoDataError("; ".join(f"{p.file}:{p.line}: {p.message}" for p in problems))
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("entities"), dict):
        raise DemoDataError(f"{path}: a demo data spec is a mapping with `entities`")
    return doc.data


# -- checking the spec against the metadata, every problem at once ----------------------------


def check_spec(spec: Mapping, metadata: Metadata) -> list[str]:
    problems = []
    for name, entity_spec in spec.get("entities", {}).items():
        entity = metadata.entities.get(name)
        if entity is None:
            problems.append(f"entities.{name}: there is no entity {name!r}")
            continue
        if not isinstance(entity_spec, dict) or not isinstance(entity_spec.get("count", 0), int):
            problems.append(f"entities.{name}: give a mapping with an integer `count`")
            continue
        problems += _check_values(f"entities.{name}.fields", entity, entity_spec.get("fields", {}))
        for index, step in enumerate(entity_spec.get("then", ())):
            where = f"entities.{name}.then.{index}"
            action = step.get("action")
            if action is None:
                problems += _check_values(f"{where}.values", entity, step.get("values", {}))
            elif not any(r.entity == name and r.kind == "action" and r.name == action for r in metadata.rules):
                problems.append(f"{where}.action: {name} has no action {action!r}")
    for name, link_spec in spec.get("links", {}).items():
        relation = metadata.relations.get(name)
        if relation is None:
            problems.append(f"links.{name}: there is no relation {name!r}")
            continue
        fields = {f.name: f for f in relation.fields}
        for field_name, source in link_spec.get("fields", {}).items():
            if field_name not in fields:
                problems.append(f"links.{name}.fields.{field_name}: not a field of the relation")
            else:
                problems += _check_source(f"links.{name}.fields.{field_name}", fields[field_name], source)
    return problems


def _check_values(where: str, entity: Entity, values: Mapping) -> list[str]:
    problems = []
    for field_name, source in values.items():
        found = entity.field(field_name)
        if found is None and field_name not in SYSTEM_FIELDS:
            problems.append(f"{where}.{field_name}: {entity.name!r} has no field {field_name!r}")
            continue
        problems += _check_source(f"{where}.{field_name}", found, source)
    return problems


def _check_source(where: str, found: Field | None, source: object) -> list[str]:
    for one in source if isinstance(source, list) else [source]:
        if not isinstance(one, dict):
            continue
        keys = [k for k in one if k in SOURCES]
        unknown = [k for k in one if k not in SOURCES and k not in MODIFIERS]
        if len(keys) != 1 or unknown:
            return [f"{where}: give exactly one of {', '.join(SOURCES)} (found {', '.join(one) or 'nothing'})"]
        if keys[0] == "ref" and (found is None or found.type != "reference"):
            return [f"{where}: `ref` needs a reference field"]
    return []


# -- generating ------------------------------------------------------------------------------


def has_data(conn: sa.Connection, catalog: Catalog, spec: Mapping) -> bool:
    """Whether any entity the spec fills holds a record already (the demo data is made once)."""
    for name in spec.get("entities", {}):
        table = catalog.tables.get(name)
        if table is not None and conn.execute(sa.select(table.c.id).limit(1)).first() is not None:
            return True
    return False


def generate(engine: sa.Engine, spec: Mapping, scale: float = 1.0, today: date | None = None) -> Report:
    """Create the spec's data set in one transaction (all or nothing if anything breaks)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        catalog = load_catalog(conn)
        problems = check_spec(spec, catalog.metadata)
        if problems:
            raise DemoDataError("the demo data spec does not fit the installed packs: " + "; ".join(problems))
        run = _Run(conn, catalog, spec, scale, today or datetime.now(timezone.utc).date())
        run.users()
        for name, entity_spec in spec["entities"].items():
            run.entity(name, entity_spec)
        for name, link_spec in spec.get("links", {}).items():
            run.links(name, link_spec)
    run.report.seconds = time.perf_counter() - started
    return run.report


class _Run:
    def __init__(self, conn: sa.Connection, catalog: Catalog, spec: Mapping, scale: float, today: date):
        self.conn, self.catalog, self.spec, self.scale, self.today = conn, catalog, spec, scale, today
        self.metadata = catalog.metadata
        self.seed = spec.get("seed", 1)
        self.lists: Mapping[str, list] = spec.get("lists", {})
        self.made: dict[str, list[dict]] = {}  # entity -> records made, as the service returned them
        self.by_id: dict[str, dict[int, dict]] = {}
        self.user_roles: dict[str, tuple[int, frozenset[str]]] = {}  # username -> (id, roles)
        self.contexts: dict[int | None, records.Context] = {}
        self.report = Report()

    # users and who acts

    def users(self) -> None:
        """Add the spec's extra users (no password: they own records, and sign in once given one)."""
        known = set(self.metadata.roles)
        existing = set(self.conn.execute(sa.select(pw_user.c.username)).scalars())
        has_team = self.conn.execute(sa.select(pw_team.c.id).where(pw_team.c.name == DEMO_TEAM)).first()
        for username, about in self.spec.get("users", {}).items():
            if username not in existing:
                create_user(self.conn, username, about.get("roles", []), known, about.get("name"),
                            DEMO_TEAM if has_team else None)
        rows = self.conn.execute(sa.select(pw_user.c.id, pw_user.c.username, pw_user_role.c.role)
                                 .select_from(pw_user.outerjoin(pw_user_role, pw_user_role.c.user_id == pw_user.c.id))
                                 .where(pw_user.c.is_active.is_(True)))
        found: dict[str, tuple[int, set]] = {}
        for user_id, username, role in rows:
            found.setdefault(username, (user_id, set()))[1].add(role)
        self.user_roles = {name: (uid, frozenset(r for r in roles if r)) for name, (uid, roles) in sorted(found.items())}

    def context(self, user_id: int | None) -> records.Context:
        if user_id not in self.contexts:
            actor = Actor(None) if user_id is None else actor_for_user(self.conn, user_id)
            self.contexts[user_id] = records.Context.start(self.conn, self.catalog, actor)
        return self.contexts[user_id]

    def pick_user(self, rng: random.Random, wanted: object) -> int | None:
        if isinstance(wanted, dict):
            roles = set(wanted.get("roles", ()))
            names = [n for n, (_, held) in self.user_roles.items() if held & roles]
        else:
            names = [n for n in (wanted if isinstance(wanted, list) else [wanted]) if n in self.user_roles]
        if not names:
            raise DemoDataError(f"no demo user matches {wanted!r}")
        return self.user_roles[rng.choice(names)][0]

    # records

    def entity(self, name: str, entity_spec: Mapping) -> None:
        entity = self.metadata.entities[name]
        rng = random.Random(f"{self.seed}:{name}")
        count = max(1, round(entity_spec.get("count", 0) * self.scale)) if entity_spec.get("count") else 0
        self.made.setdefault(name, [])
        self.by_id.setdefault(name, {})
        created = 0
        for start in range(0, count, CHUNK):
            rows = [self.row(rng, entity, entity_spec, n) for n in range(start + 1, min(count, start + CHUNK) + 1)]
            created += self.create(entity, rows)
        self.report.created[name] = created
        for index, step in enumerate(entity_spec.get("then", ())):
            self.step(rng, entity, step, index)

    def row(self, rng: random.Random, entity: Entity, entity_spec: Mapping, n: int) -> tuple[int | None, dict]:
        """(acting user, body) of record number `n`."""
        values: dict = {}
        for field_name, source in entity_spec.get("fields", {}).items():
            value = self.value(rng, entity, field_name, source, values, n)
            if value is not _BLANK:
                values[field_name] = value
        if "as" in entity_spec:
            actor = self.pick_user(rng, entity_spec["as"])
        else:
            actor = values.get("owner_id")
        return actor, {k: v for k, v in values.items() if v is not None or k == "owner_id"}

    def create(self, entity: Entity, rows: list[tuple[int | None, dict]]) -> int:
        """Create the rows, those of each acting user together, in their order within each user."""
        by_actor: dict[int | None, list[dict]] = {}
        for actor, body in rows:
            by_actor.setdefault(actor, []).append(body)
        created = 0
        for actor, bodies in by_actor.items():
            results = records.create_many(self.context(actor), entity.name, bodies)
            for body, result in zip(bodies, results):
                if isinstance(result, RequestError):
                    self.refuse(entity.name, body, result)
                else:
                    self.remember(entity.name, body | result)
                    created += 1
        return created

    def remember(self, name: str, record: dict) -> None:
        self.made[name].append(record)
        self.by_id[name][record["id"]] = record

    def refuse(self, name: str, body: Mapping, exc: RequestError) -> None:
        self.report.refusals += 1
        if len(self.report.refused) < 20:
            self.report.refused.append(f"{name} {dict(body)}: {exc.detail} {exc.errors or ''}")

    def step(self, rng: random.Random, entity: Entity, step: Mapping, index: int) -> None:
        """Move a share of the records that took the step before (all, for the first) on by an
        update, each as the step's user (`as`) or the record's owner."""
        key = f"_step{index - 1}"
        pool = [r for r in self.made[entity.name] if index == 0 or r.get(key)]
        share, done = step.get("share", 1), 0
        for record in pool:
            if not _matches(step.get("when", {}), record) or rng.random() >= share:
                continue
            values = {}
            for field_name, source in step.get("values", {}).items():
                value = self.value(rng, entity, field_name, source, record, 0)
                if value is not _BLANK:
                    values[field_name] = value
            actor = self.pick_user(rng, step["as"]) if "as" in step else record.get("owner_id")
            try:
                with self.conn.begin_nested():
                    result = self.move(self.context(actor), entity, record, step.get("action"), values)
            except RequestError as exc:
                self.refuse(entity.name, {"id": record["id"], "action": step.get("action"), **values}, exc)
                continue
            record.update(result)
            record[f"_step{index}"] = True
            done += 1
        self.report.updated[entity.name] = self.report.updated.get(entity.name, 0) + done

    @staticmethod
    def move(ctx: records.Context, entity: Entity, record: Mapping, action: str | None, values: dict) -> dict:
        """An update with `values`, or a run of the entity's `action` with them as its inputs."""
        if action is None:
            return records.update_record(ctx, entity.name, record["id"], values, record["version"])
        body = {"version": record["version"], "inputs": values}
        return records.run_action(ctx, entity.name, record["id"], action, body)["record"]

    def links(self, name: str, link_spec: Mapping) -> None:
        relation = self.metadata.relations[name]
        rng = random.Random(f"{self.seed}:{name}")
        sources, targets = self.made.get(relation.source, []), self.made.get(relation.target, [])
        fields = {f.name: f for f in relation.fields}
        count = round(link_spec.get("count", 0) * self.scale)
        seen, linked = set(), 0
        ctx = self.context(None)
        for _ in range(count * 3):
            if linked >= count or not sources or not targets:
                break
            source, target = rng.choice(sources)["id"], rng.choice(targets)["id"]
            if (source, target) in seen or (relation.source == relation.target and source == target):
                continue
            seen |= {(source, target), (target, source)}
            body = {"id": target}
            for field_name, value_source in link_spec.get("fields", {}).items():
                value = self._source(rng, fields[field_name], value_source, {}, 0)
                if value is not _BLANK and value is not None:
                    body[field_name] = value
            try:
                with self.conn.begin_nested():
                    records.link(ctx, relation.source, source, name, body)
            except RequestError as exc:
                self.refuse(name, body, exc)
                continue
            linked += 1
        self.report.linked[name] = linked

    # values

    def value(self, rng: random.Random, entity: Entity, field_name: str, source: object, values: Mapping,
              n: int) -> object:
        found = entity.field(field_name)
        if isinstance(source, list):  # alternatives: the first whose `when` matches
            source = next((s for s in source if not isinstance(s, dict) or _matches(s.get("when", {}), values)), None)
            if source is None:
                return _BLANK
        elif isinstance(source, dict) and not _matches(source.get("when", {}), values):
            return _BLANK
        return self._source(rng, found, source, values, n, entity)

    def _source(self, rng: random.Random, found: Field | None, source: object, values: Mapping, n: int,
                entity: Entity | None = None) -> object:
        if not isinstance(source, dict):
            return source
        if rng.random() < source.get("blank", 0):
            return None
        kind = found.value_type if found is not None else "reference"
        if "value" in source:
            return source["value"]
        if "choose" in source:
            return _choose(rng, source["choose"])
        if "some" in source:
            spec = source["some"]
            options = list(spec["from"])
            return rng.sample(options, rng.randint(spec.get("min", 1), min(spec.get("max", len(options)), len(options))))
        if "between" in source:
            return _number(rng, kind, source, found)
        if "days" in source:
            low, high = source["days"]
            day = self.today + timedelta(days=rng.randint(low, high))
            if kind == "datetime":
                start, end = source.get("hours", [8, 19])
                moment = datetime.combine(day, clock(rng.randrange(start, end), rng.choice((0, 15, 30, 45))),
                                          tzinfo=timezone.utc)
                return moment.isoformat().replace("+00:00", "Z")
            return day.isoformat()
        if "pattern" in source:
            pattern = source["pattern"]
            return self.pattern(rng, rng.choice(pattern) if isinstance(pattern, list) else pattern, values, n, entity)
        if "ref" in source:
            return self.ref(rng, found, source["ref"], values, entity)
        if "copy" in source:
            copied = self.path(source["copy"], values, entity)
            if "factor" in source and copied is not None:  # a share of a copied number
                low, high = source["factor"]
                return _number(rng, kind, {"between": [float(copied) * low, float(copied) * high],
                                           "round": source.get("round")}, found)
            return copied
        if "user" in source:
            return self.pick_user(rng, source["user"])
        raise DemoDataError(f"no value source in {source!r}")

    def ref(self, rng: random.Random, found: Field, how: object, values: Mapping, entity: Entity | None) -> object:
        """A record of the field's entity made so far: `where` keeps those whose fields hold the
        values given (a list: any of them; `{not: null}`: any value), `same` those whose field
        equals this record's (`same: {parent: parent}`)."""
        candidates = self.made.get(found.target, [])
        how = how if isinstance(how, dict) else {}
        wanted = {theirs: self.path(mine, values, entity) for theirs, mine in how.get("same", {}).items()}
        where = how.get("where", {})
        if wanted or where:
            candidates = [c for c in candidates if all(c.get(k) == v for k, v in wanted.items())
                          and _matches(where, c)]
        return rng.choice(candidates)["id"] if candidates else None

    def path(self, dotted: str, values: Mapping, entity: Entity | None) -> object:
        """`parent.owner_id`: this record's field, then the referenced record's fields."""
        first, *rest = dotted.split(".")
        value, current = values.get(first), entity
        for part in rest:
            target = current.field(first).target if current is not None and current.field(first) else None
            if value is None or target is None:
                return None
            record = self.by_id.get(target, {}).get(value)
            if record is None:
                return None
            value, current, first = record.get(part), self.metadata.entities[target], part
        return value

    def pattern(self, rng: random.Random, text: str, values: Mapping, n: int, entity: Entity | None) -> str:
        def fill(match: re.Match) -> str:
            name, form = match.group(1), match.group(2) or ""
            if name == "n":
                return format(n, form)
            if name in self.lists:
                return format(str(rng.choice(self.lists[name])), form)
            found = self.path(name, values, entity)
            return "" if found is None else format(str(found), form)
        return PLACEHOLDER.sub(fill, text)


class _Blank:
    """A field the spec leaves out of this record (so the field's default applies)."""


_BLANK = _Blank()


def _matches(when: Mapping, values: Mapping) -> bool:
    """Whether `values` hold what `when` asks: a value, any of a list, or `{not: X}`."""
    for name, wanted in when.items():
        value = values.get(name)
        if isinstance(wanted, dict) and "not" in wanted:
            if value in (wanted["not"] if isinstance(wanted["not"], list) else [wanted["not"]]):
                return False
        elif value not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def _choose(rng: random.Random, options: object) -> object:
    if isinstance(options, dict):
        return rng.choices(list(options), weights=list(options.values()))[0]
    return rng.choice(list(options))


def _number(rng: random.Random, kind: str, source: Mapping, found: Field | None) -> object:
    """A number between the bounds, skewed toward the low end by `skew` (a power), rounded to
    a multiple of `round`; whole for integer fields, decimal text for the others."""
    low, high = source["between"]
    drawn = low + (high - low) * rng.random() ** source.get("skew", 1)
    step = source.get("round")
    if step:
        drawn = round(drawn / step) * step
    if kind == "integer":
        return int(round(drawn))
    scale = 2 if found is None or found.scale is None else found.scale
    return str(Decimal(str(drawn)).quantize(Decimal(1).scaleb(-scale)))
