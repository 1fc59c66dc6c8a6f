"""`packwork serve`: the app under gunicorn, configured in code (no config file to lose)."""

from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication

from packwork.web.app import create_app


class _Server(BaseApplication):
    def __init__(self, database_url: str, options: dict):
        self.database_url, self.options = database_url, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self.database_url)


def run_gunicorn(database_url: str, host: str, port: int, workers: int, threads: int = 1) -> None:
    os.environ["PACKWORK_DATABASE_URL"] = database_url
    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
               "worker_class": "gthread" if threads > 1 else "sync", "accesslog": None,
               "preload_app": False}
    _Server(database_url, options).run()
