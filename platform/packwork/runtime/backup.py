"""`packwork backup` and `packwork restore`, for SQLite and PostgreSQL.

SQLite goes through the online backup API (`sqlite3.Connection.backup`): one consistent
snapshot, taken while the application keeps reading and writing. PostgreSQL goes through
`pg_dump --format=custom` and `pg_restore` in a single transaction, so a failed restore
leaves the target as it was. A backup file's first bytes say which kind it is, and a restore
refuses a file of the other kind before it touches anything."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from packwork.errors import PackworkError
from packwork.runtime.db import make_engine, normalize_url, reading
from packwork.runtime.db_check import Report, check_url, shown_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
KINDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
FILE_KINDS = {"sqlite": "an SQLite database file", "postgresql": "a PostgreSQL dump (pg_dump custom format)"}
PG_BIN = Path("/usr/bin")  # Debian's wrappers pick the client matching the server; tried after PATH


class BackupError(PackworkError):
    status = 400
    code = "OPS-E001"


class RestoreRefused(BackupError):
    """The restore would overwrite data or mix database kinds; nothing was changed."""

    status = 409
    code = "OPS-E409"


@dataclass(frozen=True, slots=True)
class Backup:
    kind: str
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Restored:
    kind: str
    path: Path
    check: Report  # `db check` on the restored database


def database_kind(url: str) -> str:
    try:
        kind = make_url(normalize_url(url)).get_backend_name()
    except sa.exc.ArgumentError:
        raise BackupError(f"not a database URL: {url!r}") from None
    if kind not in KINDS:
        raise BackupError(f"cannot back up or restore {kind} databases: only SQLite and PostgreSQL")
    return kind


def file_kind(path: Path) -> str:
    """Which kind of backup `path` is, from its first bytes (never from its name)."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise RestoreRefused(f"{path} is not a Packwork backup: neither an SQLite database nor a pg_dump "
                         "custom-format archive; nothing was changed")


# -- backing up -----------------------------------------------------------------------------

def backup(url: str, out: Path) -> Backup:
    """Write a backup of the database at `url` to `out` (replacing it only once complete)."""
    kind = database_kind(url)
    with _partial_file(out) as partial:
        if kind == "sqlite":
            _backup_sqlite(_sqlite_path(url), partial)
        else:
            _run("pg_dump", ["--format=custom", "--no-owner", f"--file={partial}"], url)
    return Backup(kind, out, out.stat().st_size)


@contextmanager
def _partial_file(out: Path) -> Iterator[Path]:
    """A file beside `out` to write into, renamed to `out` when whole: a failure half-way
    never leaves a truncated file under the backup's name, and an older backup of that name
    survives until the new one is complete. Readable by the owner only: a backup holds
    password hashes and session secrets."""
    if out.is_dir():
        raise BackupError(f"{out} is a folder; name the backup file")
    if not out.parent.is_dir():
        raise BackupError(f"folder {out.parent} does not exist")
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise BackupError(f"cannot write {out}: {error.strerror}") from None
    try:
        yield partial
        os.replace(partial, out)
    except OSError as error:
        raise BackupError(f"cannot write {out}: {error.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)


def _backup_sqlite(source: Path, partial: Path) -> None:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    with _sqlite_errors(source), closing(sqlite3.connect(source, timeout=10)) as db, \
            closing(sqlite3.connect(partial)) as copy:
        db.backup(copy)
        # The copy inherits the source's WAL mode; a backup should be one self-contained file
        copy.execute("PRAGMA journal_mode=DELETE")


# -- restoring ------------------------------------------------------------------------------

def restore(url: str, source: Path, *, force: bool = False) -> Restored:
    """Replace the database at `url` with the backup in `source`, then check it. Refuses a
    backup of the other database kind, and a database that holds data unless `force`."""
    kind = database_kind(url)
    found = file_kind(source)
    if found != kind:
        raise RestoreRefused(f"{source} is {FILE_KINDS[found]}: it can only be restored into a {KINDS[found]} "
                             f"database, not into this {KINDS[kind]} one; nothing was changed")
    if not force:
        _refuse_if_data(url)
    if kind == "sqlite":
        _restore_sqlite(source, _sqlite_path(url))
    else:
        # --clean --if-exists drops what the dump holds before recreating it; --single-transaction
        # makes that and the whole load one transaction (and stops at the first error)
        _run("pg_restore", ["--clean", "--if-exists", "--no-owner", "--single-transaction", str(source)], url)
    return Restored(kind, source, check_url(url))


def _refuse_if_data(url: str) -> None:
    full = tables_with_rows(url)
    if full:
        shown = ", ".join(full[:3]) + (f" and {len(full) - 3} more" if len(full) > 3 else "")
        raise RestoreRefused(f"{shown_url(url)} already holds data ({shown}); restoring would replace it. "
                             "Re-run with --force to overwrite it; nothing was changed")


def tables_with_rows(url: str) -> list[str]:
    """The tables of the database at `url` that hold at least one row, in every user schema."""
    if database_kind(url) == "sqlite" and not _sqlite_path(url).exists():
        return []  # connecting would create the file; there is nothing in it anyway
    engine = make_engine(url)
    try:
        with reading(engine) as conn, conn.begin():
            inspector = sa.inspect(conn)
            names = [(schema, name) for schema in _user_schemas(inspector)
                     for name in inspector.get_table_names(schema=schema)]
            return [name if schema is None else f"{schema}.{name}" for schema, name in names
                    if conn.execute(sa.select(sa.literal(1)).select_from(sa.table(name, schema=schema))
                                    .limit(1)).first()]
    except sa.exc.OperationalError as error:
        raise BackupError(f"cannot read the database {shown_url(url)}: {_first_line(str(error.orig))}") from None
    finally:
        engine.dispose()


def _user_schemas(inspector: sa.Inspector) -> list[str | None]:
    if inspector.dialect.name == "sqlite":
        return [None]
    return [s for s in inspector.get_schema_names() if s != "information_schema" and not s.startswith("pg_")]


def _restore_sqlite(source: Path, target: Path) -> None:
    if target.exists() and target.resolve() == source.resolve():
        raise RestoreRefused(f"{source} is the database itself; nothing was changed")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    # Read-only, so restoring never writes to the backup file (not even a journal beside it)
    with _sqlite_errors(source), closing(sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)) as db:
        damage = db.execute("PRAGMA quick_check").fetchone()[0]
        if damage != "ok":
            raise BackupError(f"{source} is damaged ({damage}); nothing was changed")
        # The backup API writes the target in one transaction of its own: all pages or none
        with closing(sqlite3.connect(target, timeout=10)) as copy:
            db.backup(copy)


# -- helpers --------------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up or restore")
    return Path(database)


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise BackupError(f"SQLite failed on {path}: {error}") from None


def libpq_command(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the child environment carrying the password as
    PGPASSWORD: on a command line it would be visible to every user of the machine (ps)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    # URL.set(password=None) means "leave the password as it is"; the NamedTuple's _replace removes it
    plain = parsed._replace(password=None).set(drivername="postgresql")
    return plain.render_as_string(hide_password=False), env


def _run(tool: str, args: list[str], url: str) -> None:
    binary = shutil.which(tool) or (str(PG_BIN / tool) if (PG_BIN / tool).is_file() else None)
    if binary is None:
        raise BackupError(f"{tool} not found: install the PostgreSQL client tools")
    dbname, env = libpq_command(url)
    result = subprocess.run([binary, f"--dbname={dbname}", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{tool} failed: {_first_line(result.stderr)}")


def _first_line(text: str) -> str:
    """The line of a tool's error output that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    return (errors or lines or ["(no message)"])[0]
