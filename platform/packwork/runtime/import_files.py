"""The file side of import: a CSV or XLSX file as a header and rows of text, and the header's
columns matched to an entity's writable keys. No database here; `runtime.importer` writes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

from packwork.errors import BadRequest
from packwork.metadata.model import Choice, Entity, Field, Label
from packwork.runtime.values import SYSTEM_READ_ONLY, EntityValues

XLSX_MAGIC = b"PK\x03\x04"  # a zip archive: what every .xlsx file is
Rows = Iterator[tuple[int, list[str]]]  # (row number in the file, header = 1; the cells as text)


class ImportFileError(BadRequest):
    """The file cannot be read as a table, or its header cannot be mapped (400)."""

    code = "IMP-E400"


@dataclass(frozen=True, slots=True)
class Table:
    header: list[str]
    rows: Rows


def read_table(data: bytes, filename: str | None = None) -> Table:
    """CSV (UTF-8, with or without a BOM) or XLSX, told apart by content, not by name."""
    if data.startswith(XLSX_MAGIC) or (filename or "").lower().endswith(".xlsx"):
        return _read_xlsx(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"the file is not UTF-8 text (byte {exc.start}); save it as CSV UTF-8 or XLSX") \
            from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(f"the file is not valid CSV: {exc}") from None
    if not header or not any(cell.strip() for cell in header):
        raise ImportFileError("the file is empty: its first row must name the columns")
    return Table([cell.strip() for cell in header], _csv_rows(reader))


def _csv_rows(reader) -> Rows:
    try:
        for cells in reader:
            if "".join(cells).strip():  # a blank line is not a record
                yield reader.line_num, cells
    except csv.Error as exc:
        raise ImportFileError(f"the file is not valid CSV at line {reader.line_num}: {exc}") from None


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook  # only imports that need it pay for it
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise ImportFileError(f"the file is not a readable XLSX workbook: {exc}") from None
    lines = book.worksheets[0].iter_rows(values_only=True)
    header = next(lines, None)
    if not header or not any(cell_text(c).strip() for c in header):
        raise ImportFileError("the first sheet is empty: its first row must name the columns")
    return Table([cell_text(c).strip() for c in header], _xlsx_rows(lines, book))


def _xlsx_rows(lines, book) -> Rows:
    try:
        for number, cells in enumerate(lines, start=2):
            texts = [cell_text(c) for c in cells]
            if any(t.strip() for t in texts):
                yield number, texts
    finally:
        book.close()  # read-only workbooks keep the archive open until closed


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a person would have typed: 3.0 is "3", a date ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return (value.date() if value.time() == time() else value).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class Column:
    index: int  # position in the file's rows
    header: str
    field: Field
    currency: bool = False  # the currency key of a money field, not its amount


@dataclass(frozen=True, slots=True)
class ColumnMap:
    columns: tuple[Column, ...]
    ignored: dict[str, str]  # header -> why it is not imported (reported, never dropped silently)

    def keys(self) -> frozenset[str]:
        return frozenset(c.field.name for c in self.columns if not c.currency)


def importable_fields(entity: Entity, values: EntityValues) -> dict[str, Field]:
    """The keys an import may write: writable fields, plus owner and record type. The two
    system keys get a field of their own so they parse like any user or choice field."""
    found = dict(values.writable)
    found["owner_id"] = Field("owner_id", "user", Label("Owner", "负责人"))
    if entity.record_types:
        found["record_type"] = Field("record_type", "choice", Label("Record type", "记录类型"),
                                     choices=tuple(Choice(r.name, r.label) for r in entity.record_types))
    return found


def map_columns(entity: Entity, values: EntityValues, header: list[str], mapping: Mapping[str, str],
                hidden: frozenset[str] = frozenset()) -> ColumnMap:
    """Each header to a field by `mapping` (column -> field name), else by the field's name or
    label in English or Chinese, case-insensitive. `hidden` fields are matched as if absent."""
    fields = {n: f for n, f in importable_fields(entity, values).items() if n not in hidden}
    by_text = _lookup(fields)
    unknown = sorted(set(mapping) - set(header))
    if unknown:
        raise ImportFileError(f"the mapping names columns the file does not have: {', '.join(unknown)}",
                              {c: ["is not a column of the file"] for c in unknown})
    columns, ignored, taken = [], {}, {}
    for index, text in enumerate(header):
        if text in mapping:
            found = _explicit(fields, mapping[text], text)
        else:
            found = by_text.get(text.casefold())
        if found is None:
            ignored[text or f"column {index + 1}"] = _why_not(entity, values, text, hidden)
            continue
        field, currency = found
        key = field.name + ("_currency" if currency else "")
        if key in taken:
            raise ImportFileError(f"columns {taken[key]!r} and {text!r} both map to {key!r}",
                                  {text: [f"maps to {key!r} like column {taken[key]!r}"]})
        taken[key] = text
        columns.append(Column(index, text, field, currency))
    return ColumnMap(tuple(columns), ignored)


def _lookup(fields: Mapping[str, Field]) -> dict[str, tuple[Field, bool]]:
    """Names first, then labels: a label never shadows another field's name."""
    texts: dict[str, tuple[Field, bool]] = {}
    for field in fields.values():
        for text in (field.label.zh, field.label.en):
            texts[text.casefold()] = (field, False)
    for field in fields.values():
        if field.type == "money":
            texts[f"{field.name}_currency"] = (field, True)
        texts[field.name.casefold()] = (field, False)
    return texts


def _explicit(fields: Mapping[str, Field], name: str, header: str) -> tuple[Field, bool]:
    base, currency = (name.removesuffix("_currency"), True) if name.endswith("_currency") else (name, False)
    field = fields.get(base) or fields.get(name)
    if field is None or (currency and field.type != "money" and field.name != name):
        raise ImportFileError(f"column {header!r} is mapped to {name!r}, which is not a field you can import",
                              {header: [f"{name!r} is not an importable field"]})
    return field, currency and field.name != name


def _why_not(entity: Entity, values: EntityValues, header: str, hidden: frozenset[str]) -> str:
    field = values.fields.get(header) if header not in hidden else None  # hidden: as if absent
    if header in SYSTEM_READ_ONLY:
        return "is set by the system"
    if field is not None and field.type == "computed":
        return "is computed"
    if field is not None:
        return "is read-only"
    return f"matches no field of {entity.name!r} by name or label"
