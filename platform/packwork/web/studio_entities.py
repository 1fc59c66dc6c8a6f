"""The studio's entity and field pages: create a custom entity; relabel, hide or retitle any
entity; add a field of any type, change a field, hide or show it, remove one the layer added.

A pack's field changes only through `change_fields` (labels, help, required, read-only,
default, length, options) and hides through `hide_fields`: its column and data stay, and
showing it again brings them back. A field the layer added is the layer's own: every key may
change, and removing it keeps its column as an orphan, with its data, until a purge."""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from packwork.errors import NotFound
from packwork.metadata.fieldtypes import COMPUTED_RESULTS, builtin_field_types
from packwork.metadata.layer_edits import LayerDraft
from packwork.metadata.model import Entity, Metadata
from packwork.metadata.physical import entity_table
from packwork.web.pages import Page
from packwork.web.present import layout_for
from packwork.web.studio import FORM, Errors, administrator, blueprint, draft_of, entity_of, propose, \
    studio_html, studio_page
from packwork.web.studio_forms import field_changes, field_inputs, field_spec, label_inputs, label_value, \
    names_list
from packwork.web.studio_layouts import layout_spec, placed

BUILTIN_TYPES = builtin_field_types()
FIELD_TYPES = BUILTIN_TYPES.names()
FIELD_INPUTS = {"": "name", "type": "type", "label": "label_en", "help": "help_en", "default": "default",
                "max_length": "max_length", "options": "options", "entity": "entity", "on_delete": "on_delete",
                "currency": "currency", "formula": "formula", "result": "result"}
ENTITY_INPUTS = {"": "name", "label": "label_en", "plural": "plural_en", "icon": "icon",
                 "title_field": "title_field", "search_fields": "search_fields", "fields": FORM}


# -- entities ------------------------------------------------------------------------------------

def new_entity_spec(form) -> dict:
    """A custom entity with what every record needs to be found: a required name, its title."""
    label = label_value(form, "label") or {"en": form.get("name", "").replace("_", " ").capitalize()}
    spec: dict[str, Any] = {"label": label, "plural": label_value(form, "plural") or label}
    if form.get("icon", "").strip():
        spec["icon"] = form["icon"].strip()
    spec |= {"title_field": "name", "search_fields": ["name"],
             "fields": {"name": {"type": "text", "label": {"en": "Name", "zh": "名称"}, "required": True,
                                 "max_length": 200}}}
    return spec


@blueprint.route("/new-entity", methods=["GET", "POST"])
def new_entity() -> Response:
    with administrator() as page:
        values = dict(request.form)

        def redraw(errors: Errors) -> str:
            return studio_html("admin/new_entity.html", page, values=values, errors=errors)

        if request.method == "GET":
            return studio_page("admin/new_entity.html", page, values={}, errors={})
        name = values.get("name", "").strip()
        if not name:
            return studio_page("admin/new_entity.html", page, 422, values=values,
                               errors={"name": ["give the entity a name: lowercase letters, digits and _"]})
        return propose(page, lambda d: d.add_entity(name, new_entity_spec(values)), redraw,
                       url_for("studio.entity", name=name), ENTITY_INPUTS)


@blueprint.route("/entities/<name>", methods=["GET", "POST"])
def entity(name: str) -> Response:
    """An entity's settings and fields; a POST changes the settings."""
    with administrator() as page:
        entity = entity_of(page, name)
        draft = draft_of(page)
        values = _entity_inputs(entity) if request.method == "GET" else dict(request.form)

        def redraw(errors: Errors) -> str:
            return _entity_page(page, entity, draft, values, errors)

        if request.method == "GET":
            return studio_page("admin/entity.html", page, **_entity_context(page, entity, draft, values, {}))
        changes = {"label": label_value(values, "label"), "plural": label_value(values, "plural"),
                   "icon": values.get("icon", "").strip() or None,
                   "title_field": values.get("title_field") or None,
                   "search_fields": names_list(values.get("search_fields", "")) or None,
                   "hidden": _hidden_key(entity, draft, bool(values.get("hidden")))}
        if not draft.owns(name):  # an extension sets only what differs from the pack's entity
            current = _entity_inputs(entity)
            changes = {k: v for k, v in changes.items()
                       if k == "hidden" or _changed(k, v, current, values)}
        return propose(page, lambda d: d.set_entity(name, changes), redraw,
                       url_for("studio.entity", name=name), ENTITY_INPUTS)


def _hidden_key(entity: Entity, draft: LayerDraft, hide: bool) -> bool | None:
    """The layer's `hidden` for the entity: True to hide it, False to show one a pack hides,
    None (no key) to leave it to the packs."""
    if hide:
        return True
    hidden_by_layer = draft.entity_spec(entity.name)[0].get("hidden") is True
    return False if entity.hidden and not hidden_by_layer else None


def _changed(key: str, value: Any, current: dict, values: dict) -> bool:
    if key in ("label", "plural"):
        return any(values.get(f"{key}_{lang}", "") != current[f"{key}_{lang}"] for lang in ("en", "zh"))
    if key == "search_fields":
        return names_list(values.get(key, "")) != names_list(current[key])
    return (value or "") != (current.get(key) or "")


def _entity_inputs(entity: Entity) -> dict:
    return {**label_inputs("label", entity.label), **label_inputs("plural", entity.plural),
            "icon": entity.icon or "", "title_field": entity.title_field or "",
            "search_fields": ", ".join(entity.search_fields), "hidden": entity.hidden}


def _entity_context(page: Page, entity: Entity, draft: LayerDraft, values: dict, errors: Errors) -> dict:
    rows = [(f, draft.added_field(entity.name, f.name), draft.hides(entity.name, f.name)) for f in entity.fields]
    return {"entity": entity, "owned": draft.owns(entity.name), "fields": rows, "values": values,
            "errors": errors, "orphans": _orphans(page, entity)}


def _entity_page(page: Page, entity: Entity, draft: LayerDraft, values: dict, errors: Errors) -> str:
    return studio_html("admin/entity.html", page, **_entity_context(page, entity, draft, values, errors))


def _orphans(page: Page, entity: Entity) -> list[str]:
    """Columns kept with their data after their field was removed (until a purge): the
    catalog's table has them, the entity's own table spec does not."""
    table = page.ctx.catalog.tables.get(entity.name)
    declared = {c.name for c in entity_table(entity, BUILTIN_TYPES).columns}
    return sorted(c.name for c in table.columns if c.name not in declared) if table is not None else []


# -- fields ------------------------------------------------------------------------------------

def _field_context(metadata: Metadata, entity: Entity, values: dict, errors: Errors, field=None,
                   added: bool = True) -> dict:
    layout = layout_for(entity, None)
    sections = [(f"{t.name}/{s.name}", f"{t.label.en} · {s.label.en}") for t in layout.tabs for s in t.sections]
    return {"entity": entity, "field": field, "added": added, "values": values, "errors": errors,
            "types": FIELD_TYPES, "results": COMPUTED_RESULTS, "sections": sections,
            "targets": sorted(metadata.entities)}


@blueprint.route("/entities/<name>/new-field", methods=["GET", "POST"])
def new_field(name: str) -> Response:
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        entity = entity_of(page, name)
        values = dict(request.form) if request.method == "POST" else field_inputs(None) | {"place": ""}

        def redraw(errors: Errors) -> str:
            return studio_html("admin/field.html", page, **_field_context(metadata, entity, values, errors))

        if request.method == "GET":
            return studio_page("admin/field.html", page, **_field_context(metadata, entity, values, {}))
        field_name = values.get("name", "").strip()
        spec, errors = field_spec(values)
        if not field_name:
            errors["name"] = ["give the field a name: lowercase letters, digits and _"]
        if errors:
            return studio_page("admin/field.html", page, 422, **_field_context(metadata, entity, values, errors))

        def edit(draft: LayerDraft) -> str:
            path = draft.add_field(name, field_name, spec)
            section = values.get("place", "")
            if section and entity.layouts and not spec.get("hidden"):
                layout = layout_for(entity, None)
                draft.set_view(name, "layouts", layout.name, layout_spec(placed(layout, {field_name: section})))
            return path

        return propose(page, edit, redraw, url_for("studio.entity", name=name), FIELD_INPUTS)


@blueprint.route("/entities/<name>/fields/<field_name>", methods=["GET", "POST"])
def field(name: str, field_name: str) -> Response:
    with administrator() as page:
        metadata = page.ctx.catalog.metadata
        entity = entity_of(page, name)
        field = entity.field(field_name)
        if field is None:
            raise NotFound(f"{name} has no field {field_name!r}")
        added = draft_of(page).added_field(name, field_name)
        values = dict(request.form) if request.method == "POST" else field_inputs(field)

        def context(errors: Errors) -> dict:
            return _field_context(metadata, entity, values, errors, field, added)

        if request.method == "GET":
            return studio_page("admin/field.html", page, **context({}))
        spec, errors = field_spec(values) if added else field_changes(values, field)
        if errors:
            return studio_page("admin/field.html", page, 422, **context(errors))
        def edit(draft: LayerDraft) -> str:
            return draft.set_field(name, field_name, spec) if added else draft.change_field(name, field_name, spec)

        return propose(page, edit, lambda errors: studio_html("admin/field.html", page, **context(errors)),
                       url_for("studio.entity", name=name), FIELD_INPUTS)


@blueprint.post("/entities/<name>/fields/<field_name>/visibility")
def field_visibility(name: str, field_name: str) -> Response:
    """Hide a field (its column and data stay) or show it again."""
    hide = request.form.get("hidden") == "1"
    with administrator() as page:
        entity = entity_of(page, name)
        field = entity.field(field_name)
        if field is None:
            raise NotFound(f"{name} has no field {field_name!r}")
        draft = draft_of(page)
        by_packs = field.hidden and not draft.hides(name, field_name)
        return propose(page, lambda d: d.hide_field(name, field_name, hide, by_packs),
                       lambda errors: _entity_page(page, entity, draft, _entity_inputs(entity), errors),
                       url_for("studio.entity", name=name))


@blueprint.route("/entities/<name>/fields/<field_name>/remove", methods=["GET", "POST"])
def remove_field(name: str, field_name: str) -> Response:
    """Remove a field the layer added, after confirmation: its column is kept as an orphan."""
    with administrator() as page:
        entity = entity_of(page, name)
        field = entity.field(field_name)
        if field is None:
            raise NotFound(f"{name} has no field {field_name!r}")
        if request.method == "GET":
            return studio_page("admin/remove_field.html", page, entity=entity, field=field)
        draft = draft_of(page)
        return propose(page, lambda d: d.remove_field(name, field_name),
                       lambda errors: _entity_page(page, entity, draft, _entity_inputs(entity), errors),
                       url_for("studio.entity", name=name))
