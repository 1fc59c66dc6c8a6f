"""A problem found in a pack: where (file, line, JSON path) and what (code, message, hint)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    file: str
    line: int
    path: str
    message: str

    def format(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message} [{self.code}]"


def json_path(parts: tuple) -> str:
    """`("entities", "widget", "fields", 0)` -> `$.entities.widget.fields[0]`."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
