"""System tables: installed packs, metadata versions, users. Prefixed `pw_`, which packs may
not use, so they can never collide with a pack's entity."""

from __future__ import annotations

import sqlalchemy as sa

system_metadata = sa.MetaData()

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

pw_user = sa.Table(
    "pw_user", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("email", sa.String(254)),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("language", sa.String(8), nullable=False, default="en"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

pw_pack = sa.Table(
    "pw_pack", system_metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("depends", sa.JSON, nullable=False),
    sa.Column("files", sa.JSON, nullable=False),  # {relative path: text}: packs load from here
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

pw_meta_version = sa.Table(
    "pw_meta_version", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("packs", sa.JSON, nullable=False),  # {name: version}
    sa.Column("document", sa.JSON, nullable=False),  # canonical metadata
    sa.Column("schema", sa.JSON, nullable=False),  # physical schema as applied, orphans included
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

pw_user_role = sa.Table(
    "pw_user_role", system_metadata,
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(40), primary_key=True),
)

pw_team = sa.Table(
    "pw_team", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
    sa.Column("label", sa.String(200)),
    sa.Column("parent_id", ID, sa.ForeignKey("pw_team.id", ondelete="RESTRICT"), index=True),
)

# The team tree's closure: every (ancestor, descendant) pair, each team its own ancestor, so
# "members of my team and the teams below it" is a join, never a recursive walk per request.
pw_team_path = sa.Table(
    "pw_team_path", system_metadata,
    sa.Column("ancestor_id", ID, sa.ForeignKey("pw_team.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("descendant_id", ID, sa.ForeignKey("pw_team.id", ondelete="CASCADE"), primary_key=True),
    sa.Index("ix_pw_team_path_descendant", "descendant_id", "ancestor_id"),
)

# A user belongs to at most one team; a team's records include those of its sub-teams.
pw_team_member = sa.Table(
    "pw_team_member", system_metadata,
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("team_id", ID, sa.ForeignKey("pw_team.id", ondelete="CASCADE"), nullable=False, index=True),
)

# A record shared by its owner with a user or a team (and so its sub-teams), to read or edit.
pw_share = sa.Table(
    "pw_share", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("entity", sa.String(40), nullable=False),
    sa.Column("record_id", ID, nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE")),
    sa.Column("team_id", ID, sa.ForeignKey("pw_team.id", ondelete="CASCADE")),
    sa.Column("access", sa.String(8), nullable=False),  # read | edit
    sa.Column("created_by", ID),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="ck_pw_share_one_recipient"),
    sa.Index("ix_pw_share_user", "user_id", "entity", "record_id"),
    sa.Index("ix_pw_share_team", "team_id", "entity", "record_id"),
    sa.Index("ix_pw_share_record", "entity", "record_id"),
)

pw_token = sa.Table(
    "pw_token", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the secret
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# The last run of each scheduled rule (the jobs worker decides from it what is due).
pw_job_run = sa.Table(
    "pw_job_run", system_metadata,
    sa.Column("rule", sa.String(80), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("visited", sa.Integer, nullable=False, default=0),
    sa.Column("changed", sa.Integer, nullable=False, default=0),
    sa.Column("refused", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
)

pw_audit = sa.Table(
    "pw_audit", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("entity", sa.String(40), nullable=False),
    sa.Column("record_id", ID, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # create, update, delete, restore
    sa.Column("actor_id", ID),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changes", sa.JSON, nullable=False),  # {field: [old, new]}
    sa.Index("ix_pw_audit_record", "entity", "record_id", "id"),
)

# A browser's sign-in: the cookie holds a random secret of which only the SHA-256 is kept, as
# for API tokens; signing out deletes the row, so a copied cookie dies with it.
pw_session = sa.Table(
    "pw_session", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Failed sign-ins, counted per user name and per address to slow down password guessing.
pw_login_failure = sa.Table(
    "pw_login_failure", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_pw_login_failure_username", "username", "at"),
    sa.Index("ix_pw_login_failure_address", "address", "at"),
)

# Per-user settings the UI keeps: time zone (language lives on pw_user, which tokens read).
pw_user_setting = sa.Table(
    "pw_user_setting", system_metadata,
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False, default="UTC"),
)

# A list view a user saved: columns, filter (the shared filter language) and sort of an entity.
pw_saved_view = sa.Table(
    "pw_saved_view", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("pw_user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("entity", sa.String(40), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("filter", sa.Text),
    sa.Column("sort", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "entity", "name", name="uq_pw_saved_view_name"),
)

# The values an administrator gave pack settings (`packwork setting set`); a setting with no
# row here has its pack default. The value is JSON: decimals as text, so none is rounded.
pw_setting = sa.Table(
    "pw_setting", system_metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", ID),
)

# The data migrations packs shipped that have run (runtime.data_migrations), each once: an
# upgrade runs a migration only if it has no row here. Kept when the pack is uninstalled (its
# data is kept too), forgotten when the pack's data is purged with it.
pw_data_migration = sa.Table(
    "pw_data_migration", system_metadata,
    sa.Column("pack", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.String(40), nullable=False),  # the migration's version
    sa.Column("pack_version", sa.String(40), nullable=False),  # the version installed when it ran
    sa.Column("entity", sa.String(40), nullable=False),
    sa.Column("visited", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
)


# The admin layer's history (runtime/admin_layer.py): every layer text an administrator
# applied, oldest first. The layer in force is the pack `admin_layer` in pw_pack; a row here is
# never deleted or changed, and a revert is a new row naming the version it restores.
pw_layer_version = sa.Table(
    "pw_layer_version", system_metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),  # the layer file; empty: no layer
    sa.Column("meta_version_id", ID, nullable=False),  # the pw_meta_version it applied as
    sa.Column("restores", ID),  # the layer version a revert brought back (0: none), else NULL
)
