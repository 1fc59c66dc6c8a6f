"""Creating many records at once (import): each row is refused or written exactly as
`create_record` would refuse or write it had the rows been created one by one, in order, each
seeing those before it; but a batch costs a few statements rather than a dozen a row.

For a batch of rows, in order:
1. each body on its own: the actor's grants and owner scope, values, defaults, record type;
2. the references and unique values of the whole batch, one query per field;
3. row by row: its references, its unique values (against the table and the rows before it),
   then its rules (validations, computed fields, triggers that may run before the INSERT);
4. the rows that passed: one multi-row INSERT, the triggers left for after it, one audit
   insert for all of them, inside one savepoint.

A row the batch cannot decide as the single create would is created the single way in its turn,
after the rows before it are written: a reference the lookup did not find (it may name a row of
this batch), a unique value an earlier row of the batch holds too, or rules that read the
database (they might have seen the rows before it). If the database refuses the INSERT, or a
trigger after it refuses the row or touches the database, the savepoint is rolled back and its
rows are created the single way, a savepoint each, so that exactly the bad rows are refused. An
entity whose validations may create records is always created the single way."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from packwork.errors import Conflict, RequestError
from packwork.rules.engine import EntityRules
from packwork.runtime import audit
from packwork.runtime.records import business_rules, core, writes
from packwork.runtime.records.core import Context, Target
from packwork.runtime.records.inserts import Unordered, insert_rows
from packwork.runtime.system import pw_user

CHUNK = 500  # rows decided and written together
# unique values compared in Python as the database compares them (text exactly, integers)
COMPARABLE = frozenset({"text", "email", "phone", "url", "choice", "stage", "integer", "reference", "user"})

Result = Mapping | RequestError


def create_many(ctx: Context, name: str, rows: Sequence[object], action: str = "create") -> list[dict | RequestError]:
    """Create each of `rows` as `create_record` would; per row, the record as it returns it or
    the error it would raise. `action` "import" also requires the import grant (403 for the
    whole call) and limits new records' owners to its scope."""
    target = core.target_for(ctx, name, action if action == "import" else None)
    stored = store_many(ctx, name, rows, action)
    dumped = iter(core.dump_many(ctx, target, [r for r in stored if not isinstance(r, RequestError)]))
    return [r if isinstance(r, RequestError) else next(dumped) for r in stored]


def store_many(ctx: Context, name: str, rows: Sequence[object], action: str = "create") -> list[Result]:
    """`create_many`, returning the stored rows, unfiltered, for a caller that shows no record."""
    target = core.target_for(ctx, name, action if action == "import" else None)
    results: list[Result] = []
    with _counting(ctx.conn) as statements:
        for start in range(0, len(rows), CHUNK):
            results += _Batch(ctx, target, action, statements).run(rows[start:start + CHUNK])
    return results


def database_refused(exc: sa.exc.DBAPIError) -> RequestError:
    """A row a constraint only the database knows refused (the single create raises it as is)."""
    return Conflict(f"the database refused the row: {str(getattr(exc, 'orig', exc)).splitlines()[0][:200]}")


@dataclass(slots=True)
class _Ready:
    index: int
    values: dict
    later: tuple  # the triggers that run after the INSERT


class _Statements:
    """How many statements the connection has run: rules that ran none read nothing."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args) -> None:
        self.count += 1


@contextmanager
def _counting(conn: sa.Connection) -> Iterator[_Statements]:
    statements = _Statements()
    sa.event.listen(conn, "before_cursor_execute", statements)
    try:
        yield statements
    finally:
        sa.event.remove(conn, "before_cursor_execute", statements)


class _Batch:
    """One chunk of rows: their results, the rows that passed and wait to be written, and the
    unique values the chunk's rows hold (a later row with one of them is created in turn)."""

    def __init__(self, ctx: Context, target: Target, action: str, statements: _Statements):
        self.ctx, self.target, self.action, self.statements = ctx, target, action, statements
        self.rows: Sequence[object] = ()
        self.results: list[Result | None] = []
        self.pending: list[_Ready] = []
        self.taken: dict[str, set] = {name: set() for name in target.values.unique}  # by this batch's rows

    def run(self, rows: Sequence[object]) -> list[Result]:
        self.rows, self.results = rows, [None] * len(rows)
        try:
            checks = writes.creating(self.ctx, self.target, self.action)
        except RequestError as exc:  # as every single create would be refused
            return [exc] * len(rows)
        if _may_create_when_checking(business_rules.rules_of(self.ctx, self.target)):
            return [self.single(index) for index in range(len(rows))]
        loaded = {}
        for index, data in enumerate(rows):
            try:
                loaded[index] = writes.new_values(self.ctx, self.target, checks, data)
            except RequestError as exc:
                self.results[index] = exc
        lookups = _Lookups(self.ctx, self.target, list(loaded.values()))
        for index, values in loaded.items():
            self.decide(index, values, lookups)
        self.flush()
        return self.results

    def decide(self, index: int, values: dict, lookups: _Lookups) -> None:
        """Refuse the row, or keep it for the next write; or, when the batch cannot tell what
        the single create would do, create it that way in its turn."""
        try:
            if not lookups.sure(values, self.taken):
                return self.in_turn(index)
        except RequestError as exc:  # a unique value already stored
            self.results[index] = exc
            return
        before, refused = self.statements.count, None
        try:
            values, later = writes.with_create_rules(self.ctx, self.target, values)
        except RequestError as exc:
            refused = exc
        if self.statements.count != before and self.pending:
            return self.in_turn(index)  # the rules read the database: it must hold the rows before
        if refused is not None:
            self.results[index] = refused
        else:
            self.pending.append(_Ready(index, values, later))
            self.claim(values)

    def in_turn(self, index: int) -> None:
        """The single create, once the rows before this one are written."""
        self.flush()
        self.results[index] = self.single(index)

    def single(self, index: int) -> Result:
        try:
            with self.ctx.conn.begin_nested():  # a refused row leaves nothing, even after its INSERT
                row = writes.insert_row(self.ctx, self.target, self.rows[index], self.action)
        except RequestError as exc:
            return exc
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            return database_refused(exc)
        self.claim(row)
        return row

    def claim(self, values: Mapping) -> None:
        for name, taken in self.taken.items():
            if values.get(name) is not None:
                taken.add(values[name])

    def flush(self) -> None:
        """Write the rows that passed, or, if anything after their INSERT went wrong, create
        them the single way."""
        ready, self.pending = self.pending, []
        if not ready:
            return
        try:
            with self.ctx.conn.begin_nested():
                stored = self.write(ready)
        except (_Redo, Unordered, RequestError, sa.exc.IntegrityError, sa.exc.DataError):
            for item in ready:
                self.results[item.index] = self.single(item.index)
            return
        for item, row in zip(ready, stored):
            self.results[item.index] = row

    def write(self, ready: list[_Ready]) -> list[Mapping]:
        ctx, target = self.ctx, self.target
        stored = insert_rows(ctx.conn, ctx.catalog, target.entity.name, [item.values for item in ready],
                             writes.system_values(ctx))
        entries = []
        for position, (item, row) in enumerate(zip(ready, stored)):
            set_by_rules = {}
            if item.later:
                before = self.statements.count
                row, set_by_rules = business_rules.after_insert(ctx, target, row, item.later)
                if self.statements.count != before:  # it read or wrote what later rows' INSERT changed
                    raise _Redo
                stored[position] = row
            entries.append((row["id"], writes.creation_changes(target, row, item.values, set_by_rules)))
        audit.record_each(ctx.conn, target.entity.name, "create", ctx.actor.user_id, ctx.now, entries)
        return stored


class _Redo(Exception):
    """The rows of a batch must be created one by one after all."""


def _may_create_when_checking(rules: EntityRules) -> bool:
    """Whether a validation or stage gate may create records: its effects would outlive its
    row's refusal unless each row has a savepoint of its own."""
    checks = list(rules.validations) + [c for gate in rules.gates.values() for c in gate]
    return any("create" in c.code.loaded for c in checks)


class _Lookups:
    """The batch's references and unique values, looked up with one query per field."""

    def __init__(self, ctx: Context, target: Target, bodies: list[dict]):
        self.ctx, self.target = ctx, target
        self.found = {name: _live_ids(ctx, linked, self._values(bodies, name, self._linked))
                      for name, linked in target.values.references.items()}
        fields = target.values.writable
        self.used = {name: _used(ctx, target, name, self._values(bodies, name, dict.get))
                     for name in target.values.unique if fields[name].type in COMPARABLE}

    @staticmethod
    def _values(bodies: list[dict], name: str, value_of) -> set:
        return {value for body in bodies if (value := value_of(body, name)) is not None}

    def _linked(self, values: Mapping, name: str) -> int | None:
        value = values.get(name)
        if name == "owner_id" and value == self.ctx.actor.user_id:
            return None  # the actor exists: the request was authenticated as them
        return value

    def sure(self, values: Mapping, taken: Mapping[str, set]) -> bool:
        """Whether the lookups decide the row as the single create would: False if it must
        be created the single way; Conflict (its message naming the record) if a unique value
        is already used."""
        for name, found in self.found.items():
            value = self._linked(values, name)
            if value is not None and (found is None or value not in found):
                return False
        errors = {}
        for name in self.target.values.unique:
            value = values.get(name)
            if value is None:
                continue
            used = self.used.get(name)
            if used is None or value in taken[name]:
                return False
            if value in used:
                errors[name] = [f"{value!r} is already used by {self.target.entity.name} {used[value]}"]
        if errors:
            raise Conflict("a unique value is already taken", errors)
        return True


def _live_ids(ctx: Context, linked: str, ids: set[int]) -> frozenset[int] | None:
    """Which of `ids` are live records of `linked` the actor can see (None: cannot say)."""
    if not ids:
        return frozenset()
    if linked == "pw_user":
        query = sa.select(pw_user.c.id).where(pw_user.c.id.in_(sorted(ids)))
    else:
        try:
            other = core.target_for(ctx, linked)
        except RequestError:
            return None  # the single create names the problem
        table = other.table
        query = sa.select(table.c.id).where(table.c.id.in_(sorted(ids)), table.c.deleted_at.is_(None),
                                            *core.scope(ctx, other))
    return frozenset(ctx.conn.execute(query).scalars())


def _used(ctx: Context, target: Target, name: str, values: set) -> dict:
    """The live records holding each of `values` in the unique field `name`: value -> id."""
    if not values:
        return {}
    table = target.table
    statement = ctx.catalog.derived(("batch_used", target.entity.name, name), lambda: sa.select(
        table.c[name], table.c.id).where(table.c[name].in_(sa.bindparam("values", expanding=True)),
                                         table.c.deleted_at.is_(None)))
    return {value: record_id for value, record_id in ctx.conn.execute(statement, {"values": sorted(values)})}
