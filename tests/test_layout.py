"""Guards on the repository's shape."""

import platform
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_stdlib_platform_not_shadowed():
    assert not (ROOT / "platform" / "__init__.py").exists(), "platform/ is a source root"
    assert hasattr(platform, "python_implementation")


def _standard_entity_names() -> set[str]:
    names = set()
    for path in (ROOT / "packs" / "standard_crm").rglob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names |= set(data.get("entities", {}))
        names |= set(data.get("relations", {}))
    return names


def _vendored_files() -> set[Path]:
    """Third-party files copied unchanged, as listed (with their sha256) in the README beside them."""
    files = set()
    for readme in (ROOT / "platform").rglob("README.md"):
        names = re.findall(r"^[0-9a-f]{64}  (\S+)$", readme.read_text(encoding="utf-8"), re.MULTILINE)
        files |= {readme.parent / name for name in names}
    return files


def test_platform_names_no_pack_entity():
    """The engine serves any pack; no standard_crm entity may be named in platform/ (outside
    vendored third-party files)."""
    names = _standard_entity_names()
    assert {"account", "contact", "opportunity", "lead"} <= names
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b", re.IGNORECASE)
    offenders = []
    vendored = _vendored_files()
    assert len(vendored) >= 2 and all(path.is_file() for path in vendored)
    for path in (ROOT / "platform").rglob("*"):
        if path in vendored:
            continue
        if path.is_file() and path.suffix in (".py", ".html", ".json", ".js", ".css", ".txt"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
