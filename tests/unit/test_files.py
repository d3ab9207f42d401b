"""Project file views stay inside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.errors import InvalidInput, NotFound
from app.workspace.files import read_text


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


def test_a_project_folder_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "key.txt").write_text("not yours")
    project = tmp_path / "project"
    project.symlink_to(secret)
    with pytest.raises(InvalidInput):
        read_text(project, "key.txt")


def test_overlong_paths_are_refused_clearly(tmp_path: Path) -> None:
    for path in ("a" * 5000, "d/" * 2100 + "f", "x" * 300):
        with pytest.raises(InvalidInput, match="at most"):
            read_text(tmp_path, path)
