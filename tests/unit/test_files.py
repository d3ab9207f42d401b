"""Project file views stay inside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.errors import InvalidInput, NotFound
from app.workspace.files import list_files, read_text


def test_lists_files_without_noise(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("print(1)")
    (tmp_path / "README.md").write_text("hi")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("secret")
    assert list_files(tmp_path) == ["README.md", "src/a.py"]
    assert list_files(tmp_path, limit=1) == ["README.md"]


def test_reading_outside_the_project_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    for bad in ("../secret.txt", "/etc/passwd", "link.txt", "a/../../secret.txt", ""):
        with pytest.raises(InvalidInput):
            read_text(root, bad)
    with pytest.raises(NotFound):
        read_text(root, "missing.txt")


def test_reads_text_truncates_and_spots_binary(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 50)
    (tmp_path / "bin").write_bytes(b"\x00\x01\x02")
    assert read_text(tmp_path, "big.txt", limit=10) == "x" * 10 + "\n… (truncated)"
    assert read_text(tmp_path, "bin") == "(binary file)"
