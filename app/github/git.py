"""Network git operations, run by the app (never in the agent's sandbox) with the user's token
handed to that one git process through its environment, so it is never in an argument list,
in `.git/config`, in a log line or anywhere the agent can read.

git runs with no system or global configuration, hooks off, and only the transports the
configured GitHub uses; what it prints as progress ("Receiving objects:  45% (9/20)") is
turned into a fraction for the page's bar.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import AppError, InvalidInput

_PROGRESS = re.compile(
    r"^(?P<phase>[A-Za-z ]+):\s+(?P<percent>\d+)% \((?P<done>\d+)/(?P<total>\d+)\)"
)
# Where each of git's phases sits in the whole clone: receiving is most of its time.
_WEIGHTS = {
    "Enumerating objects": (0.0, 0.01),
    "Counting objects": (0.01, 0.02),
    "Compressing objects": (0.03, 0.02),
    "Receiving objects": (0.05, 0.85),
    "Resolving deltas": (0.9, 0.1),
}
_BRANCH = re.compile(r"^(?!/|.*(?:\.\.|//|@\{|\.lock$|/$|\.$))[A-Za-z0-9._/-]{1,200}$")


@dataclass(frozen=True)
class Progress:
    phase: str  # git's own words: "Receiving objects", "Resolving deltas", ...
    fraction: float  # of the whole clone, 0..1
    detail: str  # "9/20"


class GitFailed(AppError):
    status = 502
    code = "git_failed"


def valid_branch(name: str) -> str:
    if not _BRANCH.match(name):
        raise InvalidInput(f"{name!r} is not a branch name git accepts.")
    return name


def git_env(token: str | None) -> dict[str, str]:
    """A clean environment for one git call; with a token, the header that carries it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "LC_ALL": "C",
    }
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return env


def safety(web_url: str) -> list[str]:
    scheme = "https" if web_url.startswith("https://") else "http"
    return [
        "-c", "core.hooksPath=/dev/null",
        "-c", "protocol.allow=never",
        "-c", f"protocol.{scheme}.allow=always",
        "-c", "credential.helper=",
        "-c", "http.followRedirects=false",
    ]  # fmt: skip


async def clone(
    web_url: str,
    full_name: str,
    branch: str,
    destination: Path,
    token: str,
    on_progress: Callable[[Progress], None],
) -> None:
    """Clone `full_name` at `branch` into `destination` (which must not exist yet)."""
    url = f"{web_url}/{full_name}.git"
    command = [
        "git", *safety(web_url), "clone", "--progress", "--no-recurse-submodules",
        "--branch", valid_branch(branch), "--", url, str(destination),
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        env=git_env(token),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    said: list[str] = []
    buffer = b""
    shown = Progress("Starting", 0.0, "")

    def forward(progress: Progress) -> None:
        nonlocal shown
        if progress.fraction >= shown.fraction:  # the bar never moves back
            shown = progress
            on_progress(progress)

    try:
        while chunk := await process.stderr.read(4096):
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for line in lines:
                _read_line(line.decode(errors="replace"), said, forward)
        code = await process.wait()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        shutil.rmtree(destination, ignore_errors=True)
        raise
    if code != 0:
        shutil.rmtree(destination, ignore_errors=True)
        raise GitFailed(_failure(said, token))
    on_progress(Progress("Done", 1.0, ""))


def _read_line(line: str, said: list[str], on_progress: Callable[[Progress], None]) -> None:
    line = line.strip()
    if not line:
        return
    found = _PROGRESS.match(line.removeprefix("remote: "))
    if found is None:
        said.append(line)
        del said[:-20]
        return
    phase = found["phase"].strip()
    if phase not in _WEIGHTS:
        return
    start, span = _WEIGHTS[phase]
    fraction = start + span * int(found["percent"]) / 100
    on_progress(Progress(phase, round(fraction, 3), f"{found['done']}/{found['total']}"))


def _failure(said: list[str], token: str) -> str:
    """git's own complaint, in a sentence (never with the token in it)."""
    text = " ".join(line.removeprefix("fatal: ").removeprefix("remote: ") for line in said[-3:])
    text = text.replace(token, "***")
    if "Authentication failed" in text or "403" in text or "401" in text:
        return f"GitHub refused the clone: link GitHub again or check access ({text})."
    if "not found" in text.lower() and "branch" in text.lower():
        return f"No such branch on GitHub ({text})."
    return f"The clone failed: {text or 'git gave no reason'}."


async def owned(repository: Path, token: str | None, *args: str) -> tuple[int, str, str]:
    """git on a repository the app owns (a fresh clone, the mirror): hooks off, no system or
    user config, the token (if any) in that process's environment only."""
    process = await asyncio.create_subprocess_exec(
        "git", "-c", "core.hooksPath=/dev/null", "-C", str(repository), *args,
        env=git_env(token),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def local(repository: Path, *args: str) -> str:
    """A git command on a repository the app just made (no network, no token)."""
    code, out, err = await owned(repository, None, *args)
    if code != 0:
        raise GitFailed(f"git {args[0]} failed: {err.strip()[:300]}")
    return out
