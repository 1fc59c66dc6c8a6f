"""The studio's edits of the admin layer: one structured change (a new entity, a field, a
layout, a grant, a rule...) merged into the layer's YAML text. Pure: text in, text out.

Where a change goes depends on who owns what it changes. An entity the layer declares is edited
in place (`entities: NAME:`); a pack's entity is changed through `extends: NAME:` (`add_fields`,
`change_fields`, `hide_fields`, `add_stages`, and layouts or views replaced by name), so
the pack's own files stay as they are. Each edit returns the JSON path it wrote, in the
resolver's notation (`$.entities.project.fields.budget`): the studio matches the resolver's
problems against it to show each message next to the input it is about.

The text is written again from data, so comments an administrator typed into the raw layer
text do not survive a structured edit (the raw editor keeps them)."""

from __future__ import annotations

from typing import Any

import yaml

LAYER = "admin_layer"  # the pack the layer is installed as (runtime.admin_layer)
LAYER_FILE = "layer.yaml"  # its one file, the text these edits change


class _LayerDumper(yaml.SafeDumper):
    """Multi-line text (rule code, filters) as literal blocks, readable in the raw editor."""


def _text_scalar(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LayerDumper.add_representer(str, _text_scalar)


class DraftError(ValueError):
    """An edit that cannot be made at all (before the resolver sees it): where and why."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def _path(*parts: str) -> str:
    return "$." + ".".join(parts)


def _pruned(value: Any) -> Any:
    """`value` without the empty mappings and lists edits leave behind (a section's empty
    `fields` list stays: a new section starts empty)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], None) or (k == "fields" and v == [])}
    return value


class LayerDraft:
    """The layer text as data, changed by one edit after another, then written out again."""

    def __init__(self, text: str = ""):
        data = yaml.safe_load(text) if text.strip() else None
        if data is not None and not isinstance(data, dict):
            raise DraftError("$", "the layer text must be a mapping of sections (entities:, extends:, ...)")
        self.data: dict = data or {}

    def text(self) -> str:
        data = _pruned(self.data)
        if not data:
            return ""
        return yaml.dump(data, Dumper=_LayerDumper, sort_keys=False, allow_unicode=True, width=100)

    def _mapping(self, *keys: str) -> dict:
        node = self.data
        for key in keys:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise DraftError(_path(*keys), "is not a mapping in the layer text; correct it in the raw editor")
        return node

    # -- entities --------------------------------------------------------------------------------

    def owns(self, entity: str) -> bool:
        return entity in (self.data.get("entities") or {})

    def add_entity(self, name: str, spec: dict) -> str:
        entities = self._mapping("entities")
        if name in entities:
            raise DraftError(_path("entities", name), f"entity {name!r} is already declared in the admin layer")
        entities[name] = spec
        return _path("entities", name)

    def entity_spec(self, entity: str) -> tuple[dict, str]:
        """Where changes to `entity` itself go: its own declaration, or its extension."""
        if self.owns(entity):
            return self._mapping("entities", entity), _path("entities", entity)
        return self._mapping("extends", entity), _path("extends", entity)

    def set_entity(self, entity: str, changes: dict) -> str:
        """Set (or, for None, drop) entity keys: label, plural, icon, title_field, hidden..."""
        spec, path = self.entity_spec(entity)
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        return path

    # -- fields ----------------------------------------------------------------------------------

    def _added_fields(self, entity: str) -> tuple[dict, str]:
        if self.owns(entity):
            return self._mapping("entities", entity, "fields"), _path("entities", entity, "fields")
        return self._mapping("extends", entity, "add_fields"), _path("extends", entity, "add_fields")

    def added_field(self, entity: str, name: str) -> bool:
        """Whether the layer declares the field (so it may change it freely or remove it)."""
        return name in self._added_fields(entity)[0]

    def add_field(self, entity: str, name: str, spec: dict) -> str:
        fields, path = self._added_fields(entity)
        if name in fields:
            raise DraftError(f"{path}.{name}", f"field {name!r} already exists in {entity!r}")
        fields[name] = spec
        return f"{path}.{name}"

    def set_field(self, entity: str, name: str, spec: dict) -> str:
        """Replace the whole spec of a field the layer added."""
        fields, path = self._added_fields(entity)
        if name not in fields:
            raise DraftError(f"{path}.{name}", f"{name!r} comes from a pack: change it, don't replace it")
        fields[name] = spec
        return f"{path}.{name}"

    def change_field(self, entity: str, name: str, changes: dict) -> str:
        """Set (or, for None, drop) keys of a field: its own spec if the layer added it, else
        the pack field's `change_fields` entry."""
        if self.added_field(entity, name):
            spec, path = self._added_fields(entity)
            target, path = spec[name], f"{path}.{name}"
        else:
            target, path = self._mapping("extends", entity, "change_fields", name), \
                _path("extends", entity, "change_fields", name)
        for key, value in changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        return path

    def hides(self, entity: str, name: str) -> bool:
        """Whether the layer itself hides the field (else it is hidden, if at all, by a pack)."""
        if self.added_field(entity, name):
            return bool(self._added_fields(entity)[0][name].get("hidden"))
        extension = (self.data.get("extends") or {}).get(entity) or {}
        changed = (extension.get("change_fields") or {}).get(name) or {}
        return name in (extension.get("hide_fields") or []) or changed.get("hidden") is True

    def hide_field(self, entity: str, name: str, hidden: bool, hidden_by_packs: bool = False) -> str:
        """Hide or show a field; its column and data stay either way."""
        if self.added_field(entity, name):
            return self.change_field(entity, name, {"hidden": True if hidden else None})
        extension = self._mapping("extends", entity)
        listed = extension.setdefault("hide_fields", [])
        if hidden and name not in listed:
            listed.append(name)
        elif not hidden and name in listed:
            listed.remove(name)
        change = self.data.get("extends", {}).get(entity, {}).get("change_fields", {}).get(name)
        if change is not None:
            change.pop("hidden", None)
        if not hidden and hidden_by_packs:
            self.change_field(entity, name, {"hidden": False})
        return _path("extends", entity, "hide_fields")

    def remove_field(self, entity: str, name: str) -> str:
        """Remove a field the layer added: its column becomes an orphan, its data kept."""
        fields, path = self._added_fields(entity)
        if name not in fields:
            raise DraftError(f"{path}.{name}", f"{name!r} comes from a pack: it can be hidden, not removed")
        del fields[name]
        self._forget_in_views(entity, name)
        return f"{path}.{name}"

    def _forget_in_views(self, entity: str, name: str) -> None:
        """Take a removed field off the layer's layouts, list views and boards of `entity`."""
        spec = (self.data.get(self._spec_keys(entity)[0]) or {}).get(entity) or {}
        for layout in (spec.get("layouts") or {}).values():
            for tab in (layout.get("tabs") or {"": layout}).values():
                for section in (tab.get("sections") or {}).values():
                    if name in (section.get("fields") or []):
                        section["fields"].remove(name)
        for view in (spec.get("list_views") or {}).values():
            if name in (view.get("columns") or []):
                view["columns"].remove(name)
        for board in (spec.get("kanbans") or {}).values():
            if name in (board.get("card_fields") or []):
                board["card_fields"].remove(name)

    # -- layouts, views, stages --------------------------------------------------------------------

    def set_view(self, entity: str, kind: str, name: str, spec: dict | None) -> str:
        """Replace (or drop, for None) the layout, list view or kanban `name` of `entity`."""
        if kind not in ("layouts", "list_views", "kanbans"):
            raise ValueError(kind)
        views = self._mapping(*self._spec_keys(entity), kind)
        if spec is None:
            views.pop(name, None)
        else:
            views[name] = spec
        return _path(*self._spec_keys(entity), kind, name)

    def _spec_keys(self, entity: str) -> tuple[str, str]:
        return ("entities", entity) if self.owns(entity) else ("extends", entity)

    def set_pipeline(self, entity: str, pipeline: dict) -> str:
        """The whole pipeline of an entity the layer declares."""
        if not self.owns(entity):
            raise DraftError(_path("extends", entity), "a pack's pipeline takes new stages, not a new pipeline")
        self._mapping("entities", entity)["pipeline"] = pipeline
        return _path("entities", entity, "pipeline")

    def add_stage(self, entity: str, name: str, spec: dict) -> str:
        stages = self._mapping("extends", entity, "add_stages")
        if name in stages:
            raise DraftError(_path("extends", entity, "add_stages", name), f"stage {name!r} is already added")
        stages[name] = spec
        return _path("extends", entity, "add_stages", name)

    def change_stage(self, entity: str, name: str, changes: dict) -> str:
        """Relabel a pack's stage, or give it another probability or required fields."""
        stage = self._mapping("extends", entity, "change_stages", name)
        stage.update(changes)
        return _path("extends", entity, "change_stages", name)

    # -- access, rules, dictionaries -----------------------------------------------------------------

    def set_grant(self, role: str, entity: str, grant: dict) -> str:
        """The layer's grant of `entity` to `role` (empty: none). It adds to what packs grant."""
        grants = self._mapping("permissions", role)
        if grant:
            grants[entity] = grant
        else:
            grants.pop(entity, None)
        return _path("permissions", role, entity)

    def layer_grant(self, role: str, entity: str) -> dict:
        return dict((self.data.get("permissions") or {}).get(role, {}).get(entity) or {})

    def set_named(self, kind: str, name: str, spec: dict | None) -> str:
        """A rule, dictionary or role the layer declares, replaced (or dropped, for None)."""
        if kind not in ("rules", "dictionaries", "roles"):
            raise ValueError(kind)
        items = self._mapping(kind)
        if spec is None:
            items.pop(name, None)
        else:
            items[name] = spec
        return _path(kind, name)

    def add_options(self, dictionary: str, options: list[dict]) -> str:
        """More options for a pack's dictionary (the layer's own are replaced with set_named)."""
        added = self._mapping("extend_dictionaries", dictionary).setdefault("add_options", [])
        added.extend(options)
        return _path("extend_dictionaries", dictionary, "add_options")

    def added_options(self, dictionary: str) -> list[dict]:
        return list(((self.data.get("extend_dictionaries") or {}).get(dictionary) or {}).get("add_options") or [])

    def named(self, kind: str) -> dict:
        return dict(self.data.get(kind) or {})
