"""How metadata and records look on a page: navigation, columns, layouts, titles and the text of
a value in the reader's language and time zone. Nothing here reads the database; the pages hand
it what the record service returned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from packwork.metadata.model import Entity, Field, Layout, Metadata, Section, Tab, Label
from packwork.web.i18n import translate

SYSTEM_LABELS = {"id": "#", "owner_id": "Owner", "created_at": "Created", "updated_at": "Updated",
                 "created_by": "Created by", "record_type": "Record type"}
NUMERIC = frozenset({"integer", "decimal", "money", "percent"})


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    field: Field | None  # None for a system column
    sortable: bool = True

    @property
    def numeric(self) -> bool:
        return self.field is not None and self.field.value_type in NUMERIC


@dataclass(frozen=True, slots=True)
class NavGroup:
    label: str
    entities: tuple[tuple[str, str], ...]  # (entity name, plural label)


class Presenter:
    """One page's way of showing things: its language, time zone, metadata and user names."""

    def __init__(self, metadata: Metadata, language: str, time_zone: str, users: Mapping[int, str] | None = None):
        self.metadata, self.language, self.time_zone = metadata, language, time_zone
        self.zone = ZoneInfo(time_zone)
        self.users = dict(users or {})

    def label(self, label: Label | None, fallback: str = "") -> str:
        return label.get(self.language) if label is not None else fallback

    def word(self, text: str) -> str:
        return translate(text, self.language)

    def nav(self, readable: Iterable[str]) -> list[NavGroup]:
        """The entities the reader may open, grouped and ordered as the packs declare."""
        readable = set(readable)
        groups = sorted(self.metadata.groups, key=lambda g: (g.order, g.name))
        by_group: dict[str | None, list[Entity]] = {}
        for entity in self.metadata.entities.values():
            if entity.name in readable and not entity.hidden:
                by_group.setdefault(entity.group, []).append(entity)
        result = [NavGroup(self.label(g.label), tuple((e.name, self.label(e.plural)) for e in by_group.pop(g.name)))
                  for g in groups if g.name in by_group]
        rest = [e for entities in by_group.values() for e in entities]
        if rest:
            result.append(NavGroup(self.word("Other"), tuple((e.name, self.label(e.plural)) for e in rest)))
        return result

    def columns(self, entity: Entity, names: Iterable[str], hidden: frozenset[str]) -> list[Column]:
        result = []
        for name in names:
            field = entity.field(name)
            if field is not None and not field.hidden and name not in hidden:
                result.append(Column(name, self.label(field.label), field,
                                     field.has_column and field.type not in ("multi_choice", "long_text")))
            elif field is None and name in SYSTEM_LABELS:
                result.append(Column(name, self.word(SYSTEM_LABELS[name]), None))
        return result

    def title(self, entity: Entity, record: Mapping) -> str:
        value = record.get(entity.title_field) if entity.title_field else None
        if isinstance(value, Mapping):
            value = value.get("id")
        return str(value) if value not in (None, "") else f"{self.label(entity.label)} #{record.get('id')}"

    def table_rows(self, entity: Entity, columns: list[Column], records: list[Mapping], detail_url: str,
                   selectable: bool) -> Markup:
        """A list page's `<tr>`s, built here in one pass: per-cell template expressions cost
        more than the query (measured with bench/ui.py). Every text is escaped exactly once;
        ids are integers and `detail_url` comes from url_for."""
        classes = [' class="num"' if c.numeric else "" for c in columns]
        prefix = str(escape(detail_url))
        parts = []
        for record in records:
            record_id = int(record["id"])
            title = str(escape(self.title(entity, record)))
            texts = [str(escape(self._column_text(column, record))) for column in columns]
            first = texts[0] if texts and texts[0] else title
            parts.append("<tr>")
            if selectable:
                parts.append(f'<td><input type="checkbox" name="ids" value="{record_id}" aria-label="{title}"></td>')
            parts.append(f'<td{classes[0] if classes else ""}><a href="{prefix}{record_id}">{first}</a></td>')
            parts += [f"<td{cell_class}>{text}</td>" for cell_class, text in zip(classes[1:], texts[1:])]
            parts.append("</tr>\n")
        return Markup("".join(parts))

    def _column_text(self, column: Column, record: Mapping) -> str:
        return self._text_of(column.key, column.field, record)

    def text(self, column: Column | Field | str, entity: Entity, record: Mapping) -> str:
        """A value as plain text (templates escape it)."""
        key = column if isinstance(column, str) else column.key if isinstance(column, Column) else column.name
        return self._text_of(key, entity.field(key), record)

    def _text_of(self, key: str, field: Field | None, record: Mapping) -> str:
        value = record.get(key)
        if value is None or value == "" or value == []:
            return ""
        return self._system(key, value) if field is None else self._value(field, value, record)

    def _system(self, key: str, value: object) -> str:
        if key in ("owner_id", "created_by"):
            return self.users.get(value, f"#{value}")
        if key in ("created_at", "updated_at"):
            return self.moment(value)
        return str(value)

    def _value(self, field: Field, value: object, record: Mapping) -> str:
        kind = field.value_type
        if kind in ("choice", "stage"):
            return self.choice(field, value)
        if kind == "multi_choice":
            return ", ".join(self.choice(field, v) for v in value)
        if kind == "boolean":
            return self.word("yes" if value else "no")
        if kind == "money":
            currency = record.get(f"{field.name}_currency") or ""
            return f"{_grouped(value)} {currency}".strip()
        if kind == "percent":
            return f"{value}%"
        if kind in ("decimal", "integer"):
            return _grouped(value)
        if kind == "datetime":
            return self.moment(value)
        if kind == "user":
            return self.users.get(value, f"#{value}") if not isinstance(value, Mapping) else \
                value.get("display_name") or value.get("username") or ""
        if kind == "reference" and isinstance(value, Mapping):
            target = self.metadata.entities[field.target]
            return self.title(target, value)
        if kind == "reference":
            return f"#{value}"
        return str(value)

    def key_label(self, entity: Entity, key: str) -> str:
        """The label of a field or system column, as a history entry names it."""
        field = entity.field(key.removesuffix("_currency")) if key.endswith("_currency") else entity.field(key)
        if field is not None:
            return self.label(field.label)
        if key in self.metadata.relations:  # a link or unlink names the relation
            return self.label(self.metadata.relations[key].label)
        return self.word(SYSTEM_LABELS[key]) if key in SYSTEM_LABELS else key

    def change_text(self, entity: Entity, key: str, value: object) -> str:
        """One side of a history entry's change, shown like the value itself (or a dash)."""
        field = entity.field(key)
        if field is not None and field.type == "money":
            return _grouped(value) if value is not None else "—"
        return self.text(key, entity, {key: value}) or "—"

    def choice(self, field: Field, value: object) -> str:
        found = next((c for c in field.choices if c.value == value), None)
        return self.label(found.label) if found else str(value)

    def moment(self, value: object) -> str:
        """An ISO datetime shown in the reader's time zone."""
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M") if moment.tzinfo else str(value)

    def local_input(self, value: object) -> str:
        """An ISO datetime as the `datetime-local` input wants it, in the reader's zone."""
        if not value:
            return ""
        try:
            return datetime.fromisoformat(str(value)).astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")
        except ValueError:
            return str(value)

    def link(self, field: Field, record: Mapping) -> tuple[str, int] | None:
        """(entity, id) a reference value points at, when there is one."""
        value = record.get(field.name)
        if field.type != "reference" or value is None:
            return None
        return field.target, value["id"] if isinstance(value, Mapping) else value


def _grouped(value: object) -> str:
    text = str(value)
    whole, dot, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    if not digits.isdigit():
        return text
    return f"{sign}{int(digits):,}{dot}{fraction}"


def layout_for(entity: Entity, record_type: str | None) -> Layout:
    """The record type's layout, else the default one, else every visible field in one section."""
    layouts = entity.layouts
    chosen = next((l for l in layouts if record_type and l.record_type == record_type), None) \
        or next((l for l in layouts if l.record_type is None), None) or (layouts[0] if layouts else None)
    if chosen is not None:
        return chosen
    names = tuple(f.name for f in entity.fields if not f.hidden)
    return Layout("default", (Tab("main", entity.label, (Section("main", entity.label, 2, names),)),))


def default_columns(entity: Entity) -> tuple[str, ...]:
    if entity.list_views:
        return entity.list_views[0].columns
    names = [entity.title_field] if entity.title_field else []
    names += [n for n in entity.search_fields if n not in names]
    names += [f.name for f in entity.fields if f.name not in names and not f.hidden][: max(0, 5 - len(names))]
    return tuple(names) + ("owner_id",)


def sort_text(keys) -> str | None:
    """A list view's sort keys as the API's `sort` text (`-close_date,name`)."""
    return ",".join(("-" if k.descending else "") + k.field for k in keys) or None


def references_to(metadata: Metadata, entity: str) -> list[tuple[Entity, Field]]:
    """Every (entity, reference field) that points at `entity`: the detail page's related lists."""
    return [(other, field) for other in metadata.entities.values() if not other.hidden
            for field in other.fields if field.type == "reference" and field.target == entity and not field.hidden]
