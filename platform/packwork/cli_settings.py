"""`packwork setting`: the values of pack settings."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import click

from packwork.cli_options import db_option
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.settings import list_settings, set_setting, unset_setting

def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, Decimal, str)) else repr(value)


@click.group()
def setting() -> None:
    """Show and change pack settings (what rules and filters read as settings)."""


@setting.command("list")
@db_option
def setting_list(db_url: str) -> None:
    """Every setting the installed packs declare, with its value now."""
    with make_engine(db_url).connect() as conn:
        listed = list_settings(conn, load_catalog(conn).metadata)
    if not listed:
        click.echo("The installed packs declare no settings.")
    for item in listed:
        source = "default" if item.is_default else f"set; default {_shown(item.setting.default)}"
        click.echo(f"{item.setting.name} = {_shown(item.value)}  ({item.setting.type}, {source})  "
                   f"{item.setting.label.en}")


@setting.command("set")
@click.argument("name")
@click.argument("value")
@db_option
def setting_set(name: str, value: str, db_url: str) -> None:
    """Give setting NAME the value VALUE (checked against its type)."""
    with make_engine(db_url).begin() as conn:
        stored = set_setting(conn, load_catalog(conn).metadata, name, value, datetime.now(timezone.utc))
    click.echo(f"{name} = {_shown(stored)}")


@setting.command("unset")
@click.argument("name")
@db_option
def setting_unset(name: str, db_url: str) -> None:
    """Forget NAME's value: its pack default holds again."""
    with make_engine(db_url).begin() as conn:
        default = unset_setting(conn, load_catalog(conn).metadata, name)
    click.echo(f"{name} = {_shown(default)} (the default)")
