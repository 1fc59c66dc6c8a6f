"""What a running app holds per process: the engine and the catalog cache."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from packwork.runtime.catalog import CatalogCache
from packwork.runtime.ratelimit import Limiter


@dataclass
class Services:
    engine: sa.Engine
    catalogs: CatalogCache
    api_limiter: Limiter | None = None  # requests per API token, None: unlimited
    query_timeout: float | None = None  # seconds a read's queries may take, None: no limit


def services(app: Flask) -> Services:
    return app.extensions["packwork"]
