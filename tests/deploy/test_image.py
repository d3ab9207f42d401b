"""The images: the container command in one place, content tags, and the build commands."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploy import image
from tests.deploy.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]


def _instructions(dockerfile: Path, keyword: str) -> list[str]:
    lines = dockerfile.read_text().replace("\\\n", " ").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.startswith(keyword + " ")]


def test_dockerfile_cmd_is_the_container_command() -> None:
    """The local AgentCore emulator runs CONTAINER_COMMAND; the image must run the same."""
    (cmd,) = _instructions(ROOT / "Dockerfile", "CMD")
    assert json.loads(cmd) == image.CONTAINER_COMMAND


def test_content_tag_covers_everything_the_dockerfiles_copy() -> None:
    for spec in (image.APP_IMAGE, image.PROBE_IMAGE):
        dockerfile = ROOT / spec.dockerfile
        copied = {
            (Path(spec.context) / source).as_posix().removeprefix("./")
            for line in _instructions(dockerfile, "COPY")
            for source in line.split()[:-1]
        }
        assert copied <= set(spec.sources), copied - set(spec.sources)
        assert spec.dockerfile in spec.sources


def test_dockerfile_builds_for_agentcore() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert "ARG BASE=python:3.11-slim-bookworm" in text
    assert "uv sync --frozen --no-dev" in text
    assert "pip install uv==0.13.9" in text
    assert re.search(r"apt-get install .*bubblewrap socat git", text)
    assert re.search(r"^USER app$", text, re.M)
    assert re.search(r"^EXPOSE 8080$", text, re.M)


def test_content_tag_follows_the_files_only(tmp_path: Path) -> None:
    spec = image.ImageSpec("app", "Dockerfile", ".", ("Dockerfile", "app"))
    (tmp_path / "app").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app" / "main.py").write_text("print(1)\n")
    tag = image.content_tag(spec, tmp_path)
    assert re.fullmatch(r"app-[0-9a-f]{16}", tag)

    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "main.pyc").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("not in the image")
    assert image.content_tag(spec, tmp_path) == tag

    (tmp_path / "app" / "main.py").write_text("print(2)\n")
    assert image.content_tag(spec, tmp_path) != tag


@pytest.mark.parametrize("builder", ["docker", "podman"])
def test_build_and_push_commands(
    stack: Stack, builder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(image, "_answers", lambda argv: True)
    ran: list[tuple[list[str], str | None]] = []

    def run(argv: Sequence[str], cwd: Path, stdin: str | None) -> None:
        ran.append((list(argv), stdin))

    ctx = stack.context(DEPLOY_BUILDER=builder)
    uri = image.ensure(ctx, image.PROBE_IMAGE, None, run=run)

    assert re.fullmatch(rf".*/{stack.prefix}:probe-[0-9a-f]{{16}}", uri)
    login, *rest = ran
    assert login[0][:2] == [builder, "login"] and login[1]  # the password goes on stdin
    assert login[1] not in " ".join(login[0])
    commands = [argv for argv, _ in rest]
    for argv in commands[:1]:
        assert argv[argv.index("--platform") + 1] == "linux/arm64"
        assert argv[-3:] == ["-f", "deploy/Dockerfile.probe", "deploy"]
    if builder == "docker":
        assert commands[0][:3] == ["docker", "buildx", "build"] and "--push" in commands[0]
    else:
        assert commands == [commands[0], ["podman", "push", uri]]
