"""Read-only views of a project folder, never reaching outside it."""

from __future__ import annotations

import os
from pathlib import Path

from app.errors import InvalidInput, NotFound

SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", ".claude"}
MAX_FILES = 1000
MAX_READ = 200_000


def list_files(root: Path, limit: int = MAX_FILES) -> list[str]:
    """Relative paths of the files under `root`, sorted, at most `limit`."""
    found: list[str] = []
    if not root.is_dir():
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        base = Path(folder).relative_to(root)
        for name in sorted(files):
            found.append(str(base / name) if str(base) != "." else name)
            if len(found) >= limit:
                return found
    return found


def safe_path(root: Path, relative: str) -> Path:
    """`relative` resolved inside `root`; InvalidInput for anything that escapes it."""
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise InvalidInput("Give a path inside the project.")
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidInput("That path is outside the project.")
    return resolved


def read_text(root: Path, relative: str, limit: int = MAX_READ) -> str:
    path = safe_path(root, relative)
    if not path.is_file():
        raise NotFound("No such file.")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if b"\x00" in data[:8192]:
        return "(binary file)"
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n… (truncated)" if len(data) > limit else "")
