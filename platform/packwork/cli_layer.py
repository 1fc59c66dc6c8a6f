"""`packwork layer`: the admin layer (customisations kept in the database) shown, planned,
applied, reverted, exported as a pack folder and imported from one."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from packwork.cli_options import db_option
from packwork.runtime import admin_layer
from packwork.runtime.db import make_engine


def _author_option(function):
    return click.option("--author", default=getpass.getuser, show_default="the current user",
                        help="Who made the change, as the layer's history records it.")(function)


@click.group()
def layer() -> None:
    """The admin layer: customisations on top of the installed packs, kept in the database.

    A layer FILE is a pack file (`extends:`, `entities:`, `permissions:`...) without the manifest
    keys; it is resolved after every installed pack, with the same checks."""


@layer.command("show")
@db_option
def layer_show(db_url: str) -> None:
    """The layer in force and every version applied."""
    with make_engine(db_url).connect() as conn:
        current = admin_layer.current_layer(conn)
        versions = admin_layer.history(conn)
    if current.empty:
        click.echo("No admin layer: the metadata is the installed packs' alone.")
    else:
        click.echo(f"Admin layer on {', '.join(current.depends)}:")
        click.echo(current.text.rstrip("\n"))
    if versions:
        click.echo("\nVersions (newest last):")
    for v in versions:
        restored = "" if v.restores is None else f"  reverts to version {v.restores}"
        click.echo(f"  {v.id}  {v.created_at:%Y-%m-%d %H:%M:%S}  {v.author}  metadata {v.meta_version_id}{restored}")


@layer.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
def layer_plan(file: str, db_url: str) -> None:
    """Show what making FILE the layer would change, with the exact DDL. Nothing is applied."""
    plan = admin_layer.plan_layer(make_engine(db_url), Path(file).read_text(encoding="utf-8"))
    click.echo(f"Plan for {db_url}:")
    click.echo(plan.render())


@layer.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@_author_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
def layer_apply(file: str, db_url: str, author: str, yes: bool) -> None:
    """Make FILE the layer: show the plan, then apply it in one transaction."""
    _plan_and_apply(make_engine(db_url), Path(file).read_text(encoding="utf-8"), author, yes)


@layer.command("revert")
@click.argument("version", type=click.IntRange(min=0))
@db_option
@_author_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
def layer_revert(version: int, db_url: str, author: str, yes: bool) -> None:
    """Bring back the layer of VERSION (0: no layer) as a new version; history is kept."""
    engine = make_engine(db_url)
    _plan_and_apply(engine, admin_layer.layer_text_at(engine, version), author, yes, restores=version)


@layer.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False))
@db_option
def layer_export(out_dir: str, db_url: str) -> None:
    """Write the layer as the pack folder OUT_DIR/admin_layer, which installs after its packs."""
    folder = admin_layer.export_layer(make_engine(db_url), out_dir)
    click.echo(f"Exported the admin layer to {folder}.")


@layer.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@db_option
@_author_option
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
def layer_import(folder: str, db_url: str, author: str, yes: bool) -> None:
    """Make the layer of an exported folder this database's layer (its depends are made again)."""
    _plan_and_apply(make_engine(db_url), admin_layer.read_layer_folder(folder), author, yes)


def _plan_and_apply(engine, text: str, author: str, yes: bool, restores: int | None = None) -> None:
    plan = admin_layer.plan_layer(engine, text)
    click.echo("Plan:")
    click.echo(plan.render())
    if plan.empty:
        click.echo("Nothing to do.")
        return
    if not yes and not click.confirm("Apply this plan?", default=False):
        raise click.exceptions.Abort()
    width = len(str(len(plan.changes) + 1))
    version = admin_layer.apply_layer(
        engine, text, author, plan=plan, restores=restores,
        progress=lambda step, total, what: click.echo(f"[{step:>{width}}/{total}] {what}"))
    click.echo(f"Applied as layer version {version.id}. Metadata version {plan.metadata.version}.")
