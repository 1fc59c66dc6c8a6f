"""Records as a downloadable file: CSV, or XLSX written by openpyxl in write-only mode. Cells a
spreadsheet would run as a formula are prefixed with a quote (CSV injection), in both."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from openpyxl import Workbook

KINDS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def csv_text(columns: list[str], rows: Iterable[Mapping]) -> str:
    """Rows as CSV; a multi-choice list is joined with ';'."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def xlsx_bytes(columns: list[str], rows: Iterable[Mapping]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(columns)
    for row in rows:
        sheet.append([_cell(row.get(c)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(kind: str, columns: list[str], rows: Iterable[Mapping]) -> tuple[str | bytes, str]:
    """(body, mimetype) of `rows` as a `kind` file (one of KINDS)."""
    body = csv_text(columns, rows) if kind == "csv" else xlsx_bytes(columns, rows)
    return body, KINDS[kind]


def _cell(value: object) -> object:
    if isinstance(value, Mapping):  # an expanded reference: its id
        value = value.get("id")
    if isinstance(value, list):
        value = ";".join(map(str, value))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
