"""What a running app holds per process: the engine and the catalog cache."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask

from packwork.runtime.catalog import CatalogCache


@dataclass
class Services:
    engine: sa.Engine
    catalogs: CatalogCache


def services(app: Flask) -> Services:
    return app.extensions["packwork"]
