"""Many new rows into one entity table with one statement, and their stored rows back in the
order they were given: the INSERT of `records.batch`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter

import sqlalchemy as sa

from packwork.runtime.catalog import Catalog


class Unordered(Exception):
    """The database did not number the new rows in the order given, so nothing tells which
    stored row is which: roll back and insert them one by one."""


def insert_rows(conn: sa.Connection, catalog: Catalog, name: str, rows: list[Mapping],
                shared: Mapping) -> list[Mapping]:
    """Insert one row per item of `rows` (column -> value, with `shared` over every row; a
    column neither names is NULL, as in a single INSERT). Returns the stored rows, as an
    INSERT ... RETURNING of each would, in the same order."""
    if conn.dialect.name == "sqlite":
        insert = catalog.derived(("insert_rows", name, conn.dialect),
                                 lambda: _SqliteInsert(catalog.tables[name], conn.dialect))
        return insert.run(conn, rows, shared)
    table = catalog.tables[name]
    # SQLAlchemy batches this into multi-row INSERTs whose RETURNING it sorts back into the
    # order of the parameters (PostgreSQL numbers the rows of INSERT ... SELECT ... ORDER BY in order)
    statement = catalog.derived(("insert_rows", name), lambda: table.insert().returning(
        *table.c, sort_by_parameter_order=True))
    keys = [c.name for c in table.c if c.name != "id"]
    return conn.execute(statement, [{k: row.get(k) for k in keys} | shared for row in rows]).mappings().all()


class _SqliteInsert:
    """On SQLite, SQLAlchemy can only keep RETURNING in parameter order by inserting row by
    row, and its handling of each row's parameters costs more than the insert. This renders
    `INSERT ... VALUES (...), (...) RETURNING *` once per row count, applies SQLAlchemy's own
    conversions of each column's type, and orders the rows by id: SQLite gives each new row
    the largest id so far plus one, so the rows of one INSERT get consecutive ids in the order
    of its VALUES (unless the largest id is 2**63 - 1; then `Unordered`)."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect):
        quote = dialect.identifier_preparer.quote
        self.columns = tuple(c.name for c in table.c if c.name != "id")
        binds = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns]
        self.binds = tuple((i, bind) for i, bind in enumerate(binds) if bind is not None)
        self.bind_of = dict(zip(self.columns, binds))
        self.keys = tuple(c.name for c in table.c)
        results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in table.c]
        self.results = tuple((i, result, _immutable(c.type)) for i, (c, result) in enumerate(zip(table.c, results))
                             if result is not None)
        self.id_at = self.keys.index("id")
        self.head = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
                     f"({', '.join(quote(name) for name in self.columns)}) VALUES ")
        self.values = "(" + ", ".join("?" * len(self.columns)) + ")"
        self.tail = " RETURNING " + ", ".join(quote(name) for name in self.keys)
        limit = 32766 if dialect.dbapi.sqlite_version_info >= (3, 32) else 999  # SQLITE_MAX_VARIABLE_NUMBER
        self.per_statement = max(1, min(500, limit // len(self.columns)))
        self._sql: dict[int, str] = {}

    def run(self, conn: sa.Connection, rows: list[Mapping], shared: Mapping) -> list[Mapping]:
        stored = []
        for start in range(0, len(rows), self.per_statement):
            part = rows[start:start + self.per_statement]
            stored += conn.exec_driver_sql(self.sql(len(part)), self.parameters(part, shared)).all()
        stored.sort(key=itemgetter(self.id_at))
        first = stored[0][self.id_at] if stored else 0
        if [row[self.id_at] for row in stored] != list(range(first, first + len(rows))):
            raise Unordered(f"{len(rows)} new rows were not numbered from {first} in order")
        return self.rows(stored)

    def sql(self, count: int) -> str:
        found = self._sql.get(count)
        if found is None:
            found = self._sql[count] = self.head + ", ".join([self.values] * count) + self.tail
        return found

    def parameters(self, rows: list[Mapping], shared: Mapping) -> tuple:
        """The VALUES' parameters, flat, converted as SQLAlchemy would; `shared` once."""
        fixed = [(i, self._bound(name, shared[name])) for i, name in enumerate(self.columns) if name in shared]
        binds = [(i, bind) for i, bind in self.binds if self.columns[i] not in shared]
        flat = []
        for row in rows:
            values = list(map(row.get, self.columns))
            for i, bind in binds:
                values[i] = bind(values[i])
            for i, value in fixed:
                values[i] = value
            flat += values
        return tuple(flat)

    def _bound(self, key: str, value: object) -> object:
        bind: Callable | None = self.bind_of.get(key)
        return value if bind is None else bind(value)

    def rows(self, stored: list[sa.Row]) -> list[dict]:
        """The driver's rows converted as SQLAlchemy converts them. Many rows hold the same
        values (the time of the import, a default): an immutable result is reused per value."""
        converting = [(i, result, {} if reusable else None) for i, result, reusable in self.results]
        found = []
        for values in stored:
            converted = list(values)
            for i, result, seen in converting:
                raw = converted[i]
                if seen is None:
                    converted[i] = result(raw)
                elif raw in seen:
                    converted[i] = seen[raw]
                else:
                    converted[i] = seen[raw] = result(raw)
            found.append(dict(zip(self.keys, converted)))
        return found


def _immutable(kind: sa.types.TypeEngine) -> bool:
    """Whether the column's values are immutable (numbers, text, dates, times), not a JSON list."""
    try:
        return kind.python_type in (Decimal, date, datetime, bool, int, float, str)
    except NotImplementedError:
        return False
