"""What an agent may take of the machine. Fair share: agents and terminals run at a lower CPU
priority than the app (AGENT_NICENESS), in a CPU group of their user's weighted like one
process at that niceness, so under load the app's own work (API, streaming, pages) is served
first. Limits: a user's agents together hold at most AGENT_MEMORY_MB and run at most
AGENT_MAX_PROCESSES tasks; beyond them the kernel stops the agent's own process, never the app.
The agent, unprivileged, can take none of it back: not by renice, not by leaving its groups,
not by starting new sessions (which the kernel's autogroups would otherwise weigh like the
whole app each).

The real app over HTTP, the real Claude Code CLI in its jail, driven by the scripted model's
"run bash ..." rule; the terminal through its HTTP API.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from app.sandbox.cgroups import nice_weight
from app.settings import SettingsError, load_settings
from tests.api.conftest import Api, agent_bash, serve_api, settings_env, terminal_run

NICENESS = 7  # not the default, so the setting is seen to take effect
MEMORY_MB = 384  # the limits are small, so a test reaches them quickly
MAX_PROCESSES = 96
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
        with self.api.client(self.token) as http:
            return terminal_run(http, self.project_id, command)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Agent]:
    data = tmp_path_factory.mktemp("data")
    (data / "reflex-states").mkdir(mode=0o700)
    env = settings_env(
        data,
        model_server,
        AGENT_NICENESS=str(NICENESS),
        AGENT_MEMORY_MB=str(MEMORY_MB),
        AGENT_MAX_PROCESSES=str(MAX_PROCESSES),
    )
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


def group_of(pid: int, controller: str) -> str:
    """The process's group in the controller's hierarchy (v1), or its v2 group."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    by_controllers = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines}
    found = [path for names, path in by_controllers.items() if controller in names.split(",")]
    return found[0] if found else by_controllers[""]


def processes_running(argv: bytes) -> list[int]:
    """Host pids whose command line is exactly `argv` (NUL-separated)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == argv:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def escaped_sleep(agent: Agent, run: str, seconds: str) -> list[int]:
    """Have the agent (`run`: its Bash tool or its terminal) try to leave its groups, then
    start `sleep <seconds>` in a session of its own; the host pids of that sleep."""
    leave = "; ".join(
        f"echo $$ > {f} 2>/dev/null && echo MO''VED"
        for f in (
            "/sys/fs/cgroup/cpu/cgroup.procs",
            "/sys/fs/cgroup/memory/cgroup.procs",
            "/sys/fs/cgroup/pids/cgroup.procs",
            "/sys/fs/cgroup/unified/cgroup.procs",
            "/sys/fs/cgroup/cgroup.procs",
        )
    )
    output = getattr(agent, run)(f"{leave}; setsid sleep {seconds} & sleep 0.3; echo spa''wned")
    assert "spawned" in output and "MOVED" not in output, output
    deadline = time.monotonic() + 10
    while not (pids := processes_running(f"sleep\0{seconds}\0".encode())):
        assert time.monotonic() < deadline, f"no sleep {seconds} on the host"
        time.sleep(0.1)
    return pids


def test_what_the_agent_starts_stays_in_its_users_groups(agent: Agent) -> None:
    groups = agent.api.services.sandbox.groups
    assert groups is not None, "this machine has writable cgroups: the app must use them"
    assert set(groups.roots) == {"cpu", "memory", "pids"}, groups.missing
    cpu = groups.roots["cpu"]
    weight = int((cpu / ("cpu.shares" if groups.version == 1 else "cpu.weight")).read_text())
    # v2 weights run 1-10000 around 100 where v1 shares run around 1024.
    assert weight == round(nice_weight(NICENESS) * (1 if groups.version == 1 else 100 / 1024))
    user = agent.api.services.store.find_user("nice@example.com")
    assert user is not None
    [user_group] = {procs.parent.name for procs in groups.procs_for(user.id)}
    for run, seconds in (("bash", "41.25"), ("terminal", "42.25")):
        pids = escaped_sleep(agent, run, seconds)
        try:
            for pid, controller in ((p, c) for p in pids for c in groups.roots):
                path = Path(group_of(pid, controller))
                assert path.name == user_group, (run, controller, path)
                assert path.parent.name == groups.roots[controller].name, (run, controller, path)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)


ALLOCATE = (
    'python3 -c \'b = bytearray({mb} * 2**20); b[::4096] = b"x" * len(b[::4096]); '
    'print("allo" "cated")\'; echo exit=$?'
)


def test_an_agent_over_its_users_memory_is_stopped_not_the_app(agent: Agent) -> None:
    within = agent.bash(ALLOCATE.format(mb=MEMORY_MB // 4))
    assert "allocated" in within and "exit=0" in within, within
    groups, user = (
        agent.api.services.sandbox.groups,
        agent.api.services.store.find_user("nice@example.com"),
    )
    assert groups is not None and user is not None
    before = groups.oom_kills(user.id)
    with agent.api.client(agent.token) as http:
        over = http.post(
            f"/sessions/{agent.session_id}/messages",
            json={"message": f"run bash {ALLOCATE.format(mb=MEMORY_MB * 2)}"},
            timeout=120,
        )
    assert over.status_code == 200, over.text
    assert groups.oom_kills(user.id) > before, "the user's memory limit was reached"
    # The kernel ended the largest process in the user's group: the greedy one (SIGKILL,
    # 128 + 9) or the agent itself, which the turn then says in words. Never the app.
    said = json.dumps(over.json()["messages"])
    assert "allocated" not in said, said
    assert "exit=137" in said or f"memory limit ({MEMORY_MB:,} MB, AGENT_MEMORY_MB)" in said, said
    assert "still here" in agent.bash("echo still here")  # the conversation goes on
    with agent.api.client(agent.token) as http:
        assert http.get("/ping").status_code == 200


FORK_BOMB = (
    "python3 -c \"exec('import os, time, signal\\nkids = []\\ntry:\\n for _ in range(500):"
    "\\n  pid = os.fork()\\n  if pid == 0: time.sleep(60); os._exit(0)\\n  kids.append(pid)"
    "\\nexcept OSError as error: print(\\'refused\\', error.errno)\\nprint(\\'forked\\', len(kids))"
    "\\nfor kid in kids: os.kill(kid, signal.SIGKILL)')\""
)


def test_a_fork_bomb_stops_at_the_users_process_limit(agent: Agent) -> None:
    output = agent.bash(FORK_BOMB)
    forked = re.search(r"forked (\d+)", output)
    assert forked is not None and "refused 11" in output, output  # EAGAIN
    assert 0 < int(forked.group(1)) < MAX_PROCESSES, output
    assert "still here" in agent.bash("echo still here")


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


@pytest.mark.parametrize(
    ("name", "raw", "said"),
    [
        ("AGENT_MEMORY_MB", "100", ">= 256"),
        ("AGENT_MEMORY_MB", "-1", ">= 256"),
        ("AGENT_MEMORY_MB", "4G", ">= 256"),
        ("AGENT_MAX_PROCESSES", "10", ">= 64"),
        ("AGENT_MAX_PROCESSES", "many", ">= 64"),
    ],
)
def test_limits_an_agent_could_not_start_under_are_refused(
    tmp_path: Path, name: str, raw: str, said: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"DATA_DIR": str(tmp_path), name: raw})
    assert any(p.startswith(f"{name}={raw!r}") and said in p for p in error.value.problems)


def test_limits_default_to_4_gb_and_1024_tasks_and_0_lifts_them(tmp_path: Path) -> None:
    default = load_settings({"DATA_DIR": str(tmp_path)})
    assert (default.agent_memory_mb, default.agent_max_processes) == (4096, 1024)
    lifted = load_settings(
        {"DATA_DIR": str(tmp_path), "AGENT_MEMORY_MB": "0", "AGENT_MAX_PROCESSES": "0"}
    )
    assert (lifted.agent_memory_mb, lifted.agent_max_processes) == (0, 0)
