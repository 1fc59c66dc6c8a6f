"""The generated UI's record side: the form (new and edit, from the entity's layout), the detail
page (header, stage path, layout, related lists, history), delete, and the type-ahead a
reference picker asks. Every read and write goes through `runtime.records`; a refusal comes back
with its field messages and is shown next to the fields, with what the person typed kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app, request, url_for
from werkzeug.wrappers import Response

from packwork.errors import BadRequest, Conflict, NotFound, PermissionDenied, RequestError, ValidationError
from packwork.metadata.model import Entity, Field, Layout, Relation
from packwork.runtime import records, users
from packwork.runtime.listing import ListQuery
from packwork.runtime.records.relations import end_for, shape_of
from packwork.web.pages import Page, form_version, render_block, see_other, signed_in, whole_number
from packwork.web.present import Column, default_columns, layout_for, references_to
from packwork.web.ui import user_ids, blueprint, presenter, quick_filter
from packwork.web.widgets import Widgets

RELATED_LIMIT = 10
TIMELINE_LIMIT = 20  # per activity entity
LOOKUP_LIMIT = 10


def widgets() -> Widgets:
    return current_app.extensions["packwork_widgets"]


def form_fields(page: Page, entity: Entity, layout: Layout) -> list[Field]:
    """The layout's fields the reader may see, in order."""
    hidden = page.ctx.access.hidden(entity)
    return [f for name in layout.field_names() if (f := entity.field(name)) is not None
            and not f.hidden and name not in hidden]


def writable(page: Page, entity: Entity, fields: list[Field]) -> list[Field]:
    locked = page.ctx.access.read_only(entity)
    return [f for f in fields if not f.read_only and f.type != "computed" and f.name not in locked]


def _form(page: Page, entity: Entity, record: Mapping, record_id: int | None, errors: Mapping,
          message: str | None = None, status: int = 200, conflict: bool = False) -> Response:
    layout = layout_for(entity, record.get("record_type"))
    fields = form_fields(page, entity, layout)
    p = presenter(page, user_ids([record], [f.name for f in fields]))
    html = render_block("ui/form.html", "form_body", p=p, entity=entity, layout=layout, record=record,
                        record_id=record_id, errors=errors, message=message, conflict=conflict,
                        editable={f.name for f in writable(page, entity, fields)},
                        visible={f.name for f in fields}, assignees=users.active_users(page.ctx.conn),
                        titles=_reference_titles(page, entity, fields, record))
    return current_app.make_response((html, status))


def _reference_titles(page: Page, entity: Entity, fields: list[Field], record: Mapping) -> dict[str, str]:
    """The title shown in each reference picker for the record it holds now."""
    titles = {}
    for field in fields:
        value = record.get(field.name)
        if field.type != "reference" or value in (None, ""):
            continue
        if isinstance(value, Mapping):
            value = value.get("id")
        try:
            linked = records.get_record(page.ctx, field.target, int(value))
        except (RequestError, ValueError):
            titles[field.name] = f"#{value}"
            continue
        titles[field.name] = presenter(page).title(page.ctx.catalog.metadata.entities[field.target], linked)
    return titles


@blueprint.get("/r/<name>/new")
def new_form(name: str) -> Response:
    with signed_in() as page:
        entity = records.entity_for(page.ctx, name)
        page.ctx.access.require("create", entity)
        defaults = {f.name: f.default for f in entity.fields if f.default is not None}
        prefill = {k: v for k, v in request.args.items() if entity.field(k) is not None or k == "record_type"}
        return _form(page, entity, defaults | prefill, None, {})


@blueprint.post("/r/<name>/new")
def create(name: str) -> Response:
    with signed_in(write=True) as page:
        entity = records.entity_for(page.ctx, name)
        record_type = request.form.get("record_type") or None
        fields = writable(page, entity, form_fields(page, entity, layout_for(entity, record_type)))
        body, errors = widgets().parse(fields, request.form, page.session.time_zone)
        if entity.record_types:
            body["record_type"] = record_type
        typed = dict(request.form) | body
        if errors:
            return _form(page, entity, typed, None, errors, "Some values are not valid.", 422)
        try:
            with page.ctx.conn.begin_nested():
                saved = records.create_record(page.ctx, name, body)
        except (ValidationError, Conflict, PermissionDenied) as exc:
            return _form(page, entity, typed, None, exc.errors, exc.detail, exc.status)
    return see_other(url_for("ui.detail", name=name, record_id=saved["id"]))


@blueprint.get("/r/<name>/<int:record_id>")
def detail(name: str, record_id: int) -> Response:
    with signed_in() as page:
        return detail_page(page, name, record_id)


@dataclass(frozen=True)
class LinkRefusal:
    """A refused link, shown in its relation's form with what the person chose kept."""

    relation: str
    message: str
    errors: Mapping[str, list[str]]
    form: Mapping[str, str] = field(default_factory=dict)


def detail_page(page: Page, name: str, record_id: int, refused: LinkRefusal | None = None,
            status: int = 200, action_refused=None) -> Response:
    """The detail page; `refused` a link and `action_refused` (record_actions.ActionRefusal)
    an action the person just tried, shown with their messages."""
    ctx = page.ctx
    entity = records.entity_for(ctx, name)
    expand = [f.name for f in entity.fields if f.type == "reference" and f.name not in ctx.access.hidden(entity)
              and not f.hidden]
    record = records.get_record(ctx, name, record_id, expand)
    layout = layout_for(entity, record.get("record_type"))
    fields = form_fields(page, entity, layout)
    related = _related(page, entity, record_id)
    timeline = _timeline(page, entity, record_id)
    may = records.allowed_actions(ctx, name, record_id, ("update", "delete")) | \
        {"create": ctx.access.policy(name).reach("create").granted}
    linked = _linked(page, entity, record_id, may["update"])
    actions = records.available_actions(ctx, name, record_id)
    entries = records.history(ctx, name, record_id)
    ids = user_ids([record], [f.name for f in fields]) | {e["actor_id"] for e in entries if e["actor_id"]}
    people = {"owner_id", "created_by"} | {f.name for f in entity.fields if f.type == "user"}
    ids |= {v for e in entries for k, pair in e["changes"].items() if k in people for v in pair
            if isinstance(v, int)}
    ids |= user_ids([r for _, _, rows, _ in related for r in rows] + [e.record for e in timeline.entries],
                    ["owner_id"])
    ids |= user_ids([link["record"] for item in linked for link in item.links], ["owner_id"])
    p = presenter(page, ids)
    tab = "related" if refused else request.args.get("tab", "details")
    html = render_block("ui/detail.html", None, p=p, entity=entity, record=record, layout=layout, tab=tab,
                        visible={f.name for f in fields}, related=related, linked=linked, refused=refused,
                        timeline=timeline,
                        history=entries, assignees=users.active_users(ctx.conn),
                        may=may, actions=actions, action_refused=action_refused,
                        key_columns=p.columns(entity, default_columns(entity)[:5], ctx.access.hidden(entity)))
    return current_app.make_response((html, status))


def _readable_references(page: Page, entity: Entity) -> list[tuple[Entity, Field]]:
    return [(other, field) for other, field in references_to(page.ctx.catalog.metadata, entity.name)
            if page.ctx.access.policy(other.name).reach("read").granted
            and field.name not in page.ctx.access.hidden(other)]


def _related(page: Page, entity: Entity, record_id: int) -> list[tuple]:
    """(entity, field, rows, columns) for each entity whose reference points here, that the
    reader may read (activities are on the timeline instead)."""
    found = []
    for other, field in _readable_references(page, entity):
        if other.timeline is not None:
            continue
        rows = records.list_records(page.ctx, other.name, ListQuery(equals=((field.name, str(record_id)),),
                                                                   limit=RELATED_LIMIT)).data
        names = [c for c in default_columns(other) if c not in (field.name, other.title_field)][:4]
        columns = presenter(page).columns(other, names, page.ctx.access.hidden(other))
        found.append((other, field, rows, columns))
    return found


@dataclass(frozen=True)
class TimelineEntry:
    entity: Entity
    record: dict
    when: str | None  # the timeline date, as ISO text
    done: bool


@dataclass(frozen=True)
class Timeline:
    entries: list[TimelineEntry]  # open ones soonest first, then the past newest first
    new: list[tuple[Entity, Field]]  # what the reader may create here, and the reference it fills

    @property
    def open(self) -> list[TimelineEntry]:
        return [e for e in self.entries if not e.done]

    @property
    def past(self) -> list[TimelineEntry]:
        return [e for e in self.entries if e.done]


def _timeline(page: Page, entity: Entity, record_id: int) -> Timeline:
    """The activities that reference this record, from every entity with a timeline."""
    entries, new = [], []
    today = page.ctx.now.date().isoformat()
    for other, field in _readable_references(page, entity):
        spec = other.timeline
        if spec is None:
            continue
        if page.ctx.access.policy(other.name).reach("create").granted:
            new.append((other, field))
        rows = records.list_records(page.ctx, other.name, ListQuery(
            equals=((field.name, str(record_id)),), sort=f"-{spec.date}", limit=TIMELINE_LIMIT)).data
        for row in rows:
            when = row.get(spec.date)
            done = bool(row.get(spec.done)) if spec.done else (when is not None and str(when) < today)
            entries.append(TimelineEntry(other, row, str(when) if when is not None else None, done))
    open_ = sorted((e for e in entries if not e.done), key=lambda e: (e.when is None, e.when or ""))
    past = sorted((e for e in entries if e.done), key=lambda e: e.when or "", reverse=True)
    return Timeline(open_ + past, new)


@dataclass(frozen=True)
class LinkedList:
    """A many-to-many relation's links on the detail page, and how to add one."""

    relation: Relation
    shape: Entity  # the relation's own fields, as an entity the presenter can show
    other: Entity
    links: list[dict]
    total: int
    columns: list[Column]  # of the linked records
    may_link: bool
    picker: Field  # the reference picker that chooses the record to link

    @property
    def prefix(self) -> str:
        """Form control ids unique on the page (several relations may share field names)."""
        return f"l-{self.relation.name}-"


def _linked(page: Page, entity: Entity, record_id: int, may_update: bool) -> list[LinkedList]:
    """Each relation of `entity` whose far end the reader may read."""
    ctx, found = page.ctx, []
    for end in records.ends_of(ctx, entity):
        other = ctx.catalog.metadata.entities[end.other]
        if not ctx.access.policy(other.name).reach("read").granted:
            continue
        listed = records.list_links(ctx, entity.name, record_id, end.relation.name, RELATED_LIMIT)
        names = [c for c in default_columns(other) if c != other.title_field][:3]
        found.append(LinkedList(
            end.relation, shape_of(end.relation), other, listed["data"], listed["total"],
            presenter(page).columns(other, names, ctx.access.hidden(other)), may_update,
            Field("id", "reference", other.label, required=True, target=other.name)))
    return found


@blueprint.post("/r/<name>/<int:record_id>/links/<relation>")
def add_link(name: str, record_id: int, relation: str) -> Response:
    with signed_in(write=True) as page:
        end = end_for(page.ctx, records.entity_for(page.ctx, name), relation)  # 404 for no such relation
        body, errors = widgets().parse(list(end.relation.fields), request.form, page.session.time_zone)
        other_id = whole_number(request.form.get("id"))
        if other_id is None:
            errors["id"] = ["choose a record"]
        message, status = "Some values are not valid.", 422
        if not errors:
            try:
                with page.ctx.conn.begin_nested():
                    records.link(page.ctx, name, record_id, relation, {"id": other_id} | body)
                return see_other(url_for("ui.detail", name=name, record_id=record_id, tab="related"))
            except (BadRequest, ValidationError, Conflict, PermissionDenied, NotFound) as exc:
                message, status = exc.detail, exc.status
                errors = dict(exc.errors) or {"id": [exc.detail]}
        return detail_page(page, name, record_id, LinkRefusal(relation, message, errors, request.form.to_dict()), status)


@blueprint.post("/r/<name>/<int:record_id>/links/<relation>/<int:link_id>/delete")
def remove_link(name: str, record_id: int, relation: str, link_id: int) -> Response:
    with signed_in(write=True) as page:
        records.unlink(page.ctx, name, record_id, relation, link_id)
    return see_other(url_for("ui.detail", name=name, record_id=record_id, tab="related"))


@blueprint.get("/r/<name>/<int:record_id>/edit")
def edit_form(name: str, record_id: int) -> Response:
    with signed_in() as page:
        entity = records.entity_for(page.ctx, name)
        page.ctx.access.require("update", entity)
        return _form(page, entity, records.get_record(page.ctx, name, record_id), record_id, {})


@blueprint.post("/r/<name>/<int:record_id>/edit")
def update(name: str, record_id: int) -> Response:
    with signed_in(write=True) as page:
        entity = records.entity_for(page.ctx, name)
        current = records.get_record(page.ctx, name, record_id)
        record_type = request.form.get("record_type") or current.get("record_type")
        fields = writable(page, entity, form_fields(page, entity, layout_for(entity, record_type)))
        body, errors = widgets().parse(fields, request.form, page.session.time_zone)
        typed = dict(current) | dict(request.form) | body
        if errors:
            return _form(page, entity, typed, record_id, errors, "Some values are not valid.", 422)
        try:
            with page.ctx.conn.begin_nested():
                records.update_record(page.ctx, name, record_id, body, form_version())
        except Conflict as exc:
            stale = "version" in exc.errors
            message = "This record was changed by someone else since you opened it." if stale else exc.detail
            return _form(page, entity, typed, record_id, {} if stale else exc.errors, message, 409, conflict=stale)
        except (ValidationError, PermissionDenied) as exc:
            return _form(page, entity, typed, record_id, exc.errors, exc.detail, exc.status)
    return see_other(url_for("ui.detail", name=name, record_id=record_id))


@blueprint.post("/r/<name>/<int:record_id>/delete")
def delete(name: str, record_id: int) -> Response:
    with signed_in(write=True) as page:
        records.delete_record(page.ctx, name, record_id, form_version())
    return see_other(url_for("ui.list_page", name=name, deleted=1))


@blueprint.get("/r/<name>/lookup")
def lookup(name: str) -> str:
    """Type-ahead for a reference picker: the first records whose search fields match `q`."""
    with signed_in() as page:
        entity = records.entity_for(page.ctx, name)
        condition = quick_filter(entity, page.ctx.access.hidden(entity), request.args.get("q", ""))
        rows = records.list_records(page.ctx, name, ListQuery(filter=condition, limit=LOOKUP_LIMIT)).data
        return render_block("ui/lookup.html", None, p=presenter(page), entity=entity, rows=rows,
                            field=request.args.get("field", ""))
