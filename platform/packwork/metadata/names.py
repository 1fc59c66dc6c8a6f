"""Identifier rules. Every name a pack declares passes here before it can reach SQL."""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*\Z")
MAX_LENGTH = 40

# PostgreSQL's reserved key words plus the SQL standard's most common reserved words.
# SQLAlchemy would quote them, but a name that needs quoting is a trap for every report
# writer and integrator who types SQL by hand, so packs may not use them.
SQL_KEYWORDS = frozenset("""
all analyse analyze and any array as asc asymmetric authorization between binary both case
cast check collate collation column concurrently constraint create cross current_catalog
current_date current_role current_schema current_time current_timestamp current_user default
deferrable delete desc distinct do drop else end except exists false fetch for foreign freeze
from full grant group having ilike in initially inner insert intersect into is isnull join
lateral leading left like limit localtime localtimestamp merge natural not notnull null offset
on only or order outer overlaps placing primary references returning right select
session_user similar some symmetric system_user table tablesample then to trailing true union
unique update user using values variadic verbose when where window with
""".split())

# Columns every entity table has; a pack field may not take these names.
SYSTEM_COLUMNS = (
    "id", "created_at", "updated_at", "created_by", "owner_id", "version", "deleted_at",
    "record_type",
)
RESERVED_PREFIXES = ("pw_", "sqlite_", "pg_")
RESERVED_ENTITY_NAMES = frozenset({"meta", "transfers", "reports", "dashboards"})  # API paths beside /api/v1/<entity>


def identifier_problem(name: object) -> str | None:
    """Why `name` cannot be a pack identifier, or None if it can."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        return (f"{name!r} is not a valid name: use lowercase letters, digits and '_', "
                "starting with a letter")
    if len(name) > MAX_LENGTH:
        return f"{name!r} is longer than {MAX_LENGTH} characters"
    if name in SQL_KEYWORDS:
        return f"{name!r} is an SQL key word; choose another name (for example '{name}_name')"
    if name.startswith(RESERVED_PREFIXES):
        return f"{name!r} starts with a reserved prefix ({', '.join(RESERVED_PREFIXES)})"
    return None


def field_name_problem(name: object) -> str | None:
    problem = identifier_problem(name)
    if problem is None and name in SYSTEM_COLUMNS:
        return f"{name!r} is a system column every entity already has"
    return problem
