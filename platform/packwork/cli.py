"""The `packwork` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from packwork.cli_options import db_option, load_packs
from packwork.errors import MigrationRefused, PackError, PackworkError
from packwork.metadata.access import ACTIONS, ADMIN_ROLE, role_matrix
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore, tokens, users
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.migrate import apply

@click.group()
@click.version_option(package_name="packwork")
def main() -> None:
    """Packwork: YAML packs in, a CRM out."""


def standard_pack_folder() -> Path:
    """packs/standard_crm of a source checkout (the demo runs from one)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "packs" / "standard_crm" / "pack.yaml").is_file():
            return base / "packs" / "standard_crm"
    raise PackworkError("packs/standard_crm not found: run the demo from a Packwork checkout")


@main.command()
@click.option("--db", "db_url", default="sqlite:///packwork-demo.db", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the web UI afterwards.")
@click.option("--data/--no-data", default=True, show_default=True,
              help="Create the pack's demo data set (once per database).")
def demo(db_url: str, port: int, serve: bool, data: bool) -> None:
    """Install (or bring up to date) the standard CRM in a demo database, give every role of it
    a demo user (passwords printed once), create its demo data set the first time, and serve
    the web UI."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        installed = packstore.installed_packs(conn)
    mode = "upgrade" if "standard_crm" in installed else "install"
    plan = plan_packs(engine, [standard_pack_folder()], mode)
    if not plan.empty:
        apply(engine, plan, summary=f"demo {mode}")
    click.echo(f"Standard CRM {'updated' if not plan.empty else 'already up to date'} in {db_url}.")
    with engine.begin() as conn:
        created = users.ensure_demo_users(conn, [*_installed_roles(conn), ADMIN_ROLE])  # admin: the studio
    for username, password in created:
        click.echo(f"  demo user {username}, password {password}")
    if not created:
        click.echo("  demo users exist already (`packwork user password NAME` sets a new password)")
    if data:
        _demo_data(engine, standard_pack_folder())
    if serve:
        from packwork.web.server import run_gunicorn
        click.echo(f"Serving the CRM at http://127.0.0.1:{port}/ (Ctrl-C stops it).")
        run_gunicorn(db_url, "127.0.0.1", port, workers=2)


def _demo_data(engine, pack_folder: Path) -> None:
    """The pack's demo data set, unless the database holds records already."""
    from packwork.runtime import demo_data
    from packwork.runtime.catalog import load_catalog
    path = demo_data.spec_path(pack_folder)
    if not path.is_file():
        return
    spec = demo_data.load_spec(path)
    with engine.connect() as conn:
        if demo_data.has_data(conn, load_catalog(conn), spec):
            click.echo("  demo data exists already")
            return
    report = demo_data.generate(engine, spec)
    click.echo(f"  demo data: {report.summary()}")
    for line in report.refused:
        click.echo(f"    refused: {line}", err=True)


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


@db.command("check")
@db_option
def db_check(db_url: str) -> None:
    """Compare the database with the installed metadata.

    Tables, columns, indexes, foreign keys, system tables and the pack and version records;
    prints "ok" and a summary, or one line per problem and exits 1."""
    from packwork.runtime import db_check as checking
    if not _echo_check(checking.check_url(db_url)):
        sys.exit(1)


def _echo_check(report) -> bool:
    if report.ok:
        click.echo("ok")
        click.echo(report.summary)
        return True
    for problem in report.problems:
        click.echo(problem.format())
    click.echo(f"{len(report.problems)} problem(s) found.", err=True)
    return False


@main.command("backup")
@db_option
@click.argument("out_file", type=click.Path(dir_okay=False))
def backup_command(db_url: str, out_file: str) -> None:
    """Back up the database to OUT_FILE; safe while the application runs.

    SQLite through its online backup API, PostgreSQL through pg_dump's custom format.
    OUT_FILE is replaced only once the new backup is whole."""
    from packwork.runtime import backup
    made = backup.backup(db_url, Path(out_file))
    click.echo(f"Backed up {backup.shown_url(db_url)} to {made.path} ({backup.KINDS[made.kind]}, "
               f"{made.size:,} bytes).")


@main.command("restore")
@db_option
@click.argument("in_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite a database that already holds data.")
def restore_command(db_url: str, in_file: str, force: bool) -> None:
    """Restore the database from the backup IN_FILE, then check it.

    One transaction: all of the backup or none of it. Refuses a database that holds data
    unless --force, and a backup of the other database kind."""
    from packwork.runtime import backup
    restored = backup.restore(db_url, Path(in_file), force=force)
    click.echo(f"Restored {restored.path} into {backup.shown_url(db_url)}. Checking it:")
    if not _echo_check(restored.check):
        sys.exit(1)


@main.group()
def user() -> None:
    """Manage platform users."""


@user.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="A role from the installed packs, or admin. Repeatable.")
@click.option("--name", "display_name", help="Display name (defaults to the user name).")
@click.option("--team", help="The team the user belongs to.")
@db_option
def user_create(username: str, roles: tuple[str, ...], display_name: str | None, team: str | None,
                db_url: str) -> None:
    """Create a user; sign-in needs a password (`packwork user password USERNAME`)."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        known = _installed_roles(conn)
        user_id = users.create_user(conn, username, roles, known, display_name, team)
    click.echo(f"Created user {username} (#{user_id}) with roles: {', '.join(sorted(roles)) or 'none'}"
               f"{f', in team {team}' if team else ''}.")


@user.command("password")
@click.argument("username")
@click.password_option(envvar="PACKWORK_PASSWORD", help="The new password (prompted if not given; or "
                       "$PACKWORK_PASSWORD).")
@db_option
def user_password(username: str, password: str, db_url: str) -> None:
    """Set USERNAME's password for signing in to the web UI."""
    from packwork.runtime import sessions
    with make_engine(db_url).begin() as conn:
        sessions.set_password(conn, users.find_user(conn, username), password)
    click.echo(f"Password set for {username}.")


@user.command("team")
@click.argument("username")
@click.argument("team", required=False)
@db_option
def user_team(username: str, team: str | None, db_url: str) -> None:
    """Move USERNAME to TEAM (no TEAM: out of any team)."""
    with make_engine(db_url).begin() as conn:
        users.join_team(conn, users.find_user(conn, username), team)
    click.echo(f"{username} is now in {f'team {team}' if team else 'no team'}.")


@user.command("transfer")
@click.argument("from_user")
@click.argument("to_user")
@click.option("--entity", "entities", multiple=True, help="Only these entities (default: all). Repeatable.")
@db_option
def user_transfer(from_user: str, to_user: str, entities: tuple[str, ...], db_url: str) -> None:
    """Give every record FROM_USER owns to TO_USER (when someone leaves), in one audited
    transaction."""
    from packwork.runtime import records
    from packwork.runtime.catalog import load_catalog
    from packwork.runtime.permissions import Actor
    with make_engine(db_url).begin() as conn:
        ctx = records.Context.start(conn, load_catalog(conn), Actor(None))
        moved = records.transfer_records(ctx, users.find_user(conn, from_user), users.find_user(conn, to_user),
                                         entities or None)
    total = sum(n for name, n in moved.items() if name != "_left")
    click.echo(f"Moved {total} record(s) from {from_user} to {to_user}"
               + "".join(f"\n  {name}: {n}" for name, n in moved.items() if name != "_left"))


@main.group()
def team() -> None:
    """Manage teams: a team's records include those of the teams below it."""


@team.command("create")
@click.argument("name")
@click.option("--parent", help="The team this one sits under.")
@click.option("--label", help="Display name (defaults to NAME).")
@db_option
def team_create(name: str, parent: str | None, label: str | None, db_url: str) -> None:
    """Create a team."""
    with make_engine(db_url).begin() as conn:
        team_id = users.create_team(conn, name, parent, label)
    click.echo(f"Created team {name} (#{team_id}){f' under {parent}' if parent else ''}.")


@main.group()
def perms() -> None:
    """Show what roles may do."""


@perms.command("show")
@click.argument("role")
@click.option("--pack", "paths", multiple=True, type=click.Path(file_okay=False),
              help="Read the role from these pack folders instead of the database. Repeatable.")
@db_option
def perms_show(role: str, paths: tuple[str, ...], db_url: str) -> None:
    """Print ROLE's effective matrix: a scope per entity and action, row rules, field security
    and restricted stage moves, after every pack's grants are combined."""
    if paths:
        metadata = load_packs(paths)
    else:
        with make_engine(db_url).connect() as conn:
            _installed_roles(conn)
            metadata = resolve_sources(packstore.installed_sources(conn))
    if role not in metadata.roles and role != ADMIN_ROLE:
        raise PackworkError(f"there is no role {role!r}; roles: {', '.join(sorted(metadata.roles))}")
    click.echo(render_matrix(role, role_matrix(metadata, role)))


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@db_option
def token_create(username: str, name: str, db_url: str) -> None:
    """Create an API token for USERNAME and print it (it is shown only once)."""
    with make_engine(db_url).begin() as conn:
        token_id, secret = tokens.create_token(conn, users.find_user(conn, username), name)
    click.echo(f"Token #{token_id} for {username}. Send it as `Authorization: Bearer <token>`; "
               "it is not shown again:", err=True)
    click.echo(secret)


@token.command("revoke")
@click.argument("token_id", type=int)
@db_option
def token_revoke(token_id: int, db_url: str) -> None:
    """Revoke a token by its number; requests using it are refused from now on."""
    with make_engine(db_url).begin() as conn:
        tokens.revoke_token(conn, token_id)
    click.echo(f"Token #{token_id} revoked.")


@token.command("list")
@db_option
def token_list(db_url: str) -> None:
    """List tokens (never their secrets)."""
    with make_engine(db_url).connect() as conn:
        for row in tokens.list_tokens(conn):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            click.echo(f"#{row.id}  {row.username}  {row.name}  created {row.created_at:%Y-%m-%d}  {state}")


@main.group()
def jobs() -> None:
    """Run scheduled rules."""


def redis_option(function):
    function = click.option("--queue", "queue_name", default="packwork", show_default=True,
                            help="RQ queue name; one per deployment (database).")(function)
    return click.option("--redis", "redis_url", default=lambda: os.environ.get("PACKWORK_REDIS_URL"),
                        show_default="$PACKWORK_REDIS_URL",
                        help="Redis URL: run scheduled rules through an RQ job queue.")(function)


def echo_report(report) -> None:
    state = f"failed: {report.error}" if report.error else "done"
    click.echo(f"{report.rule}: {state}; {report.visited} visited, {report.changed} changed, "
               f"{report.refused} refused")
    for message in report.messages:
        click.echo(f"  refused {message}")


def queue_or_none(redis_url: str | None, queue_name: str):
    """The RQ queue at `redis_url`, or None (and one line saying why) when Redis does not answer."""
    if not redis_url:
        return None
    from packwork.runtime import jobqueue
    try:
        return jobqueue.open_queue(redis_url, queue_name)
    except jobqueue.Unavailable as exc:
        click.echo(f"Redis at {_shown_url(redis_url)} does not answer ({exc}); "
                   "running scheduled rules in this process.", err=True)
        return None


def _shown_url(url: str) -> str:
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if parts.netloc else url


@jobs.command("run")
@db_option
@redis_option
@click.option("--once", is_flag=True, help="Run what is due now, then stop.")
@click.option("--sleep", "pause", default=60, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds between looks for due rules.")
def jobs_run(db_url: str, redis_url: str | None, queue_name: str, once: bool, pause: int) -> None:
    """The worker: run every scheduled rule that is due, again and again (or --once).

    With a Redis URL that answers, it enqueues the due rules and runs the queued jobs (its own
    and other hosts'); without one it runs the due rules itself."""
    import time
    from packwork.runtime import jobs as scheduled
    engine = make_engine(db_url)
    queue = queue_or_none(redis_url, queue_name)
    while True:
        if queue is None:
            for report in scheduled.run_due(engine):
                echo_report(report)
        elif not _queue_round(queue, engine, db_url) and once:
            sys.exit(1)
        if once:
            return
        time.sleep(pause)


def _queue_round(queue, engine, db_url: str) -> bool:
    """Enqueue what is due, then run what is queued; False (said in one line) if Redis failed."""
    import redis
    from packwork.runtime import jobqueue
    try:
        jobqueue.enqueue_due(queue, engine, db_url)
        if not jobqueue.work(queue, echo_report):
            sys.exit(0)  # stopped as asked, between two jobs
    except redis.RedisError as exc:
        click.echo(f"Redis failed: {exc}", err=True)
        return False
    return True


@jobs.command("enqueue")
@db_option
@redis_option
def jobs_enqueue(db_url: str, redis_url: str | None, queue_name: str) -> None:
    """Only schedule: put every due rule on the Redis queue for `jobs run` workers."""
    from packwork.runtime import jobqueue
    if not redis_url:
        raise click.UsageError("jobs enqueue needs --redis or $PACKWORK_REDIS_URL.")
    try:
        queue = jobqueue.open_queue(redis_url, queue_name)
    except jobqueue.Unavailable as exc:
        raise click.ClickException(f"Redis at {_shown_url(redis_url)} does not answer ({exc}).") from exc
    for rule, is_new in jobqueue.enqueue_due(queue, make_engine(db_url), db_url):
        click.echo(f"{rule}: {'queued' if is_new else 'already queued or running'}")


@main.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--as", "username", help="Import as this user, with their permissions (default: the platform).")
@click.option("--key", "keys", multiple=True, help="A field identifying existing records: a matching row "
              "updates it. Repeatable (all must match).")
@click.option("--map", "mappings", multiple=True, metavar="COLUMN=FIELD", help="Read COLUMN into FIELD. Repeatable.")
@click.option("--skip-bad", is_flag=True, help="Write the good rows and report the bad ones "
              "(default: all or nothing).")
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False), help="Write the per-row error "
              "report to this CSV file.")
@click.option("--time-zone", default="UTC", show_default=True, help="Zone of date-times given without an offset.")
def import_command(entity: str, file: str, db_url: str, username: str | None, keys: tuple[str, ...],
                   mappings: tuple[str, ...], skip_bad: bool, dry_run: bool, errors_path: str | None,
                   time_zone: str) -> None:
    """Import the rows of a CSV or XLSX FILE into ENTITY through the record service (checks,
    rules and audit as for any write). Exits 1 if rows failed and nothing was written."""
    from packwork.runtime import importer
    options = importer.ImportOptions(
        mode="skip_bad" if skip_bad else "all_or_nothing", keys=keys, mapping=_column_map(mappings),
        dry_run=dry_run, time_zone=time_zone,
        progress=lambda r: click.echo(f"  {r.rows:,} rows read: {r.created:,} created, {r.updated:,} updated, "
                                      f"{r.failed:,} failed", err=True))
    with make_engine(db_url).begin() as conn:
        report = importer.import_file(_import_context(conn, username), entity, Path(file).read_bytes(), file,
                                      options)
    _echo_import(report, errors_path)
    if report.errors and not report.written and not dry_run:
        sys.exit(1)


def _column_map(mappings: tuple[str, ...]) -> dict[str, str]:
    pairs = [m.partition("=") for m in mappings]
    bad = [m for m, (_, sep, field) in zip(mappings, pairs) if not sep or not field]
    if bad:
        raise click.UsageError(f"--map takes COLUMN=FIELD, not {bad[0]!r}")
    return {column.strip(): field.strip() for column, _, field in pairs}


def _import_context(conn, username: str | None):
    from packwork.runtime import records
    from packwork.runtime.catalog import load_catalog
    from packwork.runtime.importer import actor_for_user
    from packwork.runtime.permissions import Actor
    actor = Actor(None) if username is None else actor_for_user(conn, users.find_user(conn, username))
    return records.Context.start(conn, load_catalog(conn), actor)


def _echo_import(report, errors_path: str | None) -> None:
    for column, why in report.ignored.items():
        click.echo(f"  column {column!r} not imported: {why}", err=True)
    for error in report.errors[:20]:
        click.echo(f"  row {error.row}{f' {error.field}' if error.field else ''}: {error.message}", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... {len(report.errors) - 20} more (see --errors)", err=True)
    if errors_path:
        Path(errors_path).write_text(report.csv_text(), encoding="utf-8")
    state = "dry run, nothing written" if report.dry_run else "written" if report.written else \
        "nothing written (all or nothing: fix the rows or use --skip-bad)"
    click.echo(f"{report.rows:,} rows: {report.created:,} created, {report.updated:,} updated, "
               f"{report.failed:,} failed; {state}.")


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(db_url: str, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the app with gunicorn (a production WSGI server)."""
    from packwork.web.server import run_gunicorn
    run_gunicorn(db_url, host, port, workers, threads)


def render_matrix(role: str, matrix: dict) -> str:
    width = max([len(name) for name in matrix] + [6])
    lines = [f"Role {role}", ("entity".ljust(width) + "  " + "  ".join(f"{a:<8}" for a in ACTIONS)).rstrip()]
    for name, policy in matrix.items():
        lines.append((f"{name:<{width}}  " + "  ".join(f"{policy.reach(a).scope:<8}" for a in ACTIONS)).rstrip())
        rows = {rule for a in ACTIONS for rule in policy.reach(a).rows}
        notes = [f"rows also: {rule}" for rule in sorted(rows)]
        notes += [f"hidden: {', '.join(sorted(policy.hidden))}"] if policy.hidden else []
        notes += [f"read-only: {', '.join(sorted(policy.read_only))}"] if policy.read_only else []
        notes += [f"move to {stage}: {reach.scope}" + (" or rows" if reach.rows else "")
                  for stage, reach in policy.stages.items()]
        lines += [f"{'':<{width}}  {note}" for note in notes]
    return "\n".join(lines)


def _installed_roles(conn) -> list[str]:
    if packstore.current_version_id(conn) is None:
        raise PackworkError("no packs are installed; install one before creating users")
    return list(resolve_sources(packstore.installed_sources(conn)).roles)


from packwork.cli_pack import pack  # noqa: E402 - modules of their own; registered here, after `main`
from packwork.cli_layer import layer  # noqa: E402
from packwork.cli_settings import setting  # noqa: E402

main.add_command(pack)
main.add_command(layer)
main.add_command(setting)


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
