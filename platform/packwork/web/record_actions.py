"""Pack actions on the detail page: each is a POST form (with the session's CSRF token, the
record's version and the action's inputs) that runs through `runtime.records.run_action`. A
refusal re-renders the detail page with the message at the top, field messages next to the
action's inputs, and what the person typed kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import request, url_for
from werkzeug.wrappers import Response

from packwork.errors import BadRequest, Conflict, NotFound, PermissionDenied, PreconditionRequired, \
    RuleFailed, ValidationError
from packwork.runtime import records
from packwork.web.pages import form_version, see_other, signed_in
from packwork.web.record_pages import detail_page, widgets
from packwork.web.ui import blueprint

REFUSALS = (BadRequest, ValidationError, Conflict, PermissionDenied, PreconditionRequired, RuleFailed)


@dataclass(frozen=True)
class ActionRefusal:
    """A refused action, shown on the detail page with what the person typed kept."""

    action: str
    message: str
    errors: Mapping[str, list[str]]
    form: Mapping[str, str] = field(default_factory=dict)


@blueprint.post("/r/<name>/<int:record_id>/actions/<action>")
def run_action(name: str, record_id: int, action: str) -> Response:
    with signed_in(write=True) as page:
        entity = records.entity_for(page.ctx, name)
        rule = next((r for r in page.ctx.catalog.metadata.rules
                     if r.entity == entity.name and r.name == action and r.action is not None), None)
        if rule is None:
            raise NotFound(f"{name!r} has no action {action!r}")
        inputs, errors = widgets().parse(list(rule.action.inputs), request.form, page.session.time_zone)
        typed = request.form.to_dict()
        if errors:
            return detail_page(page, name, record_id, status=422,
                           action_refused=ActionRefusal(action, "Some values are not valid.", errors, typed))
        try:
            with page.ctx.conn.begin_nested():
                records.run_action(page.ctx, name, record_id, action, {"inputs": inputs}, form_version())
        except REFUSALS as exc:
            stale = isinstance(exc, Conflict) and "version" in exc.errors
            message = "This record was changed by someone else since you opened it." if stale else exc.detail
            return detail_page(page, name, record_id, status=exc.status,
                           action_refused=ActionRefusal(action, message, {} if stale else exc.errors, typed))
    return see_other(url_for("ui.detail", name=name, record_id=record_id))
