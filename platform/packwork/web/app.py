"""The WSGI application: one engine and one catalog cache per process."""

from __future__ import annotations

import os
from flask import Flask

from packwork.runtime.catalog import CatalogCache
from packwork.runtime.db import make_engine
from packwork.web import api, problems
from packwork.web.services import Services

DEFAULT_DB = "sqlite:///packwork.db"


def create_app(database_url: str | None = None, **config: object) -> Flask:
    app = Flask("packwork.web")
    app.config.update(config)
    url = database_url or os.environ.get("PACKWORK_DATABASE_URL", DEFAULT_DB)
    app.extensions["packwork"] = Services(make_engine(url), CatalogCache())
    app.json.sort_keys = False
    app.json.compact = True
    problems.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(api.docs)
    return app

