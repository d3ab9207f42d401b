"""What an agent process finds in its environment: paths as it sees them, its door, its model
settings, and nothing of the app's secrets (no credential: the relay adds that outside)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import claude_agent_sdk

# Plain process settings an agent's shell commands expect; nothing secret.
_INHERITED = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
# A server has no use for the CLI's update checks and telemetry, and offline machines fail them.
_QUIET = {
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}
# Model choices an operator may set for the CLI; none is a credential or an endpoint.
TUNABLE_VARS = (
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_MAX_RETRIES",
    "MAX_THINKING_TOKENS",
    "DISABLE_PROMPT_CACHING",
)
JAIL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOCAL_HOSTS = "localhost,127.0.0.1,::1"


def bundled_cli() -> Path:
    """The Claude Code CLI shipped inside the claude-agent-sdk wheel."""
    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def shell_env(
    *,
    home: str,
    door_url: str,
    path: str = JAIL_PATH,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What any process of the user's sandbox starts with (a terminal's shell as it is; the
    agent adds its model settings): plain locale settings, its home, and the door as proxy.
    No model token: a terminal never talks to the model."""
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in _INHERITED if key in environ}
    env.update(
        PATH=path,
        HOME=home,
        SHELL="/bin/bash",
        USER="agent",
        TMPDIR="/tmp",
        HTTP_PROXY=door_url,
        HTTPS_PROXY=door_url,
        http_proxy=door_url,
        https_proxy=door_url,
        NO_PROXY=LOCAL_HOSTS,
        no_proxy=LOCAL_HOSTS,
    )
    return env


def agent_env(
    *,
    home: str,
    door_url: str,
    token: str,
    bedrock: bool,
    model_env: Mapping[str, str],
    path: str = JAIL_PATH,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of one agent process.

    `door_url` is the session's door as the agent reaches it (`http://127.0.0.1:3128` in the
    jail): the proxy for everything, and under `/s/<token>` the model relay.
    """
    env = shell_env(home=home, door_url=door_url, path=path, environ=environ)
    env.update(_QUIET)
    env.update({k: v for k, v in model_env.items() if k in TUNABLE_VARS})
    relay = f"{door_url}/s/{token}"
    env.update(
        # TodoWrite sends the whole list on each call, which the UI shows as one checklist
        # updated in place; the newer Task* tools would scatter it over many calls.
        CLAUDE_CODE_ENABLE_TASKS="0",
        CLAUDE_CONFIG_DIR=f"{home}/.claude",
    )
    if bedrock:
        env.update(
            CLAUDE_CODE_USE_BEDROCK="1",
            CLAUDE_CODE_SKIP_BEDROCK_AUTH="1",
            ANTHROPIC_BEDROCK_BASE_URL=relay,
            AWS_REGION=model_env.get("AWS_REGION") or model_env.get("AWS_DEFAULT_REGION") or "",
        )
    else:
        # The CLI wants a key to start; this one opens only its own session's relay.
        env.update(ANTHROPIC_BASE_URL=relay, ANTHROPIC_API_KEY=token)
    return {k: v for k, v in env.items() if v}
