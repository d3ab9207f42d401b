"""Turns as points in time: rewinding a session's files to before one, forking from one.

A turn is named by its prompt's uuid in the CLI's transcript (the `uuid` every history
message carries): the same id the CLI keys its file checkpoints by, so no second numbering
of turns has to be kept in step with the CLI's.

Rewinding asks the live CLI (`rewind_files` of its control protocol, file checkpointing on):
its dry run answers which files would change, so the preview is the CLI's own account, not a
guess from tool calls. Only what the CLI's edit tools (Write, Edit, MultiEdit, NotebookEdit)
changed is tracked; files changed by Bash commands are not restored, and the CLI says so by
leaving them out of the list.

Forking from a turn copies the transcript up to that turn's last entry with the SDK's own
offline fork (fresh uuids, the parent chain kept): the copy is the new session's transcript
from the start, so its history shows the right turns before its agent ever runs, and no fork
point has to be remembered until it does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_agent_sdk import ClaudeSDKClient
from claude_agent_sdk._internal import session_mutations as sdk_sessions

from app.agent.history import INTERRUPTED, to_messages
from app.errors import AgentFailed, NotFound
from app.workspace.files import open_inside

REWIND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Transcript:
    entries: list[dict[str, Any]]  # the main chain's entries, in file order (no subagents)
    replacements: list[Any]  # content replacements, carried into a fork


@dataclass(frozen=True)
class Forked:
    session_id: str
    message_count: int


def read_transcript(home: Path, path: Path, session_id: str) -> Transcript:
    """The transcript's conversation entries, read only if the file is inside the CLI home."""
    with open_inside(home, path) as f:
        content = f.read()
    entries, replacements = sdk_sessions._parse_fork_transcript(content, session_id)
    return Transcript([e for e in entries if not e.get("isSidechain")], replacements)


def prompt_ids(transcript: Transcript) -> list[str]:
    """The uuids of what the user typed, oldest first (tool results and the CLI's own
    injected lines are `user` entries too, and are not turns)."""
    return [e["uuid"] for e in transcript.entries if _is_prompt(e)]


def check_prompt(transcript: Transcript, at: str) -> None:
    if at not in prompt_ids(transcript):
        raise NotFound("No such turn in this session.")


def fork_copy(home: Path, path: Path, source_id: str, at: str, title: str) -> Forked:
    """A new transcript beside `path` holding the conversation up to and including the turn
    whose prompt is `at`, owned like its source (agents may run as their own uid)."""
    transcript = read_transcript(home, path, source_id)
    check_prompt(transcript, at)
    entries = transcript.entries
    start = next(i for i, e in enumerate(entries) if e["uuid"] == at)
    after = next((i for i in range(start + 1, len(entries)) if _is_prompt(entries[i])), None)
    cut = entries[after - 1]["uuid"] if after is not None else None
    new_id, lines = sdk_sessions._build_fork_lines(
        entries, transcript.replacements, source_id, cut, title, lambda: title
    )
    target = path.parent / f"{new_id}.jsonl"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
        source = os.stat(path)
        os.fchown(fd, source.st_uid, source.st_gid)
    finally:
        os.close(fd)
    kept = entries if after is None else entries[:after]
    return Forked(new_id, sum(len(to_messages(e)) for e in kept))


async def rewind_files(client: ClaudeSDKClient, at: str, *, dry_run: bool) -> dict[str, Any]:
    """The CLI's answer to `rewind_files` (`canRewind`, `error`, `filesChanged`,
    `insertions`, `deletions`). The SDK's public `rewind_files` neither sends `dry_run` nor
    returns the answer, so the control request is sent here the same way it sends it."""
    query = client._query
    if query is None:
        raise AgentFailed("The agent is not connected; try again.")
    request: dict[str, Any] = {"subtype": "rewind_files", "user_message_id": at}
    if dry_run:
        request["dry_run"] = True
    try:
        answer: dict[str, Any] = await query._send_control_request(
            request, timeout=REWIND_TIMEOUT_S
        )
    except Exception as error:
        raise AgentFailed(f"The agent could not rewind the files: {error}") from error
    return answer


def relative(files: list[Any], root: str) -> list[str]:
    """Paths as the user knows them: relative to the project folder."""
    prefix = root.rstrip("/") + "/"
    return sorted(str(f).removeprefix(prefix) for f in files)


def _is_prompt(entry: dict[str, Any]) -> bool:
    if entry.get("type") != "user" or entry.get("isCompactSummary"):
        return False
    messages = to_messages(entry)
    return bool(messages) and all(
        m["type"] == "text" and not m["text"].startswith(INTERRUPTED) for m in messages
    )
