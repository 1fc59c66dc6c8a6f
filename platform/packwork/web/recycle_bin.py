"""The recycle bin page of an entity: its deleted records the reader may restore
(`records.list_deleted`: within their read scope and the delete grant's reach), newest deletion
first, with when and by whom each was deleted and a Restore button (a POST form with the
session's CSRF token). The list page links here for readers with the delete grant; for anyone
else the page is refused (403), as restoring would be.

A restore that can no longer happen (someone restored the record already, its unique value is
taken meanwhile, it moved out of the reader's reach) shows the bin again with what stopped it,
never a server error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import current_app, request, url_for
from werkzeug.wrappers import Response

from packwork.errors import BadRequest, Conflict, NotFound, PermissionDenied, QueryTimeout
from packwork.metadata.model import Entity
from packwork.runtime import records
from packwork.runtime.listing import ListQuery
from packwork.web.pages import Page, render_block, see_other, signed_in, stoppable, text, whole_number
from packwork.web.present import default_columns
from packwork.web.ui import PAGE_SIZE, blueprint, presenter, quick_filter, user_ids

RESTORE_REFUSALS = (Conflict, NotFound, PermissionDenied)


@dataclass(frozen=True)
class RestoreRefusal:
    """A restore the record service refused, shown at the top of the bin."""

    record_id: int
    message: str
    errors: Mapping[str, list[str]] = field(default_factory=dict)


@blueprint.get("/r/<name>/deleted")
def recycle_bin(name: str) -> Response:
    with signed_in() as page:
        return _bin(page, name)


@blueprint.post("/r/<name>/<int:record_id>/restore")
def restore(name: str, record_id: int) -> Response:
    with signed_in(write=True) as page:
        try:
            with page.ctx.conn.begin_nested():  # a refusal leaves the transaction usable for the page
                records.restore_record(page.ctx, name, record_id)
        except RESTORE_REFUSALS as exc:
            return _bin(page, name, RestoreRefusal(record_id, exc.detail, exc.errors), exc.status)
    return see_other(url_for("ui.recycle_bin", name=name, restored=record_id))


def _bin(page: Page, name: str, refused: RestoreRefusal | None = None, status: int = 200) -> Response:
    entity = records.entity_for(page.ctx, name)  # list_deleted refuses (403) a reader without the delete grant
    hidden = page.ctx.access.hidden(entity)
    names = default_columns(entity)
    q = request.args.get("q", "")
    error, result = None, records.Page([], None)
    try:
        with stoppable(page):
            result = records.list_deleted(page.ctx, name, _query(page, entity, names, q))
    except BadRequest as exc:  # a cursor from another list
        error, status = exc.detail, exc.status
    except QueryTimeout as exc:
        error, status = text(exc.detail), exc.status
    rows = [item["record"] for item in result.data]
    p = presenter(page, user_ids(rows, names))
    html = render_block("ui/recycle_bin.html", "results", p=p, entity=entity, result=result, q=q, error=error,
                        columns=p.columns(entity, names, hidden), refused=refused,
                        restored=whole_number(request.args.get("restored")) if refused is None else None)
    return current_app.make_response((html, status))


def _query(page: Page, entity: Entity, names: tuple[str, ...], q: str) -> ListQuery:
    """The bin's page of records: only the keys its columns and titles show, references as
    records (for their titles), the quick search if any."""
    values, hidden = page.ctx.catalog.values(entity), page.ctx.access.hidden(entity)
    shown = values.keys_of(frozenset(names) | {entity.title_field} - {None}) & values.output_keys
    expand = tuple(n for n in names if (f := entity.field(n)) is not None and f.type == "reference"
                   and n not in hidden)
    return ListQuery(filter=quick_filter(entity, hidden, q), fields=tuple(sorted(shown - values.keys_of(hidden))),
                     expand=expand, limit=PAGE_SIZE, after=request.args.get("after") or None)
