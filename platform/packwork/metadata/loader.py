"""Reading pack files: the only file I/O in `metadata`.

A pack is a folder holding `pack.yaml` and any number of further `*.yaml` files. Each file is
parsed into plain data plus a table of line numbers per JSON path, so every later check can say
`file:line: path: message`. YAML is read defensively: anchors and aliases are refused (an alias
bomb of a few hundred bytes expands to millions of nodes), only plain scalar types are built,
duplicate keys are errors, and files, folders and sizes are capped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.events import AliasEvent

from packwork.metadata.problems import Problem, json_path

MANIFEST = "pack.yaml"
MAX_FILE_BYTES = 512 * 1024
MAX_PACK_BYTES = 8 * 1024 * 1024
MAX_FILES = 400
YAML_SUFFIXES = (".yaml", ".yml")
DATA_FOLDER = "demo"  # a pack's demo data set (runtime.demo_data reads it); never read as metadata


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # relative to the pack folder, '/'-separated
    text: str


@dataclass(frozen=True, slots=True)
class PackSource:
    """The raw text of one pack; `display` prefixes file names in problems."""

    display: str
    files: tuple[SourceFile, ...]

    def file_name(self, path: str) -> str:
        return f"{self.display}/{path}" if self.display else path


@dataclass(slots=True)
class Document:
    """One parsed YAML file: its data and the line of every JSON path in it."""

    file: str
    data: object
    lines: dict[tuple, int] = field(default_factory=dict)

    def line(self, path: tuple) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def problem(self, code: str, path: tuple, message: str) -> Problem:
        return Problem(code, self.file, self.line(path), json_path(path), message)


def read_pack_folder(folder: str | Path, display: str | None = None
                     ) -> tuple[PackSource | None, list[Problem]]:
    """Read every YAML file of a pack folder, refusing anything that leaves the folder."""
    root = Path(folder)
    shown = str(folder).rstrip("/") if display is None else display
    name = (lambda rel: f"{shown}/{rel}" if shown else rel)
    if not (root / MANIFEST).is_file():
        return None, [Problem("PACK-E001", name(MANIFEST), 1, "$",
                              f"no {MANIFEST} here: a pack is a folder with a {MANIFEST}")]
    real_root = root.resolve()
    files: list[SourceFile] = []
    problems: list[Problem] = []
    total = 0
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.relative_to(root).parts[0] == DATA_FOLDER:
            continue  # demo data (`packwork demo`), not metadata
        if path.suffix not in YAML_SUFFIXES:
            continue
        if not path.resolve().is_relative_to(real_root):
            problems.append(Problem("PACK-E002", name(rel), 1, "$",
                                    "links outside the pack folder; a pack may only read its own files"))
            continue
        if not path.is_file():
            continue
        size = path.stat().st_size
        total += size
        if size > MAX_FILE_BYTES:
            problems.append(Problem("PACK-E003", name(rel), 1, "$",
                                    f"file is {size} bytes; the limit is {MAX_FILE_BYTES}"))
            continue
        if len(files) >= MAX_FILES or total > MAX_PACK_BYTES:
            problems.append(Problem("PACK-E003", name(rel), 1, "$",
                                    f"pack exceeds {MAX_FILES} files or {MAX_PACK_BYTES} bytes"))
            break
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem("PACK-E004", name(rel), 1, "$", f"not UTF-8 text: {exc.reason}"))
            continue
        files.append(SourceFile(rel, text))
    return PackSource(shown, tuple(files)), problems


# libyaml parses a large pack several times faster than pure Python; PyYAML may lack it.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> yaml.Node | None:
    """The document's node tree, refusing anchors and aliases outright (read from the event
    stream first, as the C composer has no hook to refuse them while composing)."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "YAML anchors and aliases are not allowed in packs")
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class _Refused(Exception):
    def __init__(self, mark, message: str, path: tuple = ()):
        self.mark, self.message, self.path = mark, message, path


_PLAIN_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}


def parse_document(file: str, text: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML text into a Document, or explain why it cannot be."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        return None, [Problem("PACK-E003", file, 1, "$", f"file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        node = _compose(text)
        doc = Document(file, None)
        doc.data = _build(node, (), doc) if node is not None else {}
        return doc, []
    except _Refused as exc:
        return None, [Problem("PACK-E005", file, exc.mark.line + 1, json_path(exc.path), exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem("PACK-E006", file, line, "$", f"YAML syntax: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem("PACK-E006", file, 1, "$", f"YAML syntax: {exc}")]
    except RecursionError:
        return None, [Problem("PACK-E006", file, 1, "$", "YAML nested too deeply")]


_SCALARS = yaml.SafeLoader("")  # plain scalars are built from the node alone, with no state
_COLLECTION_TAGS = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}


def _build(node: yaml.Node, path: tuple, doc: Document) -> object:
    if type(node) in _COLLECTION_TAGS and node.tag != _COLLECTION_TAGS[type(node)]:
        raise _Refused(node.start_mark, f"YAML tag {node.tag!r} is not allowed in packs", path)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            # Keys are names, so `on:` or `1:` mean the text YAML 1.1 would read as a bool or a number.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                raise _Refused(key_node.start_mark, "mapping keys must be plain text", path)
            key = key_node.value
            if key in out:
                raise _Refused(key_node.start_mark, f"{key!r} is given twice in the same mapping",
                               path + (key,))
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_build(item, path + (index,), doc))
        return items
    if node.tag == "tag:yaml.org,2002:timestamp":
        return node.value  # dates stay text; the field type parses them
    if node.tag not in _PLAIN_TAGS:
        raise _Refused(node.start_mark, f"YAML tag {node.tag!r} is not allowed in packs", path)
    return _Loader.yaml_constructors[node.tag](_SCALARS, node)


def manifest_depends(source: PackSource) -> tuple[str | None, list[str]]:
    """The pack's name and depends, read leniently (full checks happen in the resolver)."""
    manifest = next((f for f in source.files if f.path == MANIFEST), None)
    doc, _ = parse_document(MANIFEST, manifest.text) if manifest else (None, [])
    data = doc.data if doc is not None and isinstance(doc.data, dict) else {}
    depends = data.get("depends") if isinstance(data.get("depends"), list) else []
    name = data.get("name") if isinstance(data.get("name"), str) else None
    return name, [d for d in depends if isinstance(d, str)]


def read_pack_folders(folders: list[str | Path], search: bool = True, known: frozenset[str] = frozenset()
                      ) -> tuple[list[PackSource], list[Problem]]:
    """Read the given pack folders and, if `search`, the folders of dependencies they name but
    do not include (and are not `known`, e.g. installed), found by name beside each pack or in
    its parent folders (so `packs/industry/education` finds `packs/standard_crm`)."""
    sources: list[PackSource] = []
    problems: list[Problem] = []
    names: set[str] = set(known)
    queue = [(Path(f), None) for f in folders]
    while queue:
        folder, display = queue.pop(0)
        source, found = read_pack_folder(folder, display)
        problems += found
        if source is None:
            continue
        sources.append(source)
        name, depends = manifest_depends(source)
        names.add(name or str(folder))
        if not search:
            continue
        for dep in depends:
            if dep in names or any(manifest_depends(s)[0] == dep for s in sources):
                continue
            found_folder = _find_sibling_pack(folder, dep)
            if found_folder is not None and all(found_folder != q[0] for q in queue):
                queue.append((found_folder, None))
    return sources, problems


def _find_sibling_pack(folder: Path, name: str) -> Path | None:
    for parent in list(folder.resolve().parents)[:3]:
        candidate = parent / name
        if (candidate / MANIFEST).is_file():
            return candidate
    return None
