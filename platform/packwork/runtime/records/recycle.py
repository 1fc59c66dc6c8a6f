"""The recycle bin: an entity's soft-deleted records, listed for the people who may bring them
back. Who may delete a record may restore it (`writes.restore_record`), so the bin shows the
deleted records within both the actor's read scope and the delete grant's reach, and nothing
to a role without the delete grant (403, as restoring would be)."""

from __future__ import annotations

from packwork.errors import BadRequest
from packwork.runtime import audit
from packwork.runtime.listing import ListQuery, SortKey, encode_cursor
from packwork.runtime.records import core
from packwork.runtime.records.core import Context, Page
from packwork.runtime.records.reads import count_matches, query_filters, read_page
from packwork.runtime.values import iso_datetime

# Newest deletion first; records deleted together (a mass delete shares its moment) by id.
DELETION_ORDER = [SortKey("deleted_at", "datetime", True), SortKey("id", "integer", True)]


def list_deleted(ctx: Context, name: str, query: ListQuery = ListQuery()) -> Page:
    """A page of the deleted records the actor may restore, newest deletion first, each as
    `{"record", "deleted_at", "deleted_by"}` (`deleted_by` from the audit trail: the user's id,
    username and display name, or None). `query` filters, pages and shapes the records as for
    a list; it cannot sort them."""
    target = core.target_for(ctx, name, "delete")
    if query.sort:
        raise BadRequest("the recycle bin is always in order of deletion, newest first",
                         {"sort": ["cannot be chosen for deleted records"]})
    table, hidden = target.table, core.hidden_keys(ctx, target)
    where = [table.c.deleted_at.is_not(None), *core.scope(ctx, target), *core.scope(ctx, target, "delete"),
             *query_filters(ctx, target, query)]
    rows, data, more = read_page(ctx, target, where, DELETION_ORDER, query, hidden)
    deleters = audit.last_actors(ctx.conn, name, [row["id"] for row in rows], "delete")
    items = [{"record": record, "deleted_at": iso_datetime(row["deleted_at"]), "deleted_by": deleters.get(row["id"])}
             for row, record in zip(rows, data)]
    return Page(items, encode_cursor(DELETION_ORDER, rows[-1]) if more else None,
                count_matches(ctx, table, where, query, len(rows), more))
