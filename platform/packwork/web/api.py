"""The REST API under /api/v1: HTTP in, `runtime.records` calls, JSON out. No entity is named
here and no rule is checked here; this module only translates."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for

from packwork.errors import BadRequest, QueryTimeout, RequestError, TooManyRequests, Unauthorized
from packwork.runtime import importer, records, reports
from packwork.runtime.db import end_limit, is_timeout, limit_queries, reading
from packwork.runtime.listing import ListQuery, split_names
from packwork.runtime.ratelimit import Limiter
from packwork.runtime.records import Context
from packwork.runtime.tokens import authenticate, digest
from packwork.web import exports, meta, openapi
from packwork.web.retrying import RetryingBlueprint
from packwork.web.services import services


# Every view runs through `runtime.db.retrying` (web/retrying.py): a lost race runs again, whole.
blueprint = RetryingBlueprint("api", __name__, url_prefix="/api/v1")
docs = Blueprint("api_docs", __name__, url_prefix="/api", template_folder="templates",
                 static_folder="static", static_url_path="/static")
MAX_BODY = 10 * 1024 * 1024


class UnsupportedMediaType(RequestError):
    status = 415
    code = "REQ-E415"
    title = "Unsupported media type"


@contextmanager
def unit_of_work(write: bool = False) -> Iterator[Context]:
    """One transaction for the request: authenticate, pick the catalog, do the work."""
    state = services(current_app)
    with (state.engine.connect() if write else reading(state.engine)) as conn, conn.begin():
        secret = _bearer()
        auth = authenticate(conn, secret)
        if auth is None:
            raise Unauthorized("the API token is missing, unknown or revoked")
        if state.api_limiter is not None:
            _within_rate(state.api_limiter, secret)
        catalog = state.catalogs.current(conn, auth.version_id)
        if write or state.query_timeout is None:  # a write (an import) may take as long as it needs
            yield Context.start(conn, catalog, auth.actor)
            return
        limit_queries(conn, state.query_timeout)
        try:
            yield Context.start(conn, catalog, auth.actor)
        except sa.exc.DBAPIError as exc:
            if not is_timeout(exc):
                raise
            raise QueryTimeout(f"the query ran longer than {state.query_timeout:g} s; narrow the filter, or ask "
                               "for fewer records or columns") from None
        finally:
            end_limit(conn)


def _within_rate(limiter: Limiter, secret: str) -> None:
    wait = limiter.wait_needed(digest(secret))
    if wait:
        rate = limiter.rate
        raise TooManyRequests(f"this token made more than {rate.burst} requests in {rate.period:g} s; "
                              f"try again in {math.ceil(wait)} s", math.ceil(wait))


def _bearer() -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _body() -> object:
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json")
    if (request.content_length or 0) > MAX_BODY:
        raise BadRequest(f"the body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(request.get_data(), parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _if_match() -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()) or len(tag) > 18:
        raise BadRequest("If-Match must be the record's ETag (its version)", {"version": ["bad If-Match"]})
    return int(tag)


def _record(data: dict, status: int = 200) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.headers["ETag"] = f'"{data["version"]}"'
    return response


@blueprint.get("/<entity>")
def list_records(entity: str):
    query = ListQuery.from_params(request.args.to_dict())
    with unit_of_work() as ctx:
        page = records.list_records(ctx, entity, query)
    return _page(page)


def _page(page: records.Page) -> Response:
    body = {"data": page.data, "next": page.next}
    if page.count is not None:
        body["count"] = page.count
    return jsonify(body)


@blueprint.post("/<entity>")
def create_record(entity: str):
    body = _body()
    with unit_of_work(write=True) as ctx:
        data = records.create_record(ctx, entity, body)
    response = _record(data, 201)
    response.headers["Location"] = url_for("api.get_record", entity=entity, record_id=data["id"])
    return response


@blueprint.post("/<entity>/bulk")
def bulk_write(entity: str):
    body = _body()
    with unit_of_work(write=True) as ctx:
        return jsonify({"data": records.bulk_write(ctx, entity, body)})


@blueprint.get("/<entity>/export")
def export_records(entity: str):
    """CSV of every record the caller may export, with the list's filter, sort and fields,
    streamed as the records are read."""
    query = ListQuery.from_params(request.args.to_dict())
    body = exports.streamed(unit_of_work, "csv", lambda ctx: records.export_records(ctx, entity, query))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{entity}.csv"'})


@blueprint.get("/<entity>/deleted")
def list_deleted(entity: str):
    """The recycle bin: deleted records the caller may restore, newest deletion first."""
    query = ListQuery.from_params(request.args.to_dict())
    with unit_of_work() as ctx:
        page = records.list_deleted(ctx, entity, query)
    return _page(page)


@blueprint.post("/<entity>/import")
def import_records(entity: str):
    """Under the import grant: a JSON array of rows, all or nothing (201, the records); or a
    CSV or XLSX file (multipart `file`, or the body as text/csv or XLSX) answered with the
    import report (200), whose `errors` name each refused row by its row in the file."""
    if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
        body = _body()
        with unit_of_work(write=True) as ctx:
            return jsonify({"data": records.bulk_write(ctx, entity, body, action="import")}), 201
    data, filename = _import_file()
    options = importer.ImportOptions(mode=request.args.get("mode", "all_or_nothing"),
                                     keys=split_names(",".join(request.args.getlist("key"))),
                                     dry_run=_flag_arg("dry_run"))
    with unit_of_work(write=True) as ctx:
        return jsonify(importer.import_file(ctx, entity, data, filename, options).as_json())


IMPORT_TYPES = ("text/csv", "text/plain", "application/octet-stream", exports.KINDS["xlsx"])


def _import_file() -> tuple[bytes, str | None]:
    # the app's MAX_CONTENT_LENGTH (413) bounds the file: some 100,000 rows of a typical CSV
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise BadRequest("send the file as the multipart field `file`", {"file": ["is required"]})
        return upload.read(), upload.filename
    if request.mimetype not in IMPORT_TYPES:
        raise UnsupportedMediaType("send a JSON array, a CSV or XLSX file, or multipart/form-data with `file`")
    return request.get_data(), None


def _flag_arg(name: str) -> bool:
    text = request.args.get(name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false", {name: ["must be true or false"]})
    return text in ("true", "1")


@blueprint.get("/<entity>/<int:record_id>/shares")
def record_shares(entity: str, record_id: int):
    with unit_of_work() as ctx:
        return jsonify({"data": records.record_shares(ctx, entity, record_id)})


@blueprint.post("/<entity>/<int:record_id>/shares")
def share_record(entity: str, record_id: int):
    body = _body()
    with unit_of_work(write=True) as ctx:
        return jsonify(records.share_record(ctx, entity, record_id, body)), 201


@blueprint.delete("/<entity>/<int:record_id>/shares/<int:share_id>")
def unshare_record(entity: str, record_id: int, share_id: int):
    with unit_of_work(write=True) as ctx:
        records.unshare_record(ctx, entity, record_id, share_id)
    return Response(status=204)


@blueprint.get("/<entity>/<int:record_id>/links/<relation>")
def list_links(entity: str, record_id: int, relation: str):
    with unit_of_work() as ctx:
        return jsonify(records.list_links(ctx, entity, record_id, relation))


@blueprint.post("/<entity>/<int:record_id>/links/<relation>")
def link_record(entity: str, record_id: int, relation: str):
    body = _body()
    with unit_of_work(write=True) as ctx:
        return jsonify(records.link(ctx, entity, record_id, relation, body)), 201


@blueprint.delete("/<entity>/<int:record_id>/links/<relation>/<int:link_id>")
def unlink_record(entity: str, record_id: int, relation: str, link_id: int):
    with unit_of_work(write=True) as ctx:
        records.unlink(ctx, entity, record_id, relation, link_id)
    return Response(status=204)


@blueprint.post("/transfers")
def transfer_records():
    """Give every record of `from` to `to` (user ids), as far as the caller's grants reach."""
    body = _body()
    if not isinstance(body, dict) or not {"from", "to"} <= body.keys():
        raise BadRequest("send `from` and `to` user ids", {"from": ["is required"], "to": ["is required"]})
    entities = body.get("entities")
    if entities is not None and (not isinstance(entities, list) or not all(isinstance(e, str) for e in entities)):
        raise BadRequest("entities must be a list of entity names", {"entities": ["must be a list of names"]})
    with unit_of_work(write=True) as ctx:
        return jsonify(records.transfer_records(ctx, body["from"], body["to"], entities))


@blueprint.get("/<entity>/<int:record_id>")
def get_record(entity: str, record_id: int):
    with unit_of_work() as ctx:
        expand = split_names(request.args.get("expand", ""))
        return _record(records.get_record(ctx, entity, record_id, expand))


@blueprint.patch("/<entity>/<int:record_id>")
def update_record(entity: str, record_id: int):
    body, version = _body(), _if_match()
    with unit_of_work(write=True) as ctx:
        return _record(records.update_record(ctx, entity, record_id, body, version))


@blueprint.delete("/<entity>/<int:record_id>")
def delete_record(entity: str, record_id: int):
    version = _if_match()
    with unit_of_work(write=True) as ctx:
        records.delete_record(ctx, entity, record_id, version)
    return Response(status=204)


@blueprint.post("/<entity>/<int:record_id>/restore")
def restore_record(entity: str, record_id: int):
    with unit_of_work(write=True) as ctx:
        return _record(records.restore_record(ctx, entity, record_id))


@blueprint.get("/<entity>/<int:record_id>/history")
def history(entity: str, record_id: int):
    with unit_of_work() as ctx:
        return jsonify({"data": records.history(ctx, entity, record_id)})


@blueprint.get("/<entity>/<int:record_id>/actions")
def available_actions(entity: str, record_id: int):
    """The pack actions the caller may run on this record now."""
    with unit_of_work() as ctx:
        return jsonify({"data": [meta.describe_action(rule) for rule in
                                 records.available_actions(ctx, entity, record_id)]})


@blueprint.post("/<entity>/<int:record_id>/actions/<action>")
def run_action(entity: str, record_id: int, action: str):
    """Run a pack action: the body gives `version` (or If-Match) and the action's `inputs`."""
    body, version = (_body() if request.get_data() else None), _if_match()
    with unit_of_work(write=True) as ctx:
        result = records.run_action(ctx, entity, record_id, action, body, version)
    response = jsonify(result)
    response.headers["ETag"] = f'"{result["record"]["version"]}"'
    return response


@blueprint.get("/meta")
def meta_all():
    with unit_of_work() as ctx:
        return jsonify(meta.describe_all(ctx))


@blueprint.get("/meta/<entity>")
def meta_entity(entity: str):
    with unit_of_work() as ctx:
        return jsonify(meta.describe_entity(ctx, entity))


@blueprint.get("/reports")
def list_reports():
    """The reports the caller may run: those whose entity and grouped fields they may read."""
    with unit_of_work() as ctx:
        return jsonify({"data": [_report_info(ctx, r) for r in reports.reports_for(ctx)]})


def _report_info(ctx: Context, report) -> dict:
    language = ctx.actor.language
    return {"name": report.name, "label": report.label.get(language), "entity": report.entity,
            "chart": report.chart}


@blueprint.get("/reports/<name>")
def run_report(name: str):
    with unit_of_work() as ctx:
        return jsonify(reports.run_report(ctx, name))


@blueprint.get("/dashboards")
def list_dashboards():
    with unit_of_work() as ctx:
        language = ctx.actor.language
        return jsonify({"data": [{"name": d.name, "label": d.label.get(language),
                                  "reports": [item.report for item in d.items]}
                                 for d in reports.dashboards_for(ctx)]})


@blueprint.get("/dashboards/<name>")
def run_dashboard(name: str):
    with unit_of_work() as ctx:
        return jsonify(reports.run_dashboard(ctx, name))


@blueprint.get("/openapi.json")
def openapi_document():
    """Public, like the docs page that loads it: it describes shapes, never records."""
    state = services(current_app)
    with reading(state.engine) as conn, conn.begin():
        catalog = state.catalogs.current(conn)
    return jsonify(openapi.document(catalog, request.host_url.rstrip("/")))


@docs.get("/docs")
def docs_page():
    return render_template("api/docs.html", spec_url=url_for("api.openapi_document"))
