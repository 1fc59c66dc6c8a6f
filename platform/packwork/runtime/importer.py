"""Import: the rows of a CSV or XLSX file written through the record service, so each row gets
exactly the checks an API write gets (the import grant and its owner scope, validation, rules,
audit, version checks), and a report names every refused row by its row number in the file.

The whole import runs inside one savepoint of the caller's transaction: a dry run, or an
all-or-nothing import with a bad row, rolls it back after every row has been checked (so all
bad rows are reported, and later rows are checked against the earlier ones as if they were
kept). Rows are read and written in batches: a batch's key matches are found with one query,
its new records are created together by `records.batch` (which refuses exactly the rows single
creates would refuse, and leaves nothing of them), a row that updates a record is written on
its own in a savepoint, and progress is reported per batch."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

import sqlalchemy as sa

from packwork.errors import RequestError
from packwork.runtime import records
from packwork.runtime.import_files import ColumnMap, ImportFileError, Rows, Table, map_columns, read_table
from packwork.runtime.listing import ListQuery
from packwork.runtime.records import Context
from packwork.runtime.records import core
from packwork.runtime.records.batch import database_refused, store_many
from packwork.runtime.permissions import Actor
from packwork.runtime.system import pw_share, pw_team_member, pw_user, pw_user_role
from packwork.runtime.text_values import Unparsable, parser_for

MODES = ("all_or_nothing", "skip_bad")
BATCH = records.MAX_BULK


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    field: str  # "" when the refusal is about the whole row
    message: str


@dataclass
class ImportReport:
    entity: str
    mode: str
    dry_run: bool
    created: int = 0  # rows that were (or, unless `written`, would have been) created
    updated: int = 0
    rows: int = 0  # data rows read
    errors: list[RowError] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # column -> why it was not imported
    written: bool = False  # whether the good rows were kept

    @property
    def failed(self) -> int:
        return len({e.row for e in self.errors})

    def failed_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors})

    def csv_text(self) -> str:
        """The per-row error report, as a file a person can open next to theirs."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["row", "field", "message"])
        writer.writerows([e.row, e.field, e.message] for e in self.errors)
        return out.getvalue()

    def as_json(self) -> dict:
        return {"entity": self.entity, "mode": self.mode, "dry_run": self.dry_run, "written": self.written,
                "rows": self.rows, "created": self.created, "updated": self.updated, "failed": self.failed,
                "ignored_columns": self.ignored,
                "errors": [{"row": e.row, "field": e.field, "message": e.message} for e in self.errors]}


Progress = Callable[[ImportReport], None]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    mode: str = "all_or_nothing"
    keys: tuple[str, ...] = ()  # a row matching a record on these fields updates it
    mapping: Mapping[str, str] = field(default_factory=dict)  # column header -> field name
    dry_run: bool = False
    time_zone: str = "UTC"  # for date-times written without an offset
    batch_size: int = BATCH
    progress: Progress | None = None  # called after each batch


def import_file(ctx: Context, name: str, data: bytes, filename: str | None = None,
                options: ImportOptions = ImportOptions()) -> ImportReport:
    """Import a CSV or XLSX file's rows into entity `name`, as `ctx.actor`."""
    return import_table(ctx, name, read_table(data, filename), options)


def import_table(ctx: Context, name: str, table: Table, options: ImportOptions = ImportOptions()) -> ImportReport:
    if options.mode not in MODES:
        raise ImportFileError(f"mode must be one of {', '.join(MODES)}", {"mode": [f"is not one of {MODES}"]})
    target = core.target_for(ctx, name, "import")  # 403 before a row is read
    columns = map_columns(target.entity, target.values, table.header, options.mapping,
                          core.hidden_keys(ctx, target))
    missing = [k for k in options.keys if k not in columns.keys()]
    if missing:
        raise ImportFileError(f"the key field(s) {', '.join(missing)} are not columns of the file",
                              {k: ["is a key but no column maps to it"] for k in missing})
    report = ImportReport(name, options.mode, options.dry_run, ignored=columns.ignored)
    run = _Run(ctx, name, columns, options, report)
    kept = ctx.conn.begin_nested()
    try:
        for batch in _batches(table.rows, options.batch_size):
            run.batch(batch)
            if options.progress is not None:
                options.progress(report)
    except BaseException:
        kept.rollback()
        raise
    if options.dry_run or (options.mode == "all_or_nothing" and report.errors):
        kept.rollback()
    else:
        kept.commit()
        report.written = True
    return report


def _batches(rows: Rows, size: int) -> Iterator[list[tuple[int, list[str]]]]:
    while batch := list(islice(rows, size)):
        yield batch


class _Run:
    """One import's state: the parsed columns, the key matches found so far, lookups made."""

    def __init__(self, ctx: Context, name: str, columns: ColumnMap, options: ImportOptions, report: ImportReport):
        self.ctx, self.name, self.columns, self.options, self.report = ctx, name, columns, options, report
        self.target = core.target_for(ctx, name)
        self.matches: dict[tuple, list[tuple[int, int]]] = {}  # key values -> [(id, version)]
        self.looked_up: set[tuple] = set()
        self.resolved: dict[tuple[str, str], int | str] = {}  # (kind, text) -> id, or the message
        # per column: where its text is, the key it fills, its field and the field type's parser
        self.parsers = tuple((c.index, key, c.field, parse) for c in columns.columns
                             for key, parse in [parser_for(c.field, c.currency)])

    def batch(self, batch: list[tuple[int, list[str]]]) -> None:
        parsed = []
        for number, cells in batch:
            body, errors = self.parse(cells)
            self.report.rows += 1
            if errors:
                self.report.errors += [RowError(number, k, m) for k, ms in errors.items() for m in ms]
            else:
                parsed.append((number, body))
        if self.options.keys:
            self.find_matches([body for _, body in parsed])
        self.write_all(parsed)

    def parse(self, cells: list[str]) -> tuple[dict, dict[str, list[str]]]:
        body, errors = {}, {}
        count, time_zone, resolve = len(cells), self.options.time_zone, self.resolve
        for index, key, column_field, parse in self.parsers:
            try:
                body[key] = parse(column_field, cells[index] if index < count else "", time_zone, resolve)
            except Unparsable as exc:
                errors[column_field.name] = [str(exc)]
        return body, errors

    def write_all(self, parsed: list[tuple[int, dict]]) -> None:
        """In file order: runs of new records are created together; a row whose key matches
        a record (one already there, or one an earlier row of the run creates) updates it
        once the rows before it are written."""
        run: list[tuple[int, dict]] = []
        keys: set[tuple] = set()
        for number, body in parsed:
            key = self.key_of(body)
            if key is not None and (key in self.matches or key in keys):
                self.create(run)
                run, keys = [], set()
                self.write(number, body)
            else:
                run.append((number, body))
                if key is not None:
                    keys.add(key)
        self.create(run)

    def create(self, run: list[tuple[int, dict]]) -> None:
        if not run:
            return
        results = store_many(self.ctx, self.name, [body for _, body in run], action="import")
        for (number, body), result in zip(run, results):
            if isinstance(result, RequestError):
                self.report.errors += _refusal(number, result)
                continue
            key = self.key_of(body)
            if key is not None:  # a later row with the same key updates this record
                self.matches[key] = [(result["id"], result["version"])]
            self.report.created += 1

    def key_of(self, body: Mapping) -> tuple | None:
        """Key values compared as text: the file's "7" and the column's 7 are one key."""
        if not self.options.keys or any(body.get(k) in (None, "") for k in self.options.keys):
            return None
        return tuple(str(body[k]) for k in self.options.keys)

    def find_matches(self, bodies: list[dict]) -> None:
        """The records the batch's keys match, in one query over what the actor may read: a
        match the actor may not update is then refused by name, never duplicated silently."""
        wanted = {key for body in bodies if (key := self.key_of(body)) is not None} - self.looked_up
        if not wanted:
            return
        self.looked_up |= wanted
        table = self.target.table
        columns = [table.c[k] for k in self.options.keys]
        if len(columns) == 1:
            condition = sa.cast(columns[0], sa.String).in_([key[0] for key in wanted])
        else:
            condition = sa.tuple_(*[sa.cast(c, sa.String) for c in columns]).in_(list(wanted))
        found = self.ctx.conn.execute(sa.select(table.c.id, table.c.version, *columns).where(
            table.c.deleted_at.is_(None), condition, *core.scope(self.ctx, self.target)))
        for row in found.mappings():
            key = tuple(str(row[k]) for k in self.options.keys)
            self.matches.setdefault(key, []).append((row["id"], row["version"]))

    def write(self, number: int, body: dict) -> None:
        key = self.key_of(body)
        matches = self.matches.get(key, []) if key is not None else []
        if len(matches) > 1:
            self.report.errors.append(RowError(number, ",".join(self.options.keys),
                                               f"matches {len(matches)} records; the keys must pick one"))
            return
        row = {"id": matches[0][0], "version": matches[0][1]} | body if matches else body
        try:
            with self.ctx.conn.begin_nested():  # a refused row leaves nothing, even after its INSERT
                written = records.bulk_write(self.ctx, self.name, [row], action="import")[0]
        except RequestError as exc:
            self.report.errors += _row_errors(number, exc)
            return
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:  # a constraint only the database knows
            self.report.errors += _refusal(number, database_refused(exc))
            return
        if key is not None:  # a later row with the same key updates this record
            self.matches[key] = [(written["id"], written["version"])]
        if matches:
            self.report.updated += 1
        else:
            self.report.created += 1

    def resolve(self, field, text: str) -> int:
        """A user by username, a reference by its target's title (when exactly one matches)."""
        kind = "pw_user" if field.type == "user" else field.target
        cache = (kind, text)
        if cache not in self.resolved:
            self.resolved[cache] = self._user(text) if kind == "pw_user" else self._titled(kind, text)
        found = self.resolved[cache]
        if isinstance(found, str):
            raise Unparsable(found)
        return found

    def _user(self, username: str) -> int | str:
        found = self.ctx.conn.execute(sa.select(pw_user.c.id).where(pw_user.c.username == username)).scalar()
        return found if found is not None else f"there is no user {username!r}"

    def _titled(self, entity: str, title: str) -> int | str:
        title_field = self.ctx.catalog.metadata.entities[entity].title_field
        if title_field is None:
            return f"must be the id of a {entity} record"
        quoted = title.replace("'", "''")
        try:  # through the record service: only records the actor may read can be found
            page = records.list_records(self.ctx, entity, ListQuery(
                filter=f"{title_field} = '{quoted}'", fields=("id",), limit=2))
        except RequestError as exc:
            return f"cannot look up {entity} by title: {exc.detail}"
        if not page.data:
            return f"there is no {entity} {title!r}"
        if len(page.data) > 1:
            return f"more than one {entity} is called {title!r}; give its id"
        return page.data[0]["id"]


def actor_for_user(conn: sa.Connection, user_id: int) -> Actor:
    """The actor a user is when they sign in (roles, team, language, shares), for an import run
    from the command line on their behalf."""
    roles = conn.execute(sa.select(pw_user_role.c.role).where(pw_user_role.c.user_id == user_id)).scalars()
    language = conn.execute(sa.select(pw_user.c.language).where(pw_user.c.id == user_id)).scalar() or "en"
    team = conn.execute(sa.select(pw_team_member.c.team_id).where(pw_team_member.c.user_id == user_id)).scalar()
    # over-approximated (any share at all): it only decides whether shares are looked up
    shared = conn.execute(sa.select(sa.exists().where(sa.or_(
        pw_share.c.user_id == user_id, pw_share.c.team_id.is_not(None))))).scalar()
    return Actor(user_id, frozenset(roles), language, team, bool(shared))


def _refusal(number: int, exc: RequestError) -> list[RowError]:
    """A create's own refusal: its errors name fields as they are."""
    if not exc.errors:
        return [RowError(number, "", exc.detail)]
    return [RowError(number, "" if name == "_" else name, m) for name, messages in exc.errors.items()
            for m in messages]


def _row_errors(number: int, exc: RequestError) -> list[RowError]:
    """bulk_write names fields `index.field`; this import sends one row at a time."""
    if not exc.errors:
        return [RowError(number, "", exc.detail)]
    result = []
    for key, messages in exc.errors.items():
        name = key.split(".", 1)[1] if "." in key else key
        result += [RowError(number, "" if name == "_" else name, m) for m in messages]
    return result
