"""The record service: the one path by which anything reads or writes an entity's records.

UI, API, import, export, jobs and rules all call these functions; each enforces the actor's
permissions (`runtime.permissions`), so no entry point can skip them."""

from packwork.runtime.records.batch import create_many
from packwork.runtime.records.actions import available_actions, run_action, runnable
from packwork.runtime.records.core import Context, Page, entity_for
from packwork.runtime.records.ownership import record_shares, share_record, transfer_records, unshare_record
from packwork.runtime.records.reads import allowed_actions, export_records, get_record, history, list_records
from packwork.runtime.records.recycle import list_deleted
from packwork.runtime.records.relations import End, ends_of, link, list_links, unlink
from packwork.runtime.records.summary import Aggregate, Group, Summary, aggregate, summarize
from packwork.runtime.records.writes import MAX_BULK, bulk_write, create_record, delete_record, restore_record, \
    update_read_rows, update_record

__all__ = ["Context", "Page", "entity_for", "list_records", "get_record", "history", "export_records", "list_deleted",
           "create_record", "create_many", "update_record", "delete_record", "restore_record", "bulk_write", "update_read_rows",
           "MAX_BULK", "Group", "summarize", "Aggregate", "Summary", "aggregate", "share_record", "unshare_record", "record_shares", "transfer_records",
           "allowed_actions", "available_actions", "run_action", "runnable", "End", "ends_of", "link", "list_links", "unlink"]
