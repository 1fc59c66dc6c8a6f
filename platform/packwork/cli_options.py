"""What the command-line modules share: the database option and reading pack paths."""

from __future__ import annotations

import os

import click

from packwork.errors import PackError
from packwork.metadata.model import Metadata
from packwork.metadata.resolver import resolve_sources
from packwork.runtime.archives import read_pack_paths

DEFAULT_DB = "sqlite:///packwork.db"


def db_option(function):
    return click.option("--db", "db_url", default=lambda: os.environ.get("PACKWORK_DATABASE_URL", DEFAULT_DB),
                        show_default="$PACKWORK_DATABASE_URL or " + DEFAULT_DB,
                        help="Database URL.")(function)


def load_packs(paths: tuple[str, ...] | list[str]) -> Metadata:
    """The metadata of pack folders or archives (and the packs they depend on), or PackError."""
    sources, problems = read_pack_paths(list(paths))
    if problems:
        raise PackError(problems)
    return resolve_sources(sources)
