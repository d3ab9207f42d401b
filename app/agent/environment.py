"""What an agent process sees of the world: its environment and the CLI it runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import claude_agent_sdk

LAUNCHER = Path(__file__).with_name("launcher.sh")

# Plain process settings an agent's shell commands expect; nothing secret.
_INHERITED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "TMPDIR")
# A server has no use for the CLI's update checks and telemetry, and offline machines fail them.
_QUIET = {
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


def bundled_cli() -> Path:
    """The Claude Code CLI shipped inside the claude-agent-sdk wheel."""
    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def agent_env(
    *, home: Path, model_env: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The complete environment of one agent process, launcher instructions included.

    `home` is the user's own home for the CLI, so transcripts and settings of two users never
    mix; `model_env` holds the model-access variables (see settings.MODEL_ENV_VARS).
    """
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in _INHERITED if key in environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(_QUIET)
    env.update(
        # TodoWrite sends the whole list on each call, which the UI shows as one checklist
        # updated in place; the newer Task* tools would scatter it over many calls.
        CLAUDE_CODE_ENABLE_TASKS="0",
        HOME=str(home),
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        SHELL="/bin/bash",
        USER="agent",
    )
    env.update(model_env)
    if os.geteuid() == 0:
        # The CLI refuses bypassPermissions as root unless told it is sandboxed; containers run
        # as root, and each agent is confined to its project folder (a microVM on AgentCore).
        env["IS_SANDBOX"] = "1"
    env["AGENT_ENV_KEYS"] = " ".join(sorted(env))
    env["AGENT_REAL_CLI"] = str(bundled_cli())
    return env
