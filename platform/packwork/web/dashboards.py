"""Dashboards in the UI: the navigation's list of them and a page per dashboard, each report a
chart drawn in the browser (`static/ui/charts.js` with the vendored Chart.js) from a JSON block
the page carries, and its figures as a table for screen readers and for anyone who wants the
numbers. The figures come from `runtime.reports`, run as the signed-in user."""

from __future__ import annotations

from flask import g

from packwork.runtime import reports
from packwork.web.pages import render_block, signed_in
from packwork.web.ui import blueprint

CHART_TYPES = {"bar": "bar", "line": "line", "pie": "pie", "funnel": "bar"}  # a funnel: bars along the stages


@blueprint.app_context_processor
def _dashboard_nav() -> dict:
    page = g.get("page")
    if page is None:
        return {}
    return {"dashboard_nav": [(d.name, d.label.get(page.language)) for d in reports.dashboards_for(page.ctx)]}


@blueprint.get("/dashboards")
def dashboards() -> str:
    with signed_in() as page:
        boards = [(d.name, d.label.get(page.language)) for d in reports.dashboards_for(page.ctx)]
        return render_block("ui/dashboards.html", None, boards=boards)


@blueprint.get("/dashboards/<name>")
def dashboard(name: str) -> str:
    with signed_in() as page:
        board = reports.run_dashboard(page.ctx, name)
        return render_block("ui/dashboard.html", None, board=board, current_dashboard=name,
                            charts={r["name"]: chart_data(r) for r in board["reports"]},
                            tables={r["name"]: table(r) for r in board["reports"]})


def _group_label(group: dict) -> str:
    return " · ".join(key["label"] for key in group["keys"])


def chart_data(report: dict) -> dict:
    """What charts.js hands to Chart.js: the type, the labels along the axis and one dataset per
    measure (with two keys, per measure and value of the second key: grouped bars)."""
    chart = report["chart"]
    measures = report["measures"][:1] if chart == "pie" else report["measures"]
    if len(report["keys"]) == 2:
        labels, datasets = _two_keys(report, measures)
    else:
        labels = [_group_label(g) for g in report["groups"]]
        datasets = [{"label": m["label"], "data": [g["figures"][m["name"]] for g in report["groups"]]}
                    for m in measures]
    if chart != "pie" and len(report["keys"]) == 1:
        _second_axis_for_counts(measures, datasets)
    return {"type": CHART_TYPES.get(chart, "bar"), "horizontal": chart == "funnel", "labels": labels,
            "datasets": datasets}


def _second_axis_for_counts(measures: list[dict], datasets: list[dict]) -> None:
    """Counts drawn beside sums get an axis of their own: on the sums' axis, 120 records next to
    a 100,000,000 amount would be an invisible bar."""
    counts = {m["name"] for m in measures if m["function"] == "count"}
    if counts and len(counts) < len(measures):
        for measure, dataset in zip(measures, datasets):
            dataset["axis"] = "count" if measure["name"] in counts else "amount"


def _two_keys(report: dict, measures: list[dict]) -> tuple[list[str], list[dict]]:
    firsts = list(dict.fromkeys((g["keys"][0]["value"], g["keys"][0]["label"]) for g in report["groups"]))
    seconds = list(dict.fromkeys((g["keys"][1]["value"], g["keys"][1]["label"]) for g in report["groups"]))
    cells = {(g["keys"][0]["value"], g["keys"][1]["value"]): g["figures"] for g in report["groups"]}
    datasets = []
    for measure in measures:
        for value, label in seconds:
            name = label if len(measures) == 1 else f"{measure['label']} · {label}"
            datasets.append({"label": name, "data": [cells.get((first, value), {}).get(measure["name"])
                                                     for first, _ in firsts]})
    return [label for _, label in firsts], datasets


def figure_text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def table(report: dict) -> dict:
    """The figures as rows of text: the keys' labels, then each measure's figure, then (for a
    funnel with conversion) the rate to the next stage."""
    rates = {c["from"]: c["rate"] for c in report.get("conversion", ())}
    rows = []
    for group in report["groups"]:
        cells = [figure_text(group["figures"][m["name"]]) for m in report["measures"]]
        if "conversion" in report:
            rate = rates.get(group["keys"][0]["value"])
            cells.append(f"{rate * 100:.1f}%" if rate is not None else "—")
        rows.append({"keys": [k["label"] for k in group["keys"]], "cells": cells})
    return {"keys": [k["label"] for k in report["keys"]], "measures": [m["label"] for m in report["measures"]],
            "conversion": "conversion" in report, "rows": rows}
