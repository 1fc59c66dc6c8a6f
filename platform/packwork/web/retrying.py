"""A blueprint whose every view runs through `runtime.db.retrying`: a unit of work that lost a
race the database settled by rolling it back (SQLite busy, a PostgreSQL deadlock or
serialization failure) runs again, whole, instead of answering 500. The API and the UI's forms
both use it, so a form post is as safe to race as an API write.

Safe because views end their transaction before they return (`api.unit_of_work`,
`pages.signed_in`): a view that raised has written nothing, and running it again reads the
request (its form, its body) afresh."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint

from packwork.runtime.db import retrying


class RetryingBlueprint(Blueprint):
    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: Callable | None = None,
                     **options) -> None:
        if view_func is not None:
            view_func = retried(view_func)
        super().add_url_rule(rule, endpoint, view_func, **options)


def retried(view: Callable) -> Callable:
    """`view`, run again after a retryable database error (at most `db.ATTEMPTS` times in all)."""
    @functools.wraps(view)
    def run(**kwargs):
        return retrying(lambda: view(**kwargs))
    return run
