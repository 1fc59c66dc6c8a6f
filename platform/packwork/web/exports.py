"""Records as a downloadable file: CSV, or XLSX written by openpyxl in write-only mode. Cells a
spreadsheet would run as a formula are prefixed with a quote (CSV injection), in both.

Exports are streamed: `streamed` runs the reading transaction inside the response's body, so a
CSV goes out as its pages are read and an XLSX is built in a temporary file (kept in memory
while small) and then sent in chunks; neither holds all the records in memory."""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager

from openpyxl import Workbook

KINDS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
ROWS_PER_CHUNK = 500
CHUNK_BYTES = 64 * 1024
IN_MEMORY_BYTES = 8 * 1024 * 1024  # a larger workbook goes to a temporary file on disk


def streamed(unit_of_work: Callable[[], AbstractContextManager], kind: str,
             export: Callable[[object], tuple[list[str], Iterable[Mapping]]]) -> Iterator[bytes]:
    """The body of a `kind` export: `export(ctx)` (columns and rows) inside `unit_of_work()`,
    run as the body is sent. The first record is read before this returns, so what refuses the
    export (no grant, a bad filter, read when the first page is) is raised here, before the
    response begins."""
    def body() -> Iterator[bytes]:
        with unit_of_work() as ctx:
            columns, rows = export(ctx)
            rows = iter(rows)
            first = next(rows, None)
            yield b""
            rows = itertools.chain([first] if first is not None else [], rows)
            yield from (csv_chunks(columns, rows) if kind == "csv" else xlsx_chunks(columns, rows))
    chunks = body()
    first = next(chunks)
    return itertools.chain([first], chunks)


def csv_chunks(columns: list[str], rows: Iterable[Mapping]) -> Iterator[bytes]:
    """Rows as CSV, in UTF-8 chunks of ROWS_PER_CHUNK rows (the header alone first); a
    multi-choice list is joined with ';'."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield _taken(out)
    for batch in _batched(rows):  # (itertools.batched, from Python 3.12)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in batch)
        yield _taken(out)


def xlsx_chunks(columns: list[str], rows: Iterable[Mapping]) -> Iterator[bytes]:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(columns)
    for row in rows:
        sheet.append([_cell(row.get(c)) for c in columns])
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as out:
        book.save(out)
        out.seek(0)
        while chunk := out.read(CHUNK_BYTES):
            yield chunk


def _taken(out: io.StringIO) -> bytes:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text.encode()


def _batched(rows: Iterable[Mapping]) -> Iterator[tuple[Mapping, ...]]:
    iterator = iter(rows)
    while batch := tuple(itertools.islice(iterator, ROWS_PER_CHUNK)):
        yield batch


def _cell(value: object) -> object:
    if isinstance(value, Mapping):  # an expanded reference: its id
        value = value.get("id")
    if isinstance(value, list):
        value = ";".join(map(str, value))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
