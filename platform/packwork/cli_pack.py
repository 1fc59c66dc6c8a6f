"""`packwork pack`: create, check, build, plan, install, upgrade and uninstall packs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from packwork.cli_options import db_option, load_packs
from packwork.errors import PackError, PackworkError
from packwork.runtime.db import make_engine
from packwork.runtime.installer import describe_sources, plan_packs, plan_purge, plan_uninstall
from packwork.runtime.migrate import apply


@click.group()
def pack() -> None:
    """Create, validate, build, plan, install, upgrade and uninstall packs.

    A PATH is a pack folder or an archive made by `pack build` (checked against its checksum
    before anything else)."""


@pack.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def pack_validate(paths: tuple[str, ...]) -> None:
    """Check packs (and the packs they depend on) and report every problem."""
    from packwork.runtime.data_migrations import code_problems
    metadata = load_packs(paths)
    if problems := code_problems(metadata.migrations):  # what the sandbox's compiler refuses
        raise PackError(problems)
    click.echo(f"OK: {', '.join(p.name + ' ' + p.version for p in metadata.packs)} "
               f"({len(metadata.entities)} entities, metadata version {metadata.version})")


@pack.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def pack_test(paths: tuple[str, ...]) -> None:
    """Run the test cases packs declare for their rules (no database needed)."""
    from packwork.rules.testing import run_pack_tests
    outcomes = run_pack_tests(load_packs(paths))
    for outcome in outcomes:
        click.echo(outcome.describe())
    failed = sum(1 for o in outcomes if o.problem is not None)
    click.echo(f"{len(outcomes) - failed} passed, {failed} failed.")
    if failed:
        sys.exit(1)


@pack.command("plan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@db_option
@click.option("--force", is_flag=True, help="Accept type changes that could lose data.")
def pack_plan(paths: tuple[str, ...], db_url: str, force: bool) -> None:
    """Show what installing or upgrading these packs would change, with the exact DDL.
    The database is not touched."""
    plan = plan_packs(make_engine(db_url), list(paths), "plan", force=force)
    click.echo(f"Plan for {db_url}:")
    click.echo(plan.render())


def _install_command(mode: str):
    @click.argument("paths", nargs=-1, required=True, type=click.Path())
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


@pack.command("uninstall")
@click.argument("name")
@db_option
@click.option("--purge", is_flag=True, help="Also drop the pack's tables and columns, with their data.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
def pack_uninstall(name: str, db_url: str, purge: bool, yes: bool) -> None:
    """Remove pack NAME, keeping its tables and data unless --purge.

    A new metadata version without the pack; its tables and columns stay, orphaned (installing
    it again brings them back), or with --purge are dropped. Refused while another installed
    pack depends on it."""
    engine = make_engine(db_url)
    plan = plan_uninstall(engine, name, purge=purge)
    _show_and_apply(engine, plan, yes, f"uninstall {name}{' and purge its data' if purge else ''}",
                    destructive=purge)


@pack.command("build")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write the archive and its checksum into.")
def pack_build(path: str, out_dir: str) -> None:
    """Check the pack at PATH, then pack it into NAME-VERSION.tar.gz with its sha256 beside it
    (NAME-VERSION.tar.gz.sha256). The same files always give the same bytes."""
    from packwork.runtime.archives import build_archive
    built = build_archive(path, out_dir)
    click.echo(f"Built {built.path} ({built.files} files, {built.size:,} bytes).")
    click.echo(f"sha256 {built.sha256} (in {built.checksum_path}); ship both files.")


@pack.command("new")
@click.argument("name")
@click.option("--extends", "base", metavar="PACK", help="The pack this one depends on and extends.")
@click.option("--out", "out_dir", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create the pack folder NAME in.")
def pack_new(name: str, base: str | None, out_dir: str) -> None:
    """Create a working pack to start from: pack.yaml, an example entity and a rule with its
    tests, with the schema modeline editors read."""
    from packwork.metadata import scaffold
    for value, what in ((name, "NAME"), (base, "--extends")):
        if value is not None and (why := scaffold.name_problem(value)):
            raise click.BadParameter(why, param_hint=what)
    if base == name:
        raise click.BadParameter("a pack cannot extend itself", param_hint="--extends")
    folder = Path(out_dir) / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PackworkError(f"{folder} exists already and is not an empty folder; nothing was written")
    files = scaffold.scaffold_files(name, base, scaffold.schema_reference(os.path.abspath(folder)))
    folder.mkdir(parents=True, exist_ok=True)
    for relative, text in files.items():
        (folder / relative).write_text(text, encoding="utf-8")
    click.echo(f"Created pack {name} in {folder}: {', '.join(files)}.")
    click.echo(f"Next: packwork pack validate {folder} && packwork pack test {folder}"
               + (f" ({base} is found beside it or given as another PATH)" if base else ""))


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
