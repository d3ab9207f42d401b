"""`python -m app.container` as AgentCore runs it: only the contract's three paths answer, and
`/ws` carries both the JSON operations and the page's Reflex socket, whether or not AgentCore
passes the socket's own query string on. Real process, real sockets."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[2]
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
REFLEX_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATA_DIR": str(tmp_path_factory.mktemp("container-disk")),
        "DEMO_MODEL": "on",
    }
    for key in ("DATABASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "S3_BUCKET"):
        env.pop(key, None)
    log = tmp_path_factory.mktemp("container-log") / "container.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.container"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ok(url + "/ping"):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        proc.kill()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def _request(url: str, body: dict[str, Any] | None = None, token: str = "") -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return int(answer.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _invoke(url: str, path: str, method: str = "GET", payload: Any = None, token: str = "") -> Any:
    status, body = _request(
        url + "/invocations", {"path": path, "method": method, "payload": payload}, token
    )
    assert status < 300, (status, body)
    return body


def _sign_up(url: str, email: str) -> str:
    credentials = {"email": email, "password": "correct horse battery"}
    _invoke(url, "/auth/local/signup", "POST", credentials)
    return str(_invoke(url, "/auth/local/token", "POST", credentials)["access_token"])


def _bearer_protocols(token: str) -> list[str]:
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return [f"base64UrlBearerAuthorization.{encoded}", "base64UrlBearerAuthorization"]


def _page_socket(url: str, token: str, runtime_session: str, query: str = "") -> ClientConnection:
    """The page's Reflex socket as AgentCore hands it over: token in the subprotocols, the
    tab's Reflex token and the runtime session in headers, the query maybe gone."""
    return connect(
        url.replace("http", "ws") + "/ws" + query,
        subprotocols=_bearer_protocols(token),  # type: ignore[arg-type]
        additional_headers={SESSION_HEADER: runtime_session, REFLEX_HEADER: str(uuid.uuid4())},
        open_timeout=10,
    )


def _runtime_session() -> str:
    return f"workspace-{uuid.uuid4()}"  # 46 characters: AgentCore wants 33 or more


def test_only_the_contract_answers(container: str) -> None:
    for path in ("/_health", "/sessions", "/docs", "/openapi.json", "/", "/_upload", "/login"):
        status, body = _request(container + path)
        assert status == 404, path
        assert "/invocations, /ping, /ws" in body
    status, ping = _request(container + "/ping")
    assert status == 200 and ping["status"] == "Healthy"
    for path in ("/_event/?EIO=4&transport=websocket", "/sessions"):
        with pytest.raises(InvalidStatus) as refused:
            connect(container.replace("http", "ws") + path, open_timeout=10)
        assert refused.value.response.status_code == 404


@pytest.mark.parametrize("query", ["", "?EIO=4&transport=websocket&token=t1"])
def test_the_page_socket_reaches_reflex_with_or_without_the_query(
    container: str, query: str
) -> None:
    token = _sign_up(container, f"page-{uuid.uuid4().hex[:6]}@example.com")
    with _page_socket(container, token, _runtime_session(), query) as ws:
        assert ws.subprotocol == "base64UrlBearerAuthorization"
        opened = str(ws.recv(timeout=10))
        assert opened.startswith("0{") and '"sid"' in opened  # engine.io's open packet
        ws.send("40/_event,")
        joined = str(ws.recv(timeout=10))
        assert joined.startswith("40/_event,{") and '"sid"' in joined  # Reflex's namespace


def test_the_page_socket_needs_a_token_and_the_runtime_sessions_owner(container: str) -> None:
    runtime = _runtime_session()
    with pytest.raises(InvalidStatus) as refused:
        connect(
            container.replace("http", "ws") + "/ws?EIO=4&transport=websocket",
            additional_headers={SESSION_HEADER: runtime},
            open_timeout=10,
        )
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as refused:
        _page_socket(container, "not-a-token", runtime)
    assert refused.value.response.status_code == 401

    owner = _sign_up(container, f"owner-{uuid.uuid4().hex[:6]}@example.com")
    other = _sign_up(container, f"other-{uuid.uuid4().hex[:6]}@example.com")
    with _page_socket(container, owner, runtime) as ws:
        assert str(ws.recv(timeout=10)).startswith("0{")
    with pytest.raises(InvalidStatus) as refused:
        _page_socket(container, other, runtime)
    assert refused.value.response.status_code == 403
    assert b"belongs to another user" in (refused.value.response.body or b"")
    with _page_socket(container, owner, runtime) as ws:  # the owner again: still welcome
        assert str(ws.recv(timeout=10)).startswith("0{")


def test_the_json_socket_still_works_on_ws(container: str) -> None:
    token = _sign_up(container, f"json-{uuid.uuid4().hex[:6]}@example.com")
    with connect(
        container.replace("http", "ws") + "/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"id": 1, "op": "create"}))
        created = json.loads(ws.recv(timeout=30))
        assert created["ok"], created
        ws.send(json.dumps({"id": 2, "op": "list"}))
        listed = json.loads(ws.recv(timeout=10))
        assert [s["session_id"] for s in listed["result"]["sessions"]] == [
            created["result"]["session_id"]
        ]
    with connect(
        container.replace("http", "ws") + "/ws",
        subprotocols=_bearer_protocols(token),  # type: ignore[arg-type]
        open_timeout=10,
    ) as ws:  # AgentCore's browser form works for programs too
        ws.send(json.dumps({"id": 1, "op": "list"}))
        assert json.loads(ws.recv(timeout=10))["ok"]
