"""Fair share: agents and terminals run at a lower CPU priority than the app (AGENT_NICENESS),
so under load the app's own work (API, streaming, pages) is served first; and the agent,
unprivileged, cannot take the priority back.

The real app over HTTP, the real Claude Code CLI in its jail, driven by the scripted model's
"run bash ..." rule; the terminal through its HTTP API.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from app.settings import SettingsError, load_settings
from tests.api.conftest import Api, agent_bash, serve_api, settings_env

NICENESS = 7  # not the default, so the setting is seen to take effect
EXPECTED = min(19, os.nice(0) + NICENESS)  # relative to the app's own (pytest may be niced)


@dataclass
class Agent:
    api: Api
    token: str
    session_id: str
    project_id: str

    def bash(self, command: str) -> str:
        """`command` run by the agent's Bash tool; what the tool printed."""
        with self.api.client(self.token) as http:
            return agent_bash(http, self.session_id, command)

    def terminal(self, command: str) -> str:
        """`command` typed into the project's terminal; everything it printed."""
        marker = f"END{secrets.token_hex(4)}"
        base = f"/projects/{self.project_id}/terminal"
        with self.api.client(self.token) as http:
            opened = http.post(base, json={"cols": 200, "rows": 50})
            assert opened.status_code == 200, opened.text
            since = opened.json()["end"]
            # The marker is split in what is typed, so only the command's output holds it.
            typed = {"data": f"{command}; echo {marker[:3]}''{marker[3:]}\r"}
            assert http.post(f"{base}/input", json=typed).status_code == 204
            seen = ""
            for _ in range(40):
                piece = http.get(f"{base}/output", params={"since": since, "wait": 5}).json()
                seen, since = seen + piece["data"], piece["end"]
                if marker in seen:
                    return seen[: seen.index(marker)]
        raise AssertionError(f"no end of {command!r} in the terminal: {seen!r}")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Agent]:
    data = tmp_path_factory.mktemp("data")
    (data / "reflex-states").mkdir(mode=0o700)
    env = settings_env(data, model_server, AGENT_NICENESS=str(NICENESS))
    with serve_api(env) as api:
        token = api.sign_up("nice@example.com")
        with api.client(token) as http:
            created = http.post("/sessions", json={"permission_mode": "bypassPermissions"})
            assert created.status_code == 201, created.text
            session_id = created.json()["session_id"]
        user = api.services.store.find_user("nice@example.com")
        assert user is not None
        row = api.services.store.get_session(user_id=user.id, session_id=session_id)
        yield Agent(api=api, token=token, session_id=session_id, project_id=row.project_id)


def niceness_of(stat: str) -> int:
    """Field 19 of /proc/<pid>/stat (after the parenthesised command name)."""
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_agent_commands_run_at_the_configured_niceness(agent: Agent) -> None:
    output = agent.bash("cat /proc/self/stat; nice")
    stat = next(line for line in output.splitlines() if line.split(" ", 1)[0].isdigit())
    assert niceness_of(stat) == EXPECTED, output
    assert re.search(rf"^{EXPECTED}$", output, re.MULTILINE), output


def test_agent_cannot_raise_its_own_priority(agent: Agent) -> None:
    output = agent.bash("nice -n -5 nice; renice -n 0 -p $$; echo still; nice")
    assert "Permission denied" in output, output
    assert re.search(rf"still\s+{EXPECTED}\s*$", output), output
    # `nice -n -5` warns and runs its command anyway, at the niceness it had.
    assert not re.search(rf"^{EXPECTED - 5}$", output, re.MULTILINE), output


def test_terminal_shell_runs_at_the_configured_niceness(agent: Agent) -> None:
    output = agent.terminal("echo nice-is-$(nice)")
    assert f"nice-is-{EXPECTED}" in output, output


@pytest.mark.parametrize("raw", ["-1", "20", "ten", "1.5"])
def test_niceness_setting_outside_0_to_19_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"DATA_DIR": str(tmp_path), "AGENT_NICENESS": raw})
    assert any(
        p.startswith(f"AGENT_NICENESS={raw!r}") and "0 to 19" in p for p in error.value.problems
    )


def test_niceness_setting_defaults_to_10(tmp_path: Path) -> None:
    assert load_settings({"DATA_DIR": str(tmp_path)}).agent_niceness == 10
    assert load_settings({"DATA_DIR": str(tmp_path), "AGENT_NICENESS": "0"}).agent_niceness == 0
