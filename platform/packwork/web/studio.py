"""The admin studio (`/admin`, administrators only): every change an administrator makes in
the browser is an edit of the admin layer (`runtime.admin_layer`), shown as a plan before it is
applied, applied as a new metadata version every process and the API serve at once, and kept in
the layer's history to revert.

Every studio form posts one edit. `propose` makes it on a draft of the layer in force
(`metadata.layer_edits`), has the resolver check the whole result, and either draws the form
again (422) with each problem next to the input it is about — nothing applied — or shows the
plan: what changes, the DDL, the layer text before and after. Applying posts that text back
with the metadata version the plan was made on; if someone applied another change meanwhile
the plan is refused (409), never applied over their change."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Response, current_app, redirect, request, url_for

from packwork.errors import MigrationRefused, NotFound, PackError, PermissionDenied
from packwork.metadata.access import ADMIN_ROLE
from packwork.metadata.layer_edits import DraftError, LayerDraft
from packwork.metadata.loader import SourceFile
from packwork.metadata.model import Entity
from packwork.runtime import admin_layer, archives, installer, migrate, packstore
from packwork.runtime.migrate import PlanOutdated
from packwork.web.pages import Page, local_path, render_block, signed_in, whole_number
from packwork.web.retrying import RetryingBlueprint
from packwork.web.services import services
from packwork.web.ui import presenter

blueprint = RetryingBlueprint("studio", __name__, url_prefix="/admin")
FORM = "_form"  # the errors key of a problem no single input is about
Errors = dict[str, list[str]]
REFUSALS = (PackError, MigrationRefused, admin_layer.LayerError)  # a layer text that cannot be applied
Redraw = Callable[[Errors], str]  # the form again, with these errors next to its inputs


class NotAnAdministrator(PermissionDenied):
    code = "STUDIO-E403"


@contextmanager
def administrator(write: bool = False) -> Iterator[Page]:
    """The signed-in request of an administrator (403 for anyone else). Metadata changes only
    read in this transaction (planning and applying use connections of their own); users and
    teams are written in it (`write`)."""
    with signed_in(write) as page:
        if ADMIN_ROLE not in page.session.actor.roles:
            raise NotAnAdministrator("The studio is for administrators.")
        yield page


def entity_of(page: Page, name: str) -> Entity:
    entity = page.ctx.catalog.metadata.entities.get(name)
    if entity is None:
        raise NotFound(f"there is no entity {name!r}")
    return entity


def draft_of(page: Page) -> LayerDraft:
    """The layer in force, to edit."""
    return LayerDraft(admin_layer.current_layer(page.ctx.conn).text)


def studio_html(template: str, page: Page, **context) -> str:
    return render_block(template, None, p=presenter(page), studio=True, **context)


def studio_page(template: str, page: Page, status: int = 200, **context) -> Response:
    return current_app.make_response((studio_html(template, page, **context), status))


# -- one edit: draft, check, plan --------------------------------------------------------------

def problems_by_input(problems, path: str, inputs: dict[str, str]) -> Errors:
    """The resolver's problems as form errors: a problem at the edit's own `path` is about the
    name input; one below it goes to the input `inputs` names for its next key (`formula`,
    `entity`...); anything else is about the form as a whole, with its path to find it. An edit
    of `$.extends.E` is also about `$.entities.E`: the checks of the extended entity say so."""
    paths = [path] + (["$.entities." + path.removeprefix("$.extends.")] if path.startswith("$.extends.") else [])
    errors: Errors = {}
    for problem in problems:
        key = FORM
        for edited in paths:
            if problem.path == edited or problem.path.startswith(edited + "["):  # an item of what was edited
                key = inputs.get("", FORM)
            elif problem.path.startswith(edited + "."):
                below = problem.path[len(edited) + 1:].split(".")[0].split("[")[0]
                key = inputs.get(below, FORM)
            if key != FORM:
                break
        message = problem.message if key != FORM else f"{problem.path.removeprefix('$.')}: {problem.message}"
        errors.setdefault(key, []).append(message)
    return errors


def propose(page: Page, edit: Callable[[LayerDraft], str], redraw: Redraw, back: str,
            inputs: dict[str, str] | None = None) -> Response:
    """Make `edit` on the layer in force and show its plan, or the form again with why not."""
    before = admin_layer.current_layer(page.ctx.conn).text
    try:
        draft = LayerDraft(before)
        path = edit(draft)
    except DraftError as exc:
        return _refused(redraw, {(inputs or {}).get("", FORM): [exc.message]})
    return plan_page(page, before, draft.text(), back, redraw, path, inputs or {})


def plan_page(page: Page, before: str, after: str, back: str, redraw: Redraw | None = None,
              path: str = "$", inputs: dict[str, str] | None = None,
              restores: int | None = None) -> Response:
    """The plan of making `after` the layer, or the refusal of it (on the form, if there is one).
    `before` is the layer text `after` was made from: the plan carries the metadata version
    read before checking that `before` is still in force, so Apply can tell if anything was
    applied since."""
    engine = services(current_app).engine
    base = packstore.current_version_id(page.ctx.conn)
    if admin_layer.current_layer(page.ctx.conn).text != before:
        return studio_page("admin/stale.html", page, 409, back=local_path(back, url_for("studio.home")))
    try:
        plan = admin_layer.plan_layer(engine, after)
    except REFUSALS as exc:
        errors = problems_by_input(exc.problems, path, inputs or {}) if isinstance(exc, PackError) else \
            {FORM: list(getattr(exc, "reasons", ())) or [str(exc)]}
        if redraw is None:
            return studio_page("admin/layer.html", page, 422, text=after, errors=errors)
        return _refused(redraw, errors)
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        "layer in force", "layer after this change"))
    return studio_page("admin/plan.html", page, plan=plan, plan_text=plan.render(), diff=diff,
                       text=after, base=base, back=local_path(back, url_for("studio.home")), restores=restores)


def _refused(redraw: Redraw, errors: Errors) -> Response:
    return current_app.make_response((redraw(errors), 422))


# -- pages ------------------------------------------------------------------------------------

@blueprint.get("/")
def home() -> Response:
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        layer = admin_layer.current_layer(page.ctx.conn)
        owned = LayerDraft(layer.text)
        entities = sorted(metadata.entities.values(), key=lambda e: e.name)
        return studio_page("admin/home.html", page, entities=entities, owned=owned,
                           versions=admin_layer.history(page.ctx.conn)[-5:][::-1],
                           applied=whole_number(request.args.get("applied")))


@blueprint.post("/apply")
def apply() -> Response:
    """Apply the plan the administrator saw: the layer text it was made of, on the metadata
    version it was made on. If another change was applied meanwhile, this text (made from the
    layer before it) would undo that change: it is refused, 409, to be made again."""
    text, back = request.form.get("text", ""), local_path(request.form.get("back"), url_for("studio.home"))
    restores = whole_number(request.form.get("restores"))
    engine = services(current_app).engine
    with administrator() as page:
        if whole_number(request.form.get("base")) != packstore.current_version_id(page.ctx.conn):
            return studio_page("admin/stale.html", page, 409, back=back)
        try:
            plan = admin_layer.plan_layer(engine, text)
        except REFUSALS:  # a text that was not the plan's: show why, apply nothing
            return plan_page(page, admin_layer.current_layer(page.ctx.conn).text, text, back)
        author = page.session.username
    try:  # outside the request's transaction: the DDL must not wait for its locks
        version = admin_layer.apply_layer(engine, text, author, plan=plan, restores=restores)
    except PlanOutdated:
        with administrator() as page:
            return studio_page("admin/stale.html", page, 409, back=back)
    joiner = "&" if "?" in back else "?"
    return redirect(f"{back}{joiner}applied={version.id if version else 0}", 303)


@blueprint.get("/history")
def history() -> Response:
    with administrator() as page:
        versions = admin_layer.history(page.ctx.conn)[::-1]
        return studio_page("admin/history.html", page, versions=versions,
                           current=admin_layer.current_layer(page.ctx.conn).text)


@blueprint.post("/history/<int:version_id>/revert")
def revert(version_id: int) -> Response:
    """The plan of bringing back the layer of an earlier version (0: no layer at all)."""
    with administrator() as page:
        before = admin_layer.current_layer(page.ctx.conn).text
        after = admin_layer.layer_text_at(services(current_app).engine, version_id)
        return plan_page(page, before, after, url_for("studio.history"), restores=version_id)


@blueprint.route("/layer", methods=["GET", "POST"])
def layer() -> Response:
    """The layer's YAML text, to read or to edit whole (comments kept)."""
    with administrator() as page:
        before = admin_layer.current_layer(page.ctx.conn).text
        if request.method == "GET":
            return studio_page("admin/layer.html", page, text=before, errors={})
        return plan_page(page, before, request.form.get("text", "").replace("\r\n", "\n"), url_for("studio.layer"))


@blueprint.get("/layer.tar.gz")
def download() -> Response:
    """The layer in force as a pack archive: `packwork layer import` or a pack install takes it."""
    with administrator() as page:
        layer = admin_layer.current_layer(page.ctx.conn)
    if layer.empty:
        raise NotFound("there is no admin layer to download yet: nothing has been customised")
    body = archives.archive_bytes(admin_layer.LAYER, admin_layer.LAYER_PACK_VERSION,
                                  [SourceFile(path, text) for path, text in sorted(layer.files.items())])
    return Response(body, mimetype="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{admin_layer.LAYER}.tar.gz"'})


@blueprint.route("/purge", methods=["GET", "POST"])
def purge() -> Response:
    """Drop the columns and tables kept, with their data, after their fields or entities were
    removed: the one studio change that deletes data, so it has a page of its own."""
    engine = services(current_app).engine
    with administrator() as page:
        base = packstore.current_version_id(page.ctx.conn)
        if request.method == "GET" or whole_number(request.form.get("base")) != base:
            plan = installer.plan_purge(engine)
            return studio_page("admin/purge.html", page, 200 if request.method == "GET" else 409, plan=plan,
                               plan_text=plan.render(), base=base)
        author = page.session.username
    migrate.apply(engine, installer.plan_purge(engine), summary=f"purge of kept data by {author}")
    return redirect(url_for("studio.home", applied=0), 303)
