"""The admin layer: what administrators customise on top of the packs, kept in the database.

The layer is an ordinary pack, `admin_layer`, installed like any other (a row of pw_pack): a
generated `pack.yaml` that depends on every other installed pack, and one file, `layer.yaml`,
holding what the administrator wrote (`extends:`, new `entities:`, `permissions:`...). So the
metadata every process serves is always the packs plus the layer, resolved by the same resolver
(the layer last, as it depends on all the others), every check and `file:line` problem applying
to `admin_layer/layer.yaml` too, and the catalogs of all processes pick a change up the way they
pick up a pack upgrade: by the new metadata version. Planning reuses `migrate.make_plan`, so a
hidden field keeps its column, a removed field is orphaned with its data, and a type change
that could lose data is refused.

Each applied layer text is also kept in pw_layer_version, never deleted: a revert applies an
earlier text again, as a new version. An empty layer text removes the layer pack, so the
metadata is the packs' alone again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from packwork.errors import NotFound, PackError, PackworkError
from packwork.metadata.layer_edits import LAYER, LAYER_FILE
from packwork.metadata.loader import MANIFEST, PackSource, SourceFile, manifest_depends, read_pack_folder
from packwork.metadata.resolver import resolve_sources
from packwork.runtime import packstore
from packwork.runtime.migrate import Plan, Progress, apply, make_plan
from packwork.runtime.system import pw_layer_version, pw_meta_version, pw_pack

LAYER_PACK_VERSION = "1.0.0"  # fixed: the same layer text always resolves to the same metadata


class LayerError(PackworkError):
    status = 409
    code = "LAYER-E409"


@dataclass(frozen=True, slots=True)
class LayerVersion:
    id: int
    created_at: datetime
    author: str
    text: str
    meta_version_id: int
    restores: int | None  # the layer version a revert brought back (0: no layer)


@dataclass(frozen=True, slots=True)
class Layer:
    """The layer in force: its text ("" when there is none) and the packs it was made on."""

    text: str
    depends: tuple[str, ...]
    files: dict[str, str]  # the installed pack's files, as `export` writes them

    @property
    def empty(self) -> bool:
        return not self.files


def manifest_text(depends: list[str]) -> str:
    listed = ", ".join(depends)
    return (f"name: {LAYER}\nversion: {LAYER_PACK_VERSION}\n"
            f"label: {{en: Admin layer, zh: 管理员定制}}\n"
            f"description: What administrators customised on top of the installed packs.\n"
            f"depends: [{listed}]\n")


def layer_source(text: str, depends: list[str]) -> PackSource:
    """The layer as a pack: the generated manifest and the administrator's file."""
    return PackSource(LAYER, (SourceFile(MANIFEST, manifest_text(depends)), SourceFile(LAYER_FILE, text)))


def relayered(sources: list[PackSource]) -> tuple[list[PackSource], PackSource | None]:
    """`sources` with an installed layer made to depend on every other pack again (an install
    adds a pack the layer must come after), and that new layer source; None if it is unchanged
    or there is no layer."""
    names = [manifest_depends(s)[0] for s in sources]
    if LAYER not in names:
        return sources, None
    layer = sources[names.index(LAYER)]
    depends = sorted(n for n in names if n != LAYER and n is not None)
    if manifest_depends(layer)[1] == depends:
        return sources, None
    files = tuple(SourceFile(MANIFEST, manifest_text(depends)) if f.path == MANIFEST else f for f in layer.files)
    new = PackSource(layer.display, files)
    return [s for s in sources if s is not layer] + [new], new


def is_blank(text: str) -> bool:
    """No layer at all: nothing but blank lines and comments."""
    return not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


# -- reading ----------------------------------------------------------------------------------

def current_layer(conn: sa.Connection) -> Layer:
    if not sa.inspect(conn).has_table(pw_pack.name):
        return Layer("", (), {})
    row = conn.execute(sa.select(pw_pack.c.depends, pw_pack.c.files).where(pw_pack.c.name == LAYER)).first()
    if row is None:
        return Layer("", (), {})
    return Layer(row.files.get(LAYER_FILE, ""), tuple(row.depends), dict(row.files))


def history(conn: sa.Connection) -> list[LayerVersion]:
    """Every layer version applied, oldest first."""
    if not sa.inspect(conn).has_table(pw_layer_version.name):
        return []
    rows = conn.execute(sa.select(pw_layer_version).order_by(pw_layer_version.c.id))
    return [_version(row) for row in rows]


def layer_version(conn: sa.Connection, version_id: int) -> LayerVersion:
    row = None
    if sa.inspect(conn).has_table(pw_layer_version.name):
        row = conn.execute(sa.select(pw_layer_version).where(pw_layer_version.c.id == version_id)).first()
    if row is None:
        known = ", ".join(str(v.id) for v in history(conn)) or "none yet"
        raise NotFound(f"there is no admin layer version {version_id} (versions: {known}; 0 means no layer)")
    return _version(row)


def _version(row) -> LayerVersion:
    return LayerVersion(row.id, row.created_at, row.author, row.text, row.meta_version_id, row.restores)


# -- planning and applying ----------------------------------------------------------------------

def plan_layer(engine: sa.Engine, text: str) -> Plan:
    """What making `text` the layer would change (metadata edits and DDL), without applying it.
    Raises PackError with the resolver's problems (in `admin_layer/layer.yaml`), or
    MigrationRefused for a type change that could lose data."""
    with engine.connect() as conn:
        sources = [s for s in packstore.installed_sources(conn) if s.display != LAYER]
        installed = current_layer(conn)
    if not sources:
        raise LayerError("no packs are installed in this database; install packs before customising them")
    if is_blank(text):
        metadata = resolve_sources(sources)
        return make_plan(engine, metadata, [], [] if installed.empty else [LAYER])
    source = layer_source(text, sorted(manifest_depends(s)[0] for s in sources))
    metadata = resolve_sources(sources + [source])
    unchanged = not installed.empty and installed.files == {f.path: f.text for f in source.files}
    return make_plan(engine, metadata, [] if unchanged else [source])


def apply_layer(engine: sa.Engine, text: str, author: str, *, plan: Plan | None = None,
                restores: int | None = None, progress: Progress | None = None) -> LayerVersion | None:
    """Make `text` the layer, in one transaction: the new metadata version (which every
    process's catalog picks up on its next request) and the layer's history row. Pass the
    `plan` shown to the person to apply exactly that (a stale one is refused). None if the
    plan changes nothing."""
    plan = plan or plan_layer(engine, text)
    if plan.empty:
        return None
    recorded: list[LayerVersion] = []

    def record_history(conn: sa.Connection) -> None:
        meta_version_id = conn.execute(sa.select(sa.func.max(pw_meta_version.c.id))).scalar()
        values = {"created_at": datetime.now(timezone.utc), "author": author, "text": text,
                  "meta_version_id": meta_version_id, "restores": restores}
        new_id = conn.execute(pw_layer_version.insert().values(values).returning(pw_layer_version.c.id)).scalar()
        recorded.append(LayerVersion(new_id, **values))

    what = f"revert admin layer to version {restores}" if restores is not None else "admin layer"
    apply(engine, plan, progress, f"{what} by {author}", also=record_history)
    return recorded[0]


def layer_text_at(engine: sa.Engine, version_id: int) -> str:
    """The layer text of an earlier version; version 0 is "no layer"."""
    if version_id == 0:
        return ""
    with engine.connect() as conn:
        return layer_version(conn, version_id).text


def revert_layer(engine: sa.Engine, to_version_id: int, author: str = "admin") -> LayerVersion | None:
    """Apply the layer of an earlier version again, as a new version (history is kept)."""
    text = layer_text_at(engine, to_version_id)
    return apply_layer(engine, text, author, restores=to_version_id)


# -- export and import -----------------------------------------------------------------------------

def export_layer(engine: sa.Engine, out_dir: str | Path) -> Path:
    """Write the layer in force as the pack folder OUT_DIR/admin_layer. Installing the packs it
    depends on and that folder into an empty database gives the same metadata version."""
    with engine.connect() as conn:
        layer = current_layer(conn)
    if layer.empty:
        raise LayerError("this database has no admin layer to export")
    folder = Path(out_dir) / LAYER
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise LayerError(f"{folder} exists already and is not an empty folder; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    for relative, text in sorted(layer.files.items()):
        (folder / relative).write_text(text, encoding="utf-8")
    return folder


def read_layer_folder(folder: str | Path) -> str:
    """The layer text of an exported layer folder. Its manifest must name the pack `admin_layer`;
    its `depends` is made again from the packs installed where it is imported."""
    source, problems = read_pack_folder(folder)
    if problems:
        raise PackError(problems)
    name, _ = manifest_depends(source)
    paths = sorted(f.path for f in source.files)
    if name != LAYER or paths != sorted([MANIFEST, LAYER_FILE]):
        raise LayerError(f"{folder} is not an exported admin layer: expected a pack named {LAYER!r} holding only "
                         f"{MANIFEST} and {LAYER_FILE} (found {name!r}: {', '.join(paths)})")
    return next(f.text for f in source.files if f.path == LAYER_FILE)
