"""The cost of row scopes: the same list page for an `all`-, a `team`- and an `own`-scoped user.

Seeds N accounts (default 1,000,000) of packs/standard_crm owned by 100 account managers in 10
teams of 10 (so an own-scoped user reaches 1% of the rows and a team-scoped one 10%), serves
the database with `packwork serve`, and has wrk fetch the default list page (50 accounts,
newest first) as an executive (read: all), a sales manager (read: team) and an account manager
(read: own). Target: own and team within 1.3x of all, i.e. requests/s ratio >= 0.77. It also
prints the query plan of each user's list query, captured from the record service itself.

    apt-get install -y wrk
    python bench/permissions.py [--rows N] [--db postgresql|sqlite] [--workers 2] [--seconds 10]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from packwork.runtime import records
from packwork.runtime.catalog import load_catalog
from packwork.runtime.db import make_engine
from packwork.runtime.installer import plan_packs
from packwork.runtime.listing import ListQuery
from packwork.runtime.migrate import apply
from packwork.runtime.tokens import authenticate, create_token
from packwork.runtime.users import create_team, create_user

from api import ROOT, arguments, database, server, wrk

OWNERS, TEAMS = 100, 10
PAGE = "/api/v1/account?limit=50"


def seed(url: str, rows: int) -> dict[str, str]:
    """Install standard_crm, the users and `rows` accounts; return {scope: API token}."""
    engine = make_engine(url)
    apply(engine, plan_packs(engine, [ROOT / "packs" / "standard_crm"], "install"))
    roles = ["account_manager", "sales_manager", "executive"]
    with engine.begin() as conn:
        owners = []
        for team in range(TEAMS):
            create_team(conn, f"team_{team}")
            owners += [create_user(conn, f"rep_{team}_{n}", ["account_manager"], roles, team=f"team_{team}")
                       for n in range(OWNERS // TEAMS)]
        assert owners == list(range(owners[0], owners[0] + OWNERS)), "owner ids must be consecutive"
        manager = create_user(conn, "manager", ["sales_manager"], roles, team="team_3")
        executive = create_user(conn, "executive", ["executive"], roles)
        # owners are assigned round-robin, so every team's rows are spread over the whole id range
        modulo = "mod(x, {})" if engine.dialect.name == "postgresql" else "x % {}"
        source = f"generate_series(1, {rows}) AS x" if engine.dialect.name == "postgresql" else "n"
        prefix = "" if engine.dialect.name == "postgresql" else \
            f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {rows}) "
        conn.exec_driver_sql(
            f"INSERT INTO account (name, code, level, employees, created_at, updated_at, version, owner_id) "
            f"{prefix}SELECT 'Account ' || x, 'A' || x, 'potential', x, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, "
            f"{owners[0]} + {modulo.format(OWNERS)} FROM {source}")
        tokens = {scope: create_token(conn, user_id, "bench")[1]
                  for scope, user_id in (("all", executive), ("team", manager), ("own", owners[37]))}
    with engine.begin() as conn:  # statistics are transactional: commit them
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return tokens


def query_plans(url: str, tokens: dict[str, str]) -> dict[str, str]:
    """Each user's list statement as the record service builds it, and the database's plan."""
    engine = make_engine(url)
    seen: list[tuple[str, object]] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, params, context, many: seen.append((statement, params)))
    plans = {}
    for scope, secret in tokens.items():
        with engine.connect() as conn, conn.begin():
            actor = authenticate(conn, secret).actor
            ctx = records.Context.start(conn, load_catalog(conn), actor)
            seen.clear()
            records.list_records(ctx, "account", ListQuery(limit=50))
            statement, params = next((s, p) for s, p in seen if "FROM account" in s and "LIMIT" in s)
            explain = "EXPLAIN ANALYZE " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            plan = conn.exec_driver_sql(explain + statement, params).all()
            text = "\n".join(str(row[0] if engine.dialect.name == "postgresql" else row[-1]) for row in plan)
            plans[scope] = f"{_one_line(statement, params)}\n{text}"
    engine.dispose()
    return plans


def _one_line(statement: str, params: object) -> str:
    return " ".join(statement.split()) + f"  -- {params}"


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="alternating wrk runs per user; the median counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(args.db, Path(folder)) as url:
        started = time.perf_counter()
        tokens = seed(url, args.rows)
        print(f"{args.db}: seeded {args.rows:,} accounts ({OWNERS} owners in {TEAMS} teams) in "
              f"{time.perf_counter() - started:.0f} s; gunicorn workers={args.workers}; "
              f"wrk -t2 -c8 -d{args.seconds}s x {args.rounds} rounds; GET {PAGE}")
        for scope, plan in query_plans(url, tokens).items():
            print(f"\n--- {scope}-scoped list query and plan ---\n{plan}")
        command = [sys.executable, "-m", "packwork", "serve", "--db", url, "--port", "8873",
                   "--workers", str(args.workers)]
        runs: dict[str, list[float]] = {scope: [] for scope in tokens}
        with server(command, 8873) as base:
            for scope, secret in tokens.items():
                wrk(base + PAGE, 2, {"Authorization": f"Bearer {secret}"})  # warm up
            scopes = list(tokens)
            for round_ in range(args.rounds):  # rotate the order, so drift in the machine hits every user alike
                for scope in scopes[round_ % 3:] + scopes[:round_ % 3]:
                    runs[scope].append(wrk(base + PAGE, args.seconds, {"Authorization": f"Bearer {tokens[scope]}"}))
    median = {scope: sorted(values)[len(values) // 2] for scope, values in runs.items()}
    print("\nruns (req/s): " + "; ".join(f"{s}: {', '.join(f'{v:.0f}' for v in values)}" for s, values in runs.items()))
    print(f"\n{'scope':8}{'req/s (median)':>16}{'vs all':>8}{'time vs all':>13}{'target':>9}")
    for scope, rate in median.items():
        ratio = rate / median["all"]
        print(f"{scope:8}{rate:16.0f}{ratio:8.2f}{1 / ratio:12.2f}x{'<= 1.3x':>9}")


if __name__ == "__main__":
    main()
