"""The studio's editors of how an entity is shown: its form layout (fields placed in sections
of tabs, in order), its list views, its kanban boards, and its pipeline's stages.

The layout editor works without JavaScript: every field has a section select and a position;
dragging a field (Sortable, in `static/ui/packwork.js`) only sets those inputs. Each editor
writes the whole layout, view or board into the layer by name, so a pack's own stays as it is
underneath and reverting the layer brings it back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, request, url_for

from packwork.metadata.layer_edits import LayerDraft
from packwork.metadata.model import Entity, Label, Layout, Section, Stage, Tab
from packwork.web.present import default_columns, layout_for, sort_text
from packwork.web.studio import Errors, administrator, blueprint, draft_of, entity_of, propose, studio_html, studio_page
from packwork.web.pages import whole_number
from packwork.web.studio_forms import label_inputs, label_value, names_list

OUTCOMES = ("open", "won", "lost")
NEW_STAGE_ROWS = 3


def _label_spec(label: Label) -> dict | str:
    return label.en if label.en == label.zh else {"en": label.en, "zh": label.zh}


def layout_spec(layout: Layout) -> dict:
    """A layout as pack data, tabs and sections in order."""
    spec: dict[str, Any] = {"record_type": layout.record_type} if layout.record_type else {}
    spec["tabs"] = {tab.name: {"label": _label_spec(tab.label), "sections": {
        s.name: {"label": _label_spec(s.label), "columns": s.columns, "fields": list(s.fields)}
        for s in tab.sections}} for tab in layout.tabs}
    return spec


def section_keys(layout: Layout) -> list[str]:
    return [f"{tab.name}/{section.name}" for tab in layout.tabs for section in tab.sections]


def placed(layout: Layout, moves: Mapping[str, str]) -> Layout:
    """`layout` with each field of `moves` taken out and put last in its section ("": off the form)."""
    tabs = []
    for tab in layout.tabs:
        sections = []
        for section in tab.sections:
            key = f"{tab.name}/{section.name}"
            kept = [f for f in section.fields if f not in moves]
            kept += [f for f, target in moves.items() if target == key]
            sections.append(Section(section.name, section.label, section.columns, tuple(kept)))
        tabs.append(Tab(tab.name, tab.label, tuple(sections)))
    return Layout(layout.name, tuple(tabs), layout.record_type)


def arranged(layout: Layout, form: Mapping[str, str], names: list[str]) -> tuple[Layout, Errors]:
    """The layout the editor's form describes: each field of `names` in the section its
    `place.FIELD` select names, ordered by `order.FIELD`; section labels and columns changed;
    a new section (`new_section_en`, in tab `new_section_tab`) and a new tab (`new_tab_en`)
    if they were asked for."""
    errors: Errors = {}
    keys = section_keys(layout)
    new_label = label_value(form, "new_section")
    if new_label:
        tab = form.get("new_section_tab") or layout.tabs[0].name
        key = f"{tab}/section_{len(keys) + 1}"
        keys.append(key)
    chosen: dict[str, list[tuple[int, int, str]]] = {key: [] for key in keys}
    for index, name in enumerate(names):
        target = form.get(f"place.{name}", "")
        if target and target not in chosen:
            errors[f"place.{name}"] = ["choose a section of this form"]
            continue
        order = whole_number(form.get(f"order.{name}", ""))
        order = 10_000 if order is None else order  # no position: after those given one
        if target:
            chosen[target].append((order, index, name))
    tabs = []
    for tab in layout.tabs:
        sections = []
        for section in tab.sections:
            key = f"{tab.name}/{section.name}"
            label = label_value(form, f"section.{key}")
            columns = whole_number(form.get(f"columns.{key}", "")) or section.columns
            if columns not in (1, 2, 3):
                errors[f"columns.{key}"] = ["1, 2 or 3 columns"]
            sections.append(Section(section.name, Label.of(label, section.name) if label else section.label,
                                    columns, tuple(n for _, _, n in sorted(chosen[key]))))
        if new_label and tab.name == (form.get("new_section_tab") or layout.tabs[0].name):
            name = keys[-1].split("/")[1]
            sections.append(Section(name, Label.of(new_label, name), 2,
                                    tuple(n for _, _, n in sorted(chosen[keys[-1]]))))
        tabs.append(Tab(tab.name, tab.label, tuple(sections)))
    if (tab_label := label_value(form, "new_tab")) is not None:  # a new tab starts with one empty section
        names = {tab.name for tab in layout.tabs}
        name = next(f"tab_{n}" for n in range(len(names) + 1, len(names) + 100) if f"tab_{n}" not in names)
        tabs.append(Tab(name, Label.of(tab_label, name), (Section("main", Label.of(tab_label, "main"), 2, ()),)))
    return Layout(layout.name, tuple(tabs), layout.record_type), errors


# -- the form layout -----------------------------------------------------------------------------

@blueprint.route("/entities/<name>/layout", methods=["GET", "POST"])
def layout(name: str) -> Response:
    with administrator() as page:
        entity = entity_of(page, name)
        current = layout_for(entity, None)
        names = [f.name for f in entity.fields if not f.hidden]

        def context(shown: Layout, errors: Errors) -> dict:
            on_form = set(shown.field_names())
            return {"entity": entity, "layout": shown, "keys": section_keys(shown), "errors": errors,
                    "off_form": [f for f in entity.fields if f.name in names and f.name not in on_form]}

        if request.method == "GET":
            return studio_page("admin/layout.html", page, **context(current, {}))
        changed, errors = arranged(current, request.form, names)
        if errors:
            return studio_page("admin/layout.html", page, 422, **context(current, errors))
        return propose(page, lambda d: d.set_view(name, "layouts", changed.name, layout_spec(changed)),
                       lambda errors: studio_html("admin/layout.html", page, **context(changed, errors)),
                       url_for("studio.layout", name=name))


# -- list views and boards -------------------------------------------------------------------------

@blueprint.route("/entities/<name>/list-views/<view>", methods=["GET", "POST"])
def list_view(name: str, view: str) -> Response:
    """A list view by name (a new name makes a new view): label, columns, filter, sort."""
    with administrator() as page:
        entity = entity_of(page, name)
        existing = next((v for v in entity.list_views if v.name == view), None)
        values = dict(request.form) if request.method == "POST" else _list_inputs(entity, existing)

        def draw(errors: Errors) -> str:
            return studio_html("admin/list_view.html", page, entity=entity, view=view, values=values, errors=errors)

        if request.method == "GET":
            return studio_page("admin/list_view.html", page, entity=entity, view=view, values=values, errors={})
        spec: dict[str, Any] = {"label": label_value(values, "label") or view,
                                "columns": names_list(values.get("columns", ""))}
        if values.get("filter", "").strip():
            spec["filter"] = values["filter"].strip()
        if names_list(values.get("sort", "")):
            spec["sort"] = names_list(values["sort"])
        return propose(page, lambda d: d.set_view(name, "list_views", view, spec), draw,
                       url_for("studio.entity", name=name),
                       {"": "columns", "columns": "columns", "filter": "filter", "sort": "sort", "label": "label_en"})


def _list_inputs(entity: Entity, view) -> dict:
    if view is None:
        return {"columns": ", ".join(c for c in default_columns(entity) if c != "owner_id")}
    return {**label_inputs("label", view.label), "columns": ", ".join(view.columns), "filter": view.filter or "",
            "sort": sort_text(view.sort) or ""}


@blueprint.route("/entities/<name>/kanbans/<board>", methods=["GET", "POST"])
def kanban(name: str, board: str) -> Response:
    """A kanban board by name: the choice field its lanes are, the sum, the card's fields."""
    with administrator() as page:
        entity = entity_of(page, name)
        existing = next((k for k in entity.kanbans if k.name == board), None)
        values = dict(request.form) if request.method == "POST" else _board_inputs(existing)
        lanes = [(f.name, f.label.en) for f in entity.fields if f.type in ("choice", "stage")]
        sums = [(f.name, f.label.en) for f in entity.fields if f.value_type in ("integer", "decimal", "money")]

        def context(errors: Errors) -> dict:
            return {"entity": entity, "board": board, "values": values, "errors": errors, "lanes": lanes,
                    "sums": sums}

        if request.method == "GET":
            return studio_page("admin/kanban.html", page, **context({}))
        spec: dict[str, Any] = {"label": label_value(values, "label") or board, "group_by": values.get("group_by", ""),
                                "card_fields": names_list(values.get("card_fields", ""))}
        if values.get("sum"):
            spec["sum"] = values["sum"]
        return propose(page, lambda d: d.set_view(name, "kanbans", board, spec),
                       lambda errors: studio_html("admin/kanban.html", page, **context(errors)),
                       url_for("studio.entity", name=name),
                       {"": "group_by", "group_by": "group_by", "sum": "sum", "card_fields": "card_fields",
                        "label": "label_en"})


def _board_inputs(board) -> dict:
    if board is None:
        return {}
    return {**label_inputs("label", board.label), "group_by": board.group_by, "sum": board.sum_field or "",
            "card_fields": ", ".join(board.card_fields)}


# -- the pipeline ------------------------------------------------------------------------------------

def stage_rows(form: Mapping[str, str], count: int) -> tuple[list[tuple[int, str, dict]], Errors]:
    """The stage table's rows `stage.N.*` as (position, name, spec), blank rows skipped."""
    rows, errors = [], {}
    for n in range(count):
        name = form.get(f"stage.{n}.name", "").strip()
        if not name:
            continue
        probability = whole_number(form.get(f"stage.{n}.probability", ""))
        if probability is None or probability > 100:
            errors[f"stage.{n}.probability"] = ["a whole number from 0 to 100"]
        outcome = form.get(f"stage.{n}.outcome", "open")
        spec: dict[str, Any] = {"label": label_value(form, f"stage.{n}.label") or name,
                                "probability": probability or 0, "outcome": outcome}
        if names_list(form.get(f"stage.{n}.required_fields", "")):
            spec["required_fields"] = names_list(form[f"stage.{n}.required_fields"])
        rows.append((whole_number(form.get(f"stage.{n}.order", "")) or n, name, spec))
    return sorted(rows, key=lambda row: row[0]), errors


def stage_changes(stage: Stage, spec: dict) -> dict:
    """What the editor's row changes of a pack's stage (its name, place and outcome stay)."""
    label = spec["label"] if isinstance(spec["label"], dict) else {"en": spec["label"], "zh": spec["label"]}
    changes: dict[str, Any] = {}
    if Label.of(label, stage.name) != stage.label:
        changes["label"] = label
    if spec["probability"] != stage.probability:
        changes["probability"] = spec["probability"]
    if tuple(spec.get("required_fields", ())) != stage.required_fields:
        changes["required_fields"] = list(spec.get("required_fields", ()))
    return changes


def _stage_inputs(entity: Entity) -> dict:
    values: dict[str, Any] = {"field": entity.pipeline.field if entity.pipeline else ""}
    for n, stage in enumerate(entity.pipeline.stages if entity.pipeline else ()):
        values |= {f"stage.{n}.name": stage.name, f"stage.{n}.probability": stage.probability,
                   f"stage.{n}.outcome": stage.outcome, f"stage.{n}.order": n + 1,
                   f"stage.{n}.required_fields": ", ".join(stage.required_fields),
                   **label_inputs(f"stage.{n}.label", stage.label)}
    return values


@blueprint.route("/entities/<name>/pipeline", methods=["GET", "POST"])
def pipeline(name: str) -> Response:
    """The stages of a pipeline the layer owns (add, reorder, rename, probability, required
    fields); a pack's pipeline takes new stages, each after the row above it, and its own
    stages change label, probability and required fields (their names, order and outcomes
    are the pack's)."""
    with administrator() as page:
        entity = entity_of(page, name)
        owned = draft_of(page).owns(name)
        known = len(entity.pipeline.stages) if entity.pipeline else 0
        count = known + NEW_STAGE_ROWS
        values = dict(request.form) if request.method == "POST" else _stage_inputs(entity)

        def context(errors: Errors) -> dict:
            return {"entity": entity, "owned": owned, "values": values, "errors": errors, "rows": range(count),
                    "known": known if not owned else 0, "outcomes": OUTCOMES,
                    "stage_fields": [f.name for f in entity.fields if f.type == "stage"]}

        if request.method == "GET":
            return studio_page("admin/pipeline.html", page, **context({}))
        rows, errors = stage_rows(values, count)
        if errors:
            return studio_page("admin/pipeline.html", page, 422, **context(errors))
        if owned:
            field = values.get("field", "").strip() or "stage"
            spec = {"field": field, "stages": {stage: s for _, stage, s in rows}}

            def edit(draft: LayerDraft) -> str:
                if entity.field(field) is None:  # a stage field needs its pipeline: both at once
                    draft.add_field(name, field, {"type": "stage", "label": {"en": "Stage", "zh": "阶段"}})
                return draft.set_pipeline(name, spec)
        else:
            current = {s.name: s for s in entity.pipeline.stages} if entity.pipeline else {}

            def edit(draft: LayerDraft) -> str:
                path, previous = "$", None
                for _, stage, s in rows:  # a new stage goes after the row above it
                    if stage not in current:
                        path = draft.add_stage(name, stage, s | ({"after": previous} if previous else {}))
                    elif changes := stage_changes(current[stage], s):
                        path = draft.change_stage(name, stage, changes)
                    previous = stage
                return path
        return propose(page, edit, lambda errors: studio_html("admin/pipeline.html", page, **context(errors)),
                       url_for("studio.pipeline", name=name), {"field": "field", "stages": "_form"})
