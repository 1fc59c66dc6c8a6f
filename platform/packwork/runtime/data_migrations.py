"""Data migrations packs ship: rule code run once per migration when a pack is upgraded.

    migrations:
      fill_display_name:
        version: 2.0.0                   # the pack version that brings it
        entity: vehicle
        filter: display_name is null     # optional: the records it visits
        code: |
          record.display_name = concat(record.make, ' ', record.model)

Planning (`pending`) picks, for each pack a plan installs or upgrades, the migrations whose
`version` is above the version installed (on install, those declared `on_install`) and that
`pw_data_migration` does not record as run. Applying (`run`, called by `migrate.apply` after the
schema change, in its transaction) visits each one's records as a scheduled rule does: as the
platform, through the record service (validations, computed fields, triggers, audit entries),
in batches by id. Anything that refuses or breaks stops the whole upgrade with a
MigrationFailed naming the pack file and line, the migration and the record, and the
transaction rolls back: version, columns and data as they were. Each migration that ran gets
its row in `pw_data_migration`, in the same transaction, so it never runs twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from packwork.errors import PackworkError, RequestError
from packwork.metadata.checks import code_line
from packwork.metadata.checks_migrations import version_key
from packwork.metadata.filters import parse_filter
from packwork.metadata.model import Metadata, Migration
from packwork.metadata.physical import Schema
from packwork.metadata.problems import Problem, json_path
from packwork.rules import engine
from packwork.rules.errors import RuleError
from packwork.runtime import packstore, records
from packwork.runtime.catalog import Catalog
from packwork.runtime.permissions import Actor
from packwork.runtime.query import compile_filter
from packwork.runtime.records import business_rules, core
from packwork.runtime.system import pw_data_migration
from packwork.runtime.tables import build_tables

BATCH = 500


class MigrationFailed(PackworkError):
    """A data migration refused or broke on a record: the upgrade is rolled back."""

    status = 422
    code = "MIG-E003"

    def __init__(self, migration: Migration, record: str, where: str, what: str):
        self.migration, self.record, self.where, self.what = migration, record, where, what
        super().__init__(f"{where}: data migration {migration.pack}.{migration.name} failed on {record}: {what}; "
                         "the upgrade was rolled back and nothing was changed")


@dataclass(frozen=True, slots=True)
class Pending:
    """A migration a plan runs, and the installed version it upgrades from (None: an install)."""

    migration: Migration
    since: str | None

    def describe(self) -> str:
        m = self.migration
        when = f"upgrade from {self.since}" if self.since else "install"
        where = f" where {m.filter}" if m.filter else ""
        return (f"run data migration {m.pack}.{m.name} ({m.version}, on {when}) over the {m.entity} "
                f"records{where} ({m.origin.file}:{m.origin.line})")


def pending(conn: sa.Connection, metadata: Metadata, packs: Iterable[str], existing: set[str]) -> list[Pending]:
    """The migrations installing or upgrading `packs` to `metadata` runs, in pack order and by
    version: those above the installed version (on install, those declared `on_install`) that
    have not run. `existing` holds the database's table names."""
    packs = set(packs)
    installed = packstore.installed_packs(conn)
    done = ran(conn) if pw_data_migration.name in existing else set()
    order = {p.name: index for index, p in enumerate(metadata.packs)}
    chosen = []
    for migration in metadata.migrations:
        if migration.pack not in packs or (migration.pack, migration.name) in done:
            continue
        since = installed.get(migration.pack)
        if since is None and not migration.on_install:
            continue
        if since is not None and version_key(migration.version) <= version_key(since):
            continue
        chosen.append(Pending(migration, since))
    return sorted(chosen, key=lambda p: (order[p.migration.pack], version_key(p.migration.version)))


def ran(conn: sa.Connection) -> set[tuple[str, str]]:
    """(pack, name) of every migration recorded as run."""
    return set(conn.execute(sa.select(pw_data_migration.c.pack, pw_data_migration.c.name)).all())


def forget(conn: sa.Connection, packs: list[str]) -> None:
    """Forget that the migrations of `packs` ran: their data is purged, so if installed again
    they start afresh."""
    conn.execute(pw_data_migration.delete().where(pw_data_migration.c.pack.in_(packs)))


def code_problems(migrations: Iterable[Migration]) -> list[Problem]:
    """What the sandbox's compiler refuses in the migrations' code (an import, a `_name`...),
    as pack problems: `pack validate` and every plan check this before anything runs."""
    problems = []
    for migration in migrations:
        try:
            engine.compile_one(migration.rule)
        except RuleError as error:
            origin = migration.origin
            problems.append(Problem("PACK-E040", origin.file, error.line or code_line(origin, 1),
                                    json_path(origin.path + ("code",)), f"migration code refused: {error.message}"))
    return problems


Progress = Callable[[str], None]


def run(conn: sa.Connection, metadata: Metadata, schema: Schema, migrations: list[Pending],
        progress: Progress) -> None:
    """Run `migrations` over the database as it is after the schema change (`schema`, the
    metadata version just recorded in this transaction), and record each as run."""
    catalog = Catalog(packstore.current_version_id(conn), metadata, build_tables(schema))
    versions = {p.name: p.version for p in metadata.packs}
    for item in migrations:
        migration = item.migration
        ctx = records.Context.start(conn, catalog, Actor(None))
        visited, changed = run_one(ctx, migration)
        conn.execute(pw_data_migration.insert().values(
            pack=migration.pack, name=migration.name, version=migration.version,
            pack_version=versions[migration.pack], entity=migration.entity, visited=visited, changed=changed,
            ran_at=datetime.now(timezone.utc)))
        progress(f"data migration {migration.pack}.{migration.name}: {changed} of {visited} "
                 f"{migration.entity} record(s) changed")


def run_one(ctx: records.Context, migration: Migration) -> tuple[int, int]:
    """Visit the live records the migration's filter selects, in batches by id, and write what
    its code changes through the record service. Returns (visited, changed)."""
    compiled = engine.compile_one(migration.rule)
    target = core.target_for(ctx, migration.entity)
    table = target.table
    selected = [table.c.deleted_at.is_(None)]
    if migration.filter:
        selected.append(compile_filter(parse_filter(migration.filter), target.entity, core.filter_context(ctx)))
    visited = changed = last_id = 0
    while True:
        rows = ctx.conn.execute(sa.select(table).where(*selected, table.c.id > last_id)
                                .order_by(table.c.id).limit(BATCH)).mappings().all()
        if not rows:
            return visited, changed
        batch = []
        for row in rows:
            visited += 1
            try:
                changes = business_rules.run_scheduled(ctx, target, compiled, row)
            except RequestError as exc:
                raise _failed(migration, row["id"], exc, own=True) from None
            if changes:
                batch.append((row, changes))
        try:
            refused = records.update_read_rows(ctx, migration.entity, batch)
        except sa.exc.DBAPIError as exc:
            first, last = batch[0][0]["id"], batch[-1][0]["id"]
            raise MigrationFailed(migration, f"{migration.entity} {first}-{last}", _code_at(migration),
                                  f"the database refused the writes: {str(exc.orig).splitlines()[0]}") from None
        if refused:
            record_id, exc = next(iter(refused.items()))
            raise _failed(migration, record_id, exc, own=False)
        changed += len(batch)
        last_id = rows[-1]["id"]


def _failed(migration: Migration, record_id: int, exc: RequestError, own: bool) -> MigrationFailed:
    """Where and why, for the migration's `own` code or for the write of what it changed: a
    broken rule knows its file and line; a refusal names its fields."""
    record = f"{migration.entity} {record_id}"
    cause = exc.__context__  # the RuleError a RuleFailed was made of
    if isinstance(cause, RuleError):
        where = f"{cause.file}:{cause.line}" if cause.file and cause.line else _code_at(migration)
        what = f"the code broke: {cause.message}" if own else \
            f"rule {cause.rule} broke while the record was written: {cause.message}"
        return MigrationFailed(migration, record, where, what)
    fields = "; ".join(f"{field}: {', '.join(messages)}" for field, messages in exc.errors.items())
    if own and fields:
        return MigrationFailed(migration, record, _code_at(migration), f"the code called error(): {fields}")
    return MigrationFailed(migration, record, _code_at(migration), f"{exc.detail}: {fields}" if fields else exc.detail)


def _code_at(migration: Migration) -> str:
    return f"{migration.origin.file}:{code_line(migration.origin, 1)}"
