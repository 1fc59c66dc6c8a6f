"""The `packwork` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from packwork.errors import MigrationRefused, PackError, PackworkError
from packwork.metadata.loader import read_pack_folders
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore
from packwork.runtime.db import make_engine
from packwork.runtime.installer import describe_sources, plan_packs, plan_purge
from packwork.runtime.migrate import apply

DEFAULT_DB = "sqlite:///packwork.db"


def db_option(function):
    return click.option("--db", "db_url", default=lambda: os.environ.get("PACKWORK_DATABASE_URL", DEFAULT_DB),
                        show_default="$PACKWORK_DATABASE_URL or " + DEFAULT_DB,
                        help="Database URL.")(function)


@click.group()
@click.version_option(package_name="packwork")
def main() -> None:
    """Packwork: YAML packs in, a CRM out."""


@main.group()
def pack() -> None:
    """Validate, plan, install and upgrade packs."""


@pack.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False))
def pack_validate(paths: tuple[str, ...]) -> None:
    """Check packs (and the packs they depend on) and report every problem."""
    metadata = _load(paths)
    click.echo(f"OK: {', '.join(p.name + ' ' + p.version for p in metadata.packs)} "
               f"({len(metadata.entities)} entities, metadata version {metadata.version})")


@pack.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False))
@db_option
@click.option("--force", is_flag=True, help="Accept type changes that could lose data.")
def pack_plan(paths: tuple[str, ...], db_url: str, force: bool) -> None:
    """Show what installing or upgrading these packs would change, with the exact DDL.
    The database is not touched."""
    plan = plan_packs(make_engine(db_url), list(paths), "plan", force=force)
    click.echo(f"Plan for {db_url}:")
    click.echo(plan.render())


def _install_command(mode: str):
    @click.argument("paths", nargs=-1, required=True, type=click.Path(file_okay=False))
    @db_option
    @click.option("--force", is_flag=True, help="Accept type changes that could lose data.")
    @click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
    def command(paths: tuple[str, ...], db_url: str, force: bool, yes: bool) -> None:
        engine = make_engine(db_url)
        plan = plan_packs(engine, list(paths), mode, force=force)
        _show_and_apply(engine, plan, yes, f"{mode} {describe_sources(plan.packs)}")
    return command


pack.command("install", help="Install packs: show the plan, then apply it in one transaction.")(
    _install_command("install"))
pack.command("upgrade", help="Upgrade installed packs to these folders' versions, keeping all data.")(
    _install_command("upgrade"))


@pack.command("purge")
@db_option
@click.option("--yes", "-y", is_flag=True, help="Purge without asking.")
def pack_purge(db_url: str, yes: bool) -> None:
    """Drop orphaned columns and tables (fields and entities removed from packs) and their data."""
    engine = make_engine(db_url)
    _show_and_apply(engine, plan_purge(engine), yes, "purge orphans", destructive=True)


def _show_and_apply(engine, plan, yes: bool, summary: str, destructive: bool = False) -> None:
    click.echo("Plan:")
    click.echo(plan.render())
    if plan.empty:
        click.echo("Nothing to do.")
        return
    question = "Drop this data for good?" if destructive else "Apply this plan?"
    if not yes and not click.confirm(question, default=False):
        raise click.exceptions.Abort()
    width = len(str(len(plan.changes) + 1))
    apply(engine, plan, lambda step, total, text: click.echo(f"[{step:>{width}}/{total}] {text}"), summary)
    click.echo(f"Applied. Metadata version {plan.metadata.version if plan.metadata else '(unchanged)'}.")


def standard_pack_folder() -> Path:
    """packs/standard_crm of a source checkout (the demo runs from one)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "packs" / "standard_crm" / "pack.yaml").is_file():
            return base / "packs" / "standard_crm"
    raise PackworkError("packs/standard_crm not found: run the demo from a Packwork checkout")


@main.command()
@click.option("--db", "db_url", default="sqlite:///packwork-demo.db", show_default=True)
def demo(db_url: str) -> None:
    """Install (or bring up to date) the standard CRM in a demo database and show it."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        installed = packstore.installed_packs(conn)
    mode = "upgrade" if "standard_crm" in installed else "install"
    plan = plan_packs(engine, [standard_pack_folder()], mode)
    if not plan.empty:
        apply(engine, plan, summary=f"demo {mode}")
    click.echo(f"Standard CRM {'updated' if not plan.empty else 'already up to date'} in {db_url}.")
    db_status.callback(db_url)


@main.group()
def db() -> None:
    """Inspect the database."""


@db.command("status")
@db_option
def db_status(db_url: str) -> None:
    """Installed packs, the metadata version, tables and orphaned data."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        current = packstore.current_version(conn)
        packs = packstore.installed_packs(conn)
    if current is None:
        click.echo(f"{db_url}: no packs installed.")
        return
    click.echo(f"Metadata version {current.version} (#{current.id}, applied {current.applied_at:%Y-%m-%d %H:%M})")
    click.echo(f"  last change: {current.summary}")
    click.echo("Installed packs: " + ", ".join(f"{n} {v}" for n, v in sorted(packs.items())))
    for name, table in current.schema.tables.items():
        note = " (orphaned: entity removed; data kept until purge)" if table.orphaned else ""
        click.echo(f"  {table.kind} {name}: {len(table.columns)} columns{note}")
        for column in table.orphans:
            click.echo(f"    orphaned column {column.name} (data kept until `packwork pack purge`)")


def _load(paths):
    sources, problems = read_pack_folders(list(paths))
    if problems:
        raise PackError(problems)
    return resolve_sources(sources)


def run() -> None:
    """Entry point that turns known errors into messages and exit codes, never tracebacks."""
    try:
        main(standalone_mode=False)
    except PackError as exc:
        for problem in exc.problems:
            click.echo(problem.format(), err=True)
        click.echo(f"{len(exc.problems)} problem(s) found.", err=True)
        sys.exit(1)
    except MigrationRefused as exc:
        click.echo("Refused:\n  " + "\n  ".join(exc.reasons), err=True)
        click.echo("Nothing was changed. Re-run with --force to accept the loss.", err=True)
        sys.exit(1)
    except PackworkError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
