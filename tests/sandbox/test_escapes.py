"""The attack suite: user B's agent, every tool call allowed, tries to reach what is not B's.

The real app runs over HTTP with two local accounts. Ann (user A) works first, so her project,
transcript and session title hold canaries; the app's environment, its signing key and its
upstream model key hold canaries too. Then Bob's agent (bypassPermissions, the real Claude Code
CLI driven by the scripted model's "run bash ...") tries each escape; each must fail, and no
canary may appear in anything his tools print. Positive controls in the same app show the jail
still lets an agent work.
"""

from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, agent_bash, serve_api, settings_env, terminal_run

CANARY = f"canary{secrets.token_hex(6)}"
REPO = Path(__file__).resolve().parents[2]
PROXY = "http://127.0.0.1:3128"


@dataclass
class World:
    api: Api
    data: Path
    ann: str  # user ids
    bob: str
    ann_project: Path
    bob_project: Path
    states: Path
    allowed_port: int
    bob_session: str
    bob_token: str
    app_process: int
    bob_project_id: str
    terminal_quiet: bool = False

    def bash(self, command: str) -> str:
        """Run `command` through Bob's agent; the tool's output as the agent saw it."""
        with self.api.client(self.bob_token) as http:
            return agent_bash(http, self.bob_session, command)

    def terminal(self, command: str) -> str:
        """Run `command` in Bob's terminal (over the HTTP API); what it printed."""
        if not self.terminal_quiet:
            self.terminal_quiet = True  # no echo, no prompt: only what commands print
            self.terminal("stty -echo; PS1=''; PS2=''; bind 'set enable-bracketed-paste off'")
        with self.api.client(self.bob_token) as http:
            return terminal_run(http, self.bob_project_id, command)

    def run(self, channel: str, command: str) -> str:
        return self.bash(command) if channel == "agent" else self.terminal(command)


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the allowlisted host\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    (data / "secret.key").write_text(f"{CANARY}-signing-key-{'x' * 32}")
    allowed = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Hello)
    threading.Thread(target=allowed.serve_forever, daemon=True).start()
    port = int(allowed.server_address[1])
    # A process of the app's with a secret in its environment (as the app itself has its own).
    app_process = subprocess.Popen(
        ["sleep", "600"], env={**os.environ, "AW_TEST_CANARY": f"{CANARY}-app-environment"}
    )
    states = data / "reflex-states"
    states.mkdir(mode=0o700)
    env = settings_env(
        data,
        model_server,
        ANTHROPIC_API_KEY=f"{CANARY}-upstream-model-key",
        AGENT_ALLOWED_HOSTS=f"default,127.0.0.2:{port}",
    )
    try:
        with serve_api(env) as api:
            ann_token = api.sign_up("ann@example.com")
            bob_token = api.sign_up("bob@example.com")
            store = api.services.store
            ann = store.find_user("ann@example.com")
            bob = store.find_user("bob@example.com")
            assert ann is not None and bob is not None
            with api.client(ann_token) as http_ann:
                ann_session = http_ann.post(
                    "/sessions", json={"permission_mode": "bypassPermissions"}
                ).json()["session_id"]
                answer = http_ann.post(
                    f"/sessions/{ann_session}/messages",
                    json={"message": f"run bash echo {CANARY}-ann-project > secret.txt"},
                    timeout=120,
                )
                assert answer.status_code == 200, answer.text
            with api.client(bob_token) as http_bob:
                bob_session = http_bob.post(
                    "/sessions", json={"permission_mode": "bypassPermissions"}
                ).json()["session_id"]
            ann_row = store.get_session(user_id=ann.id, session_id=ann_session)
            bob_row = store.get_session(user_id=bob.id, session_id=bob_session)
            world = World(
                api=api,
                data=data,
                ann=ann.id,
                bob=bob.id,
                ann_project=data / "projects" / ann.id / ann_row.project_id,
                bob_project=data / "projects" / bob.id / bob_row.project_id,
                states=states,
                allowed_port=port,
                bob_session=bob_session,
                bob_token=bob_token,
                app_process=app_process.pid,
                bob_project_id=bob_row.project_id,
            )
            # The canaries are really where the attacks look for them.
            assert CANARY in (world.ann_project / "secret.txt").read_text()
            assert CANARY in store.get_session(user_id=ann.id, session_id=ann_session).title
            assert any(CANARY in p.read_text() for p in (data / "homes" / ann.id).rglob("*.jsonl"))
            yield world
    finally:
        app_process.kill()
        allowed.shutdown()


# Each attack: a shell command (with {data}, {ann}, ... filled in) and a text its output must
# contain to show how it failed.
ATTACKS = {
    "read the signing key": ("cat {data}/secret.key", "No such file or directory"),
    "list the data directory": ("ls -la {data}", "No such file or directory"),
    "read the database": ("head -c 200 {data}/app.db", "No such file or directory"),
    "find the database anywhere": (
        "find / -path /proc -prune -o -path /usr -prune -o "
        "\\( -name app.db -o -name secret.key \\) -print 2>/dev/null; echo end-of-list",
        "end-of-list",
    ),
    "read every process's environment": (
        "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c AW_TEST_CANARY",
        "0",
    ),
    "read the app process's environment": (
        "cat /proc/{app_process}/environ",
        "No such file or directory",
    ),
    "see the app's process": ("ls /proc/{app_pid}/environ", "No such file or directory"),
    "signal the app's process": ("kill -0 {app_pid}", "No such process"),
    "read the other user's project": (
        "cat {ann_project}/secret.txt",
        "No such file or directory",
    ),
    "write into the other user's project": (
        "echo pwned > {ann_project}/pwned.txt",
        "No such file or directory",
    ),
    "read the other user's CLI home": ("ls -R {data}/homes/{ann}", "No such file or directory"),
    "write a pickle into Reflex's state folder": (
        "echo evil > {states}/evil.pkl",
        "No such file or directory",
    ),
    "read the app's checkout": ("ls {repo}/app", "No such file or directory"),
    "read the app user's home": ("ls -a /root 2>&1; ls -a ~root 2>&1", "No such file or directory"),
    "connect to PostgreSQL": (
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5432' && echo OPEN || echo CLOSED",
        "CLOSED",
    ),
    "connect to Redis": (
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379' && echo OPEN || echo CLOSED",
        "CLOSED",
    ),
    "connect to the app's own port": (
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{app_port}' && echo OPEN || echo CLOSED",
        "CLOSED",
    ),
    "connect to the model server directly": (
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{model_port}' && echo OPEN || echo CLOSED",
        "CLOSED",
    ),
    "connect to the cloud metadata endpoint": (
        "timeout 5 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' && echo OPEN || echo CLOSED",
        "CLOSED",
    ),
    "use PostgreSQL's unix socket": ("ls /var/run/postgresql /run/postgresql", "No such file"),
    "tunnel to PostgreSQL through the proxy": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} -p http://127.0.0.1:5432/ 2>&1",
        "CONNECT tunnel failed, response 403",
    ),
    "tunnel to Redis through the proxy": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} -p http://localhost:6379/ 2>&1",
        "response 403",
    ),
    "tunnel to the app's own port through the proxy": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} -p http://127.0.0.1:{{app_port}}/ping 2>&1",
        "response 403",
    ),
    "fetch cloud metadata through the proxy": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} http://169.254.169.254/latest/meta-data/ 2>&1",
        "not on this app's allowlist",
    ),
    "reach a private address through the proxy": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} http://10.0.0.1/ 2>&1",
        "not on this app's allowlist",
    ),
    "reach the allowlisted host on another port": (
        f"curl -sS -m 5 --noproxy '' -x {PROXY} http://127.0.0.2:{{model_port}}/ 2>&1",
        "not on this app's allowlist",
    ),
    "call the relay without the session token": (
        "curl -sS -m 5 -X POST http://127.0.0.1:3128/v1/messages -d '{{}}'",
        "authentication_error",
    ),
    "use the relay to reach another path": (
        'curl -sS -m 5 --path-as-is "$ANTHROPIC_BASE_URL/v1/../../ping"',
        "does not serve",
    ),
    "gain capabilities": ("grep CapEff /proc/self/status", "0000000000000000"),
    "create a user namespace": ("unshare -U true 2>&1; echo rc=$?", "rc=1"),
    "write system files": ("touch /usr/bin/evil /etc/passwd 2>&1", "cannot touch"),
}


# The terminal's shell has no model token, so the relay attacks read differently there.
AGENT_ONLY = {"use the relay to reach another path"}
CHANNELS = ("agent", "terminal")  # Bob's agent's Bash tool, and Bob's own terminal


@pytest.mark.parametrize(
    ("attack", "channel"),
    [(a, c) for a in ATTACKS for c in CHANNELS if not (c == "terminal" and a in AGENT_ONLY)],
)
def test_attack_fails_and_leaks_nothing(
    world: World, attack: str, channel: str, model_server: ModelServer
) -> None:
    command, failure = ATTACKS[attack]
    output = world.run(
        channel,
        command.format(
            data=world.data,
            ann=world.ann,
            ann_project=world.ann_project,
            states=world.states,
            repo=REPO,
            app_pid=os.getpid(),
            app_process=world.app_process,
            app_port=world.api.url.rsplit(":", 1)[1],
            model_port=model_server.base_url.rsplit(":", 1)[1],
        ),
    )
    assert failure in output, output
    assert CANARY not in output
    if attack == "find the database anywhere":
        assert output.strip() == "end-of-list", output


@pytest.mark.parametrize("channel", CHANNELS)
def test_nothing_was_written_outside_bobs_folders(world: World, channel: str) -> None:
    world.run(
        channel, f"echo pwned > {world.ann_project}/pwned.txt; echo evil > {world.states}/evil.pkl"
    )
    assert not (world.ann_project / "pwned.txt").exists()
    assert not (world.states / "evil.pkl").exists()


def test_the_agent_environment_holds_no_secret(world: World) -> None:
    output = world.bash("env")
    assert CANARY not in output
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:3128/s/" in output  # its own relay
    for name in ("AW_TEST_CANARY", "APP_SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"):
        assert name not in output


def test_the_terminal_holds_no_secret_and_no_model_token(world: World) -> None:
    output = world.terminal("env")
    assert CANARY not in output
    assert "HTTPS_PROXY=http://127.0.0.1:3128" in output  # the same door out as the agent's
    for name in ("ANTHROPIC", "AW_TEST_CANARY", "APP_SECRET_KEY", "DATABASE_URL", "AWS_"):
        assert name not in output
    relay = world.terminal("curl -sS -m 5 -X POST http://127.0.0.1:3128/s/guess/v1/messages")
    assert "authentication_error" in relay


@pytest.mark.parametrize("channel", CHANNELS)
def test_agents_run_as_distinct_unprivileged_users(world: World, channel: str) -> None:
    bob_uid = int(world.run(channel, "id -u").strip().splitlines()[-1])
    assert bob_uid >= 200_000
    assert (world.bob_project).stat().st_uid == bob_uid
    assert (world.ann_project).stat().st_uid not in (0, bob_uid)


# Positive controls: the jail keeps the agent in, not from working.


def test_the_agent_writes_and_runs_code_in_its_project(world: World) -> None:
    output = world.bash("printf 'print(6 * 7)\\n' > calc.py && python3 calc.py")
    assert output.strip().endswith("42")
    assert (world.bob_project / "calc.py").read_text() == "print(6 * 7)\n"


def test_the_agent_runs_git(world: World) -> None:
    output = world.bash("git init -q repo && cd repo && git status --short && echo git-ok")
    assert "git-ok" in output
    assert (world.bob_project / "repo" / ".git").is_dir()


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_agent_reaches_an_allowlisted_host(world: World, channel: str) -> None:
    url = f"http://127.0.0.2:{world.allowed_port}/hello"
    plain = world.run(channel, f"curl -sS -m 10 {url}")
    assert "hello from the allowlisted host" in plain
    tunnelled = world.run(channel, f"curl -sS -m 10 -p {url}")
    assert "hello from the allowlisted host" in tunnelled


def test_the_agent_reaches_the_model_and_its_cost_is_counted(world: World) -> None:
    with world.api.client(world.bob_token) as http:
        before = http.get(f"/sessions/{world.bob_session}").json()
        answer = http.post(
            f"/sessions/{world.bob_session}/messages", json={"message": "echo still talking"}
        ).json()
        after = http.get(f"/sessions/{world.bob_session}").json()
    texts = [m["content"] for m in answer["messages"] if m["type"] == "text"]
    assert texts == ["You said: still talking"]
    assert after["cost_usd"] > before["cost_usd"]
