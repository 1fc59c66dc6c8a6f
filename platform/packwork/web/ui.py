"""The generated UI's list side: start page, global search, list views (with saved views, quick
search, sort, keyset pages, mass actions, export) and kanban boards. Records are read and
written only through `runtime.records`; this module turns requests into its calls and its
answers into pages. No entity is named here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flask import Response, current_app, g, jsonify, redirect, request, url_for

from packwork.errors import BadRequest, NotFound, QueryTimeout
from packwork.metadata.access import ADMIN_ROLE
from packwork.metadata.filters import FilterError, parse_filter
from packwork.metadata.model import Entity
from packwork.runtime import records, saved_views, users
from packwork.runtime.listing import ListQuery, split_names
from packwork.runtime.values import EntityValues
from packwork.web import exports
from packwork.web.pages import Page, form_version, local_path, render_block, signed_in, stoppable, \
    text as ui_word, whole_number
from packwork.web.present import Presenter, default_columns, sort_text
from packwork.web.retrying import RetryingBlueprint

# Every page and form post runs through `runtime.db.retrying` (web/retrying.py), as the API's
# views do: a form post that lost a race the database settled runs again, whole, not a 500.
blueprint = RetryingBlueprint("ui", __name__)
COUNT_UP_TO = 1000  # a list shows how many records match, up to this: beyond, "more than"
PAGE_SIZE = 50
SEARCH_LIMIT = 5
TEXTUAL = frozenset({"text", "long_text", "email", "phone", "url"})


def presenter(page: Page, user_ids=()) -> Presenter:
    names = users.display_names(page.ctx.conn, user_ids) if user_ids else {}
    return Presenter(page.ctx.catalog.metadata, page.language, page.session.time_zone, names)


def readable_entities(page: Page) -> list[str]:
    access = page.ctx.access
    return [name for name, entity in page.ctx.catalog.metadata.entities.items()
            if not entity.hidden and access.policy(name).reach("read").granted]


@blueprint.app_context_processor
def _page_globals() -> dict:
    page = g.get("page")
    if page is None:
        return {}
    return {"nav": presenter(page).nav(readable_entities(page)), "me": page.session,
            "is_admin": ADMIN_ROLE in page.session.actor.roles}


@blueprint.get("/")
def home() -> str:
    with signed_in() as page:
        return render_block("ui/home.html", None, p=presenter(page))


def quick_filter(entity: Entity, hidden: frozenset[str], text: str) -> str | None:
    """`text` searched in the entity's search fields the reader may see, as a filter."""
    fields = [n for n in entity.search_fields if n not in hidden
              and (f := entity.field(n)) is not None and f.value_type in TEXTUAL and f.has_column]
    text = text.strip()[:200]
    if not text or not fields:
        return None
    quoted = "'" + text.replace("'", "''") + "'"
    return "(" + " or ".join(f"{name} contains {quoted}" for name in fields) + ")"


@blueprint.get("/search")
def search() -> str:
    text = request.args.get("q", "")
    with signed_in() as page:
        ctx, found = page.ctx, []
        for name in readable_entities(page):
            entity = ctx.catalog.metadata.entities[name]
            condition = quick_filter(entity, ctx.access.hidden(entity), text)
            if condition is None:
                continue
            result = records.list_records(ctx, name, ListQuery(filter=condition, limit=SEARCH_LIMIT))
            if result.data:
                found.append((entity, result.data))
        return render_block("ui/search.html", None, p=presenter(page), q=text, found=found)


@dataclass(frozen=True, slots=True)
class ListState:
    """What a list shows, all of it in the URL so a view can be bookmarked."""

    view: str  # a pack list view's name, `saved-<id>`, or "" for the default
    columns: tuple[str, ...]
    base_filter: str | None  # the view's own filter
    filter: str  # the reader's filter
    q: str
    sort: str | None

    @property
    def combined_filter(self) -> str | None:
        """The view's filter and the reader's, as one (what "save view as" keeps)."""
        parts = [f"({text})" for text in (self.base_filter, self.filter) if text and text.strip()]
        return " and ".join(parts) or None

    def query(self, entity: Entity, values: EntityValues, hidden: frozenset[str], after: str | None) -> ListQuery:
        """The page's records, with only the keys its columns and titles show."""
        parts = [self.combined_filter] if self.combined_filter else []
        if (quick := quick_filter(entity, hidden, self.q)) is not None:
            parts.append(quick)
        expand = tuple(c for c in self.columns if (f := entity.field(c)) is not None and f.type == "reference")
        shown = values.keys_of(frozenset(self.columns) | {entity.title_field} - {None}) & values.output_keys
        return ListQuery(filter=" and ".join(parts) or None, sort=self.sort, expand=expand, limit=PAGE_SIZE,
                         after=after, fields=tuple(sorted(shown - values.keys_of(hidden))), count_up_to=COUNT_UP_TO)

    def params(self, **changes) -> dict:
        values = {"view": self.view, "columns": ",".join(self.columns), "filter": self.filter, "q": self.q,
                  "sort": self.sort or ""} | changes
        return {k: v for k, v in values.items() if v}


def list_state(page: Page, entity: Entity) -> ListState:
    args = request.args
    view = args.get("view", "")
    columns, base_filter, sort = default_columns(entity), None, None
    pack_view = next((v for v in entity.list_views if v.name == view), None)
    if pack_view is not None:
        columns, base_filter, sort = pack_view.columns, pack_view.filter, sort_text(pack_view.sort)
    elif view.startswith("saved-") and whole_number(view[6:]) is not None:
        saved = saved_views.find_view(page.ctx, entity.name, whole_number(view[6:]))
        if saved is not None:
            columns, sort = saved.columns or columns, saved.sort
            base_filter = saved.filter
    elif entity.list_views:
        first = entity.list_views[0]
        columns, base_filter, sort = first.columns, first.filter, sort_text(first.sort)
    if args.get("columns"):
        columns = split_names(args["columns"])
    return ListState(view, columns, base_filter, args.get("filter", ""), args.get("q", ""),
                     args.get("sort") or sort)


@blueprint.get("/r/<name>")
def list_page(name: str) -> Response | str:
    with signed_in() as page:
        entity = records.entity_for(page.ctx, name)
        state = list_state(page, entity)
        hidden = page.ctx.access.hidden(entity)
        error, result, status = _filter_problem(state.filter), records.Page([], None), 422
        try:
            if error is None:
                query = state.query(entity, page.ctx.catalog.values(entity), hidden, request.args.get("after"))
                with stoppable(page):
                    result = records.list_records(page.ctx, name, query)
        except BadRequest as exc:
            error = exc.detail
        except QueryTimeout as exc:  # shown above the list, with the filter there to narrow
            error, status = ui_word(exc.detail), exc.status
        p, may = presenter(page, user_ids(result.data, state.columns)), _may(page, entity)
        html = render_block("ui/list.html", "results", p=p, entity=entity, state=state, result=result,
                            columns=p.columns(entity, state.columns, hidden), error=error, count_cap=COUNT_UP_TO,
                            saved=saved_views.views_of(page.ctx, name) if page.session.has_saved_views else [],
                            may=may,
                            assignees=users.active_users(page.ctx.conn) if may["transfer"] and result.data else [])
        return current_app.make_response((html, status if error else 200))


def _filter_problem(text: str) -> str | None:
    """The reader's own filter checked alone, so an error's position is in the text they typed."""
    try:
        parse_filter(text) if text.strip() else None
    except FilterError as exc:
        return f"filter: {exc}"
    return None


def user_ids(rows: list[dict], columns) -> set:
    # type(...) is int: a boolean field is an int to isinstance, and no user id
    return {row.get(c) for row in rows for c in (*columns, "owner_id") if type(row.get(c)) is int}


def _may(page: Page, entity: Entity) -> dict[str, bool]:
    policy = page.ctx.access.policy(entity.name)
    return {action: policy.reach(action).granted
            for action in ("create", "update", "delete", "export", "transfer")}


@blueprint.post("/r/<name>/views")
def save_view(name: str) -> Response:
    with signed_in(write=True) as page:
        records.entity_for(page.ctx, name)
        view = saved_views.save_view(page.ctx, name, request.form.get("name", ""),
                                     split_names(request.form.get("columns", "")),
                                     request.form.get("filter") or None, request.form.get("sort") or None)
    return redirect(url_for("ui.list_page", name=name, view=f"saved-{view.id}"), 303)


@blueprint.post("/r/<name>/mass")
def mass_action(name: str) -> Response:
    """Delete or transfer the selected records, each through the record service, all or none."""
    ids = [i for i in map(whole_number, request.form.getlist("ids")) if i is not None]
    action = request.form.get("action")
    if not ids or action not in ("delete", "transfer"):
        raise BadRequest("choose records and an action", {"ids": ["choose at least one record"]})
    with signed_in(write=True) as page:
        if action == "delete":
            for record_id in ids:
                records.delete_record(page.ctx, name, record_id)
        else:
            owner = request.form.get("owner_id", "")
            if whole_number(owner) is None:
                raise BadRequest("choose who receives the records", {"owner_id": ["choose a user"]})
            for record_id in ids:
                # the list sends no versions: a new owner is given to each record as it is now
                # (an update without a version is refused, 428)
                version = records.get_record(page.ctx, name, record_id)["version"]
                records.update_record(page.ctx, name, record_id, {"owner_id": whole_number(owner)}, version)
    return redirect(local_path(request.form.get("back"), url_for("ui.list_page", name=name)), 303)


@blueprint.get("/r/<name>/export.<kind>")
def export(name: str, kind: str) -> Response:
    if kind not in exports.KINDS:
        raise BadRequest(f"cannot export as {kind!r}", {"kind": ["use csv or xlsx"]})

    def export_view(page: Page) -> tuple[list[str], Iterator[dict]]:
        """The list view's records (its filter and sort) in its columns, as the person may export them."""
        entity = records.entity_for(page.ctx, name)
        state = list_state(page, entity)
        hidden = page.ctx.access.hidden(entity)
        query = state.query(entity, page.ctx.catalog.values(entity), hidden, None)
        visible = [c.key for c in presenter(page).columns(entity, state.columns, hidden)]
        columns, rows = records.export_records(page.ctx, name, ListQuery(filter=query.filter, sort=query.sort))
        return [c for c in visible if c in columns] or columns, rows

    body = exports.streamed(signed_in, kind, export_view)
    return Response(body, mimetype=exports.KINDS[kind],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{kind}"'})


@blueprint.get("/r/<name>/kanban/<board>")
def kanban(name: str, board: str) -> str:
    with signed_in() as page:
        entity = records.entity_for(page.ctx, name)
        spec = next((k for k in entity.kanbans if k.name == board), None)
        if spec is None:
            raise NotFound(f"{name} has no board {board!r}")
        field = entity.field(spec.group_by)
        totals = {group.value: group for group in records.summarize(page.ctx, name, spec.group_by, spec.sum_field)}
        expand = tuple(c for c in spec.card_fields if (f := entity.field(c)) and f.type == "reference")
        lanes = []
        for choice in field.choices:
            rows = records.list_records(page.ctx, name, ListQuery(equals=((spec.group_by, choice.value),),
                                                                  expand=expand, limit=PAGE_SIZE)).data
            lanes.append((choice, rows, totals.get(choice.value)))
        p = presenter(page, user_ids([r for _, rows, _ in lanes for r in rows], spec.card_fields))
        return render_block("ui/kanban.html", None, p=p, entity=entity, spec=spec, field=field, lanes=lanes,
                            columns=p.columns(entity, spec.card_fields, page.ctx.access.hidden(entity)),
                            stage=entity.pipeline.stage if entity.pipeline else None)


@blueprint.post("/r/<name>/<int:record_id>/move")
def move(name: str, record_id: int) -> Response:
    """A kanban drop: set the board's field through the record service; a refusal (stage gate,
    validation, permission, stale version) answers problem+json and the card goes back."""
    field, value = request.form.get("field", ""), request.form.get("value", "")
    with signed_in(write=True) as page:
        entity = records.entity_for(page.ctx, name)
        if not any(k.group_by == field for k in entity.kanbans):
            raise BadRequest(f"{field!r} is not the field of a board of {name}", {"field": ["is not on a board"]})
        saved = records.update_record(page.ctx, name, record_id, {field: value or None},
                                      form_version())
    return jsonify({"id": saved["id"], "version": saved["version"], field: saved.get(field)})
