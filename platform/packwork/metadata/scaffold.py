"""A new pack to start from (`packwork pack new`): the text of its files, nothing written here.

The scaffold is a working pack, not a template with holes: it validates, its rule tests pass and
it installs (on top of the pack it extends), so a consultant changes something that works.
Every name in it derives from the pack's name, so two scaffolds never clash when installed
together.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from packwork.metadata.loader import MANIFEST
from packwork.metadata.names import MAX_LENGTH, RESERVED_ENTITY_NAMES, identifier_problem
from packwork.metadata.schema import SCHEMA_FILE

SCHEMA = Path(os.path.abspath(__file__)).parent / "schemas" / SCHEMA_FILE
VERSION = "0.1.0"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a pack, or None. The same rules as for every name in a pack."""
    return identifier_problem(name)


def entity_name(pack: str) -> str:
    """The example entity's name: `<pack>_item`, or the pack's own name if that would be too long."""
    name = f"{pack}_item"
    return name if len(name) <= MAX_LENGTH and name not in RESERVED_ENTITY_NAMES else pack


def schema_reference(folder: str | PurePath, schema: str | PurePath = SCHEMA) -> str:
    """The modeline's `$schema=` for files in `folder` (an absolute path): relative, as the
    packs in this repository have it, so it works wherever the checkout is; the schema's own
    location when no relative path exists (another drive on Windows)."""
    try:
        return Path(os.path.relpath(schema, folder)).as_posix()
    except ValueError:
        return Path(schema).as_uri()


def _title(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def scaffold_files(name: str, extends: str | None, schema_ref: str) -> dict[str, str]:
    """Path (relative to the new pack folder) -> text, for a pack called `name`."""
    entity = entity_name(name)
    return {MANIFEST: _manifest(name, extends, schema_ref), f"{entity}.yaml": _entity_file(entity, schema_ref)}


def _modeline(schema_ref: str) -> str:
    return f"# yaml-language-server: $schema={schema_ref}\n"


def _manifest(name: str, extends: str | None, schema_ref: str) -> str:
    title = _title(name)
    text = _modeline(schema_ref) + f"""\
# The pack's manifest (docs/packs.md explains every key). Check the pack with
# `packwork pack validate FOLDER`, run its rule tests with `packwork pack test FOLDER`, and
# install it with `packwork pack install FOLDER --db URL`.
name: {name}
version: {VERSION}
label: {{en: {title}, zh: {title}}}
description: What this pack adds.
"""
    if extends is None:
        return text
    return text + f"""\
depends: [{extends}]
# To extend an entity of {extends} (docs/packs.md, "Extending another pack"), in any file of
# this pack:
# extends:
#   ENTITY_OF_{extends.upper()}:
#     add_fields:
#       {name}_note: {{type: text, label: {{en: Note, zh: 备注}}}}
"""


def _entity_file(entity: str, schema_ref: str) -> str:
    title = _title(entity)
    return _modeline(schema_ref) + f"""\
# An example entity with one validation rule and the rule's tests: rename it or replace it.
# Labels take {{en: ..., zh: ...}}; give the Chinese text where it is still English.
entities:
  {entity}:
    label: {{en: {title}, zh: {title}}}
    plural: {{en: {title}s, zh: {title}}}
    title_field: name
    search_fields: [name]
    fields:
      name: {{type: text, label: {{en: Name, zh: 名称}}, required: true, max_length: 200}}
      quantity: {{type: integer, label: {{en: Quantity, zh: 数量}}}}
      due_on: {{type: date, label: {{en: Due on, zh: 截止日期}}}}
    layouts:
      default: {{sections: {{main: {{fields: [name, quantity, due_on]}}}}}}
    list_views:
      all: {{label: {{en: All, zh: 全部}}, columns: [name, quantity, due_on], sort: [-created_at]}}

rules:
  quantity_not_negative:
    entity: {entity}
    kind: validation
    code: |
      if record.quantity is not None and record.quantity < 0:
          error('quantity', 'must not be negative')
    tests:
      - label: a negative quantity is refused
        record: {{quantity: -1}}
        errors: {{quantity: [must not be negative]}}
      - label: zero is accepted
        record: {{quantity: 0}}
"""
