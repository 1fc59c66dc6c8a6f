"""The baseline for bench/api.py: bare Flask endpoints running the equivalent raw SQL.

No token check, no metadata, no validation, no audit: just the statement and a JSON answer of
the same shape, served by the same gunicorn with the same workers as Packwork."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask, jsonify, request

from packwork.runtime.db import make_engine, reading

LIST = sa.text("SELECT * FROM account WHERE deleted_at IS NULL AND industry = :industry "
               "ORDER BY name ASC, id ASC LIMIT :limit")  # bound, as SQLAlchemy binds it
GET = sa.text("SELECT * FROM account WHERE id = :id")
CREATE = sa.text("INSERT INTO account (name, level, created_at, updated_at, version) "
                 "VALUES (:name, :level, :now, :now, 1) RETURNING *")


def _json(row) -> dict:
    return {k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, datetime) else v)
            for k, v in row._mapping.items()}


def create_app() -> Flask:
    app = Flask(__name__)
    engine = make_engine(os.environ["BARE_DATABASE_URL"])  # same connection settings as Packwork

    @app.get("/list")
    def list_page():
        with reading(engine) as conn:  # SQLite: a read transaction, as Packwork's reads use
            rows = conn.execute(LIST, {"industry": request.args.get("industry", "retail"), "limit": 51}).all()
        return jsonify({"data": [_json(r) for r in rows[:50]], "next": None})

    @app.get("/get/<int:record_id>")
    def get_one(record_id: int):
        with reading(engine) as conn:
            return jsonify(_json(conn.execute(GET, {"id": record_id}).one()))

    @app.post("/create")
    def create():
        body = request.get_json()
        with engine.begin() as conn:
            row = conn.execute(CREATE, {"name": body["name"], "level": "potential",
                                        "now": datetime.now(timezone.utc)}).one()
        return jsonify(_json(row)), 201

    return app
