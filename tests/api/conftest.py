"""The HTTP API served by a real uvicorn server on a free port, with its own data per test."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app import services as app_services
from app.api.main import create_api
from app.devtools.model_server import ModelServer
from app.services import Services, services, start_services, stop_services
from app.settings import load_settings


@dataclass
class Api:
    url: str
    services: Services

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def sign_up(self, email: str, password: str = "correct horse battery") -> str:
        """A new local account; returns its access token."""
        with self.client() as http:
            assert (
                http.post(
                    "/auth/local/signup", json={"email": email, "password": password}
                ).status_code
                == 201
            )
            response = http.post("/auth/local/token", json={"email": email, "password": password})
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])


def agent_bash(http: httpx.Client, session_id: str, command: str) -> str:
    """Run `command` through the session's agent (the scripted "run bash" rule); what the
    Bash tool printed, as the agent saw it."""
    response = http.post(
        f"/sessions/{session_id}/messages", json={"message": f"run bash {command}"}, timeout=120
    )
    assert response.status_code == 200, response.text
    results = [
        block["content"]
        for m in response.json()["messages"]
        if m["type"] == "user_message"
        for block in m["content"]
    ]
    assert results, f"the agent ran no tool: {response.json()['messages']}"
    return str(results[-1])


def terminal_run(http: httpx.Client, project_id: str, command: str) -> str:
    """`command` typed into the project's terminal (over the HTTP API); what it printed up to
    a marker echoed after it (split in what is typed, so only the output holds it whole)."""
    marker = f"END{secrets.token_hex(4)}"
    base = f"/projects/{project_id}/terminal"
    opened = http.post(base, json={"cols": 200, "rows": 50})
    assert opened.status_code == 200, opened.text
    since = opened.json()["end"]
    typed = {"data": f"{command}; echo {marker[:3]}''{marker[3:]}\r"}
    assert http.post(f"{base}/input", json=typed).status_code == 204
    seen = ""
    for _ in range(40):
        piece = http.get(f"{base}/output", params={"since": since, "wait": 5}).json()
        seen, since = seen + piece["data"], piece["end"]
        if marker in seen:
            return seen[: seen.index(marker)]
    raise AssertionError(f"no end of {command!r} in the terminal: {seen!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(data_dir: Path, model_server: ModelServer, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "ANTHROPIC_BASE_URL": model_server.base_url,
        "ANTHROPIC_API_KEY": "test-key",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        **extra,
    }


@contextlib.contextmanager
def serve_api(env: dict[str, str]) -> Iterator[Api]:
    """Run the API (with the services' lifespan) in uvicorn, in a thread, until the block ends."""
    if app_services.running():
        raise RuntimeError("another API of this process is still running; its services would serve")
    api = create_api()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        api.state.services = await start_services(load_settings(env))
        try:
            yield
        finally:
            await stop_services()

    api.router.lifespan_context = lifespan
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", ws="websockets")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield Api(url=f"http://127.0.0.1:{port}", services=services())
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def api(tmp_path: Path, model_server: ModelServer) -> Iterator[Api]:
    with serve_api(settings_env(tmp_path, model_server)) as running:
        yield running


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse an SSE response into its JSON frames, checking each event carries its own `id:`
    (its sequence number) and the closing `done` none (it is not an event)."""
    frame_id = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            frame_id = int(line[4:])
        elif line.startswith("data: "):
            data = json.loads(line[6:])
            if data["type"] == "done":
                assert frame_id is None, "`done` has no id of its own"
            else:
                assert frame_id == data["seq"], "every event's id: is its sequence number"
            frame_id = None
            yield data
