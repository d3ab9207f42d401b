"""Two app instances behind one database, one data folder and one Redis: a user's agents live
on one instance (their home), and the other serves that user's API all the same: it starts
turns there, streams their events, answers approvals, lists live sessions. Killed in the
middle of a turn, the home is reported gone in the turn's own stream, and the conversation
goes on on the other instance, with what was said before.

Real processes (`python -m app.devtools.api_server`), real PostgreSQL and Redis, the real CLI
against the scripted model.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.devtools.model_server import ModelServer
from app.settings import SettingsError, load_settings
from tests.api.conftest import free_port, settings_env
from tests.conftest import fresh_postgres_database
from tests.processes import child

pytestmark = pytest.mark.postgres

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@dataclass
class Instance:
    url: str
    pid: int

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


@contextlib.contextmanager
def instance(env: dict[str, str], log: Path) -> Iterator[Instance]:
    """One app instance (its API and services) as a process of its own."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["-m", "app.devtools.api_server", "--port", str(port)]
    with child(argv, {**os.environ, **env}, log, f"{url}/ping") as pid:
        yield Instance(url, pid)


@dataclass
class Pair:
    a: Instance
    b: Instance
    token: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Pair]:
    data = tmp_path_factory.mktemp("cluster")
    (data / "reflex-states").mkdir(mode=0o700)
    with fresh_postgres_database() as database:
        # Each run its own Redis keys: instance and user ids are new, so nothing is shared.
        env = settings_env(data, model_server, DATABASE_URL=database)
        env.update(CLUSTER_REDIS_URL=REDIS_URL, APP_SECRET_KEY=secrets.token_hex(32))
        with instance(env, data / "a.log") as a, instance(env, data / "b.log") as b:
            token = sign_up(a, "two@example.com")
            yield Pair(a, b, token)


def sign_up(at: Instance, email: str) -> str:
    password = "correct horse battery"
    with httpx.Client(base_url=at.url, timeout=30) as http:
        assert http.post(
            "/auth/local/signup", json={"email": email, "password": password}
        ).is_success
        answer = http.post("/auth/local/token", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def turn(
    http: httpx.Client, session_id: str, message: str, *, on_event: Any = None
) -> list[dict[str, Any]]:
    """Send `message` through `http`'s instance and read its SSE stream to the end."""
    events: list[dict[str, Any]] = []
    with http.stream(
        "POST", f"/sessions/{session_id}/messages/stream", json={"message": message}, timeout=120
    ) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            events.append(event)
            if on_event is not None:
                on_event(event)
            if event["type"] == "done":
                break
    return events


def jails_under(root: int) -> list[int]:
    """The bubblewrap processes (agents' jails) started by process `root`, at any depth."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            names[int(entry.name)] = stat.split("(", 1)[1].rsplit(")", 1)[0]

    def under(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root:
                return True
        return False

    return [pid for pid, name in names.items() if name == "bwrap" and under(pid)]


def answer_text(events: list[dict[str, Any]]) -> str:
    return "".join(e.get("content", "") for e in events if e["type"] == "text")


def test_the_other_instance_serves_the_users_agents(pair: Pair) -> None:
    with pair.a.client(pair.token) as a, pair.b.client(pair.token) as b:
        created = a.post("/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]

        events = turn(b, session_id, "echo hello through b")
        assert "You said: hello through b" in answer_text(events), events
        deltas = [e for e in events if e["type"] == "text_delta"]
        assert deltas, "tokens stream through the other instance too"

        live = [s["session_id"] for s in b.get("/sessions").json()["sessions"]]
        assert live == [session_id], "B knows the agent runs (on A)"
        assert jails_under(pair.a.pid), "the agent runs on A, the user's home"
        assert not jails_under(pair.b.pid), "B started no agent of its own"
        assert b.get(f"/sessions/{session_id}").json()["live"] is True

        # An approval asked on A's agent is answered through B.
        answered: list[str] = []

        def approve(event: dict[str, Any]) -> None:
            if event["type"] == "permission":
                request_id = event["permission"]["request_id"]
                response = b.post(
                    f"/sessions/{session_id}/permissions/respond",
                    json={"request_id": request_id, "allowed": True},
                )
                assert response.status_code == 200, response.text
                answered.append(request_id)

        events = turn(b, session_id, "write from-b.txt", on_event=approve)
        assert answered, events
        assert "Write result" in answer_text(events), events
        history = b.get(f"/sessions/{session_id}/history").json()
        assert any("hello through b" in json.dumps(m) for m in history["messages"])

        # The project's terminal is one shell, on A, whichever instance is asked.
        project_id = b.get(f"/sessions/{session_id}").json()["project_id"]
        base = f"/projects/{project_id}/terminal"
        assert b.post(base, json={"cols": 80, "rows": 24}).status_code == 200
        typed = a.post(f"{base}/input", json={"data": "echo ter''minal-$((40+2))\r"})
        assert typed.status_code == 204, typed.text
        seen, since = "", 0
        for _ in range(20):
            piece = b.get(f"{base}/output", params={"since": since, "wait": 5}).json()
            seen, since = seen + piece["data"], piece["end"]
            if "terminal-42" in seen:
                break
        assert "terminal-42" in seen, seen
        assert not jails_under(pair.b.pid), "the shell runs on A too"
        assert a.delete(base).status_code == 204


def test_a_home_killed_mid_turn_is_reported_and_the_session_goes_on(
    pair: Pair, model_server: ModelServer
) -> None:
    with pair.b.client(pair.token) as b:
        # The user's home is A (it served them first): this session's agent runs there.
        created = b.post("/sessions", json={})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        assert "You said: before" in answer_text(turn(b, session_id, "echo before"))

        words: list[str] = []

        def kill_a_midway(event: dict[str, Any]) -> None:
            if event["type"] == "text_delta":
                words.append(event.get("content", ""))
                if len(words) == 20:
                    os.kill(pair.a.pid, signal.SIGKILL)

        events = turn(b, session_id, "long story", on_event=kill_a_midway)
        errors = [e for e in events if e["type"] == "error"]
        assert errors, events[-5:]
        assert "stopped in the middle of its turn" in json.dumps(errors[-1])
        assert events[-1]["type"] == "done"
        assert len(words) < 400, "the answer was cut short, not finished by a ghost"
        row = b.get(f"/sessions/{session_id}").json()
        assert row["status"] == "interrupted" and not row["live"]

        # The conversation goes on, on B, with what was said before (the transcript).
        events = turn(b, session_id, "echo after the crash")
        assert "You said: after the crash" in answer_text(events), events
        request = [r for r in model_server.requests if "after the crash" in json.dumps(r)][-1]
        assert "before" in json.dumps(request["messages"])
        assert [s["session_id"] for s in b.get("/sessions").json()["sessions"]] == [session_id]


def test_the_cluster_setting_is_checked_and_follows_reflexs_redis(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({"DATA_DIR": str(tmp_path), "CLUSTER_REDIS_URL": "http://redis:6379"})
    assert any(p.startswith("CLUSTER_REDIS_URL") for p in error.value.problems)
    # Reflex with its state in Redis runs several workers, each an instance of the cluster.
    reflex = load_settings({"DATA_DIR": str(tmp_path), "REFLEX_REDIS_URL": "redis://r:6379/2"})
    assert reflex.cluster_redis_url == "redis://r:6379/2"
    assert load_settings({"DATA_DIR": str(tmp_path)}).cluster_redis_url is None
