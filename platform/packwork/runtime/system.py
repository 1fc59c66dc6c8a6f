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
