"""The local AgentCore Runtime: what a caller and a container notice of the runtime contract.

Each test drives the emulator over real sockets with a real Cognito token (moto), with
deploy/probe_app.py as the container, which reports what reached it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from app.devtools.agentcore import SESSION_HEADER, AgentCoreEmulator
from tests.cloud.conftest import (
    CognitoPool,
    StartEmulator,
    bearer_subprotocols,
    new_session_id,
)

CUSTOM_HEADER = "x-amzn-bedrock-agentcore-runtime-custom-"


def invoke(
    emulator: AgentCoreEmulator,
    token: str | None,
    session_id: str | None,
    payload: dict[str, Any] | None = None,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if session_id is not None:
        sent[SESSION_HEADER] = session_id
    url = emulator.url("invocations", **(query or {}))
    return httpx.post(url, json=payload or {}, headers=sent, timeout=30)


def report(emulator: AgentCoreEmulator, token: str, session_id: str, **payload: Any) -> Any:
    """The probe's report of one invocation (which must succeed)."""
    response = invoke(emulator, token, session_id, payload)
    assert response.status_code == 200, response.text
    return response.json()


def stop_session(emulator: AgentCoreEmulator, token: str | None, session_id: str) -> httpx.Response:
    headers = {SESSION_HEADER: session_id}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(emulator.url("stopruntimesession"), headers=headers, timeout=30)


async def open_ws(
    emulator: AgentCoreEmulator, token: str, session_id: str, **query: str
) -> ClientConnection:
    """A browser-like connection: session id in the query, token in the subprotocols."""
    return await websockets.connect(
        emulator.ws_url(session_id, **query),
        subprotocols=[Subprotocol(p) for p in bearer_subprotocols(token)],
        max_size=None,
        proxy=None,
        open_timeout=30,
    )


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- who gets in, and where ---


def test_callers_without_a_valid_token_of_an_allowed_client_get_401(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    claims = jwt.decode(cognito.access_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(cognito.access_token)["kid"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": kid})

    for token in (None, "not-a-jwt", cognito.other_access_token, forged):
        assert invoke(emulator, token, new_session_id()).status_code == 401
    assert emulator.starts == []  # refused before any container starts

    # Cognito ID tokens name the client in `aud` rather than `client_id`: also accepted.
    assert invoke(emulator, cognito.id_token, new_session_id()).status_code == 200


def test_only_agentcore_paths_exist(emulator: AgentCoreEmulator, cognito: CognitoPool) -> None:
    base, arn = emulator.base_url, quote(emulator.settings.runtime_arn, safe="")
    headers = {"Authorization": f"Bearer {cognito.access_token}", SESSION_HEADER: new_session_id()}
    for method, url in [
        ("GET", f"{base}/ping"),
        ("POST", f"{base}/invocations"),
        ("GET", f"{base}/runtimes/{arn}/ping"),
        ("POST", f"{base}/runtimes/{arn}/_event"),
        ("GET", f"{base}/runtimes/{arn}/invocations"),
        ("POST", f"{base}/runtimes/{arn}/invocations/"),
        ("POST", f"{base}/runtimes/{quote('arn:aws:other', safe='')}/invocations"),
        # The ARN must be URL-encoded: its "/" would otherwise split the path.
        ("POST", f"{base}/runtimes/{emulator.settings.runtime_arn}/invocations"),
    ]:
        assert httpx.request(method, url, headers=headers).status_code == 404, (method, url)
    assert emulator.starts == []


def test_session_id_is_required_and_33_to_256_characters(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    token = cognito.access_token
    for session_id in (None, "x" * 32, "x" * 257):
        assert invoke(emulator, token, session_id).status_code == 400
    assert invoke(emulator, token, "x" * 33).status_code == 200


# --- what reaches the container ---


def test_container_gets_session_token_and_custom_headers_but_no_other_headers_or_query(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    session_id = new_session_id()
    response = invoke(
        emulator,
        cognito.access_token,
        session_id,
        query={
            "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Trace": "abc",
            "EIO": "4",
            "qualifier": "DEFAULT",
        },
        headers={"X-Amzn-Bedrock-AgentCore-Runtime-Custom-Tab": "7", "Cookie": "a=b"},
    )
    assert response.status_code == 200
    assert response.headers[SESSION_HEADER] == session_id
    seen = response.json()
    assert seen["path"] == "/invocations"
    assert seen["session_id"] == session_id
    assert seen["query"] == ""
    names = set(seen["header_names"])
    assert {"authorization", CUSTOM_HEADER + "trace", CUSTOM_HEADER + "tab"} <= names
    assert "cookie" not in names


async def test_other_query_parameters_reach_the_container_only_with_forward_query(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator, session_id = start_emulator(forward_query=True), new_session_id()
    query = {
        "EIO": "4",
        "transport": "websocket",
        "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Trace": "abc",
        "qualifier": "DEFAULT",
    }
    seen = invoke(emulator, cognito.access_token, session_id, query=query).json()
    assert seen["query"] == "EIO=4&transport=websocket"
    assert CUSTOM_HEADER + "trace" in seen["header_names"]

    # engine.io's parameters on the socket too (the session id parameter became a header).
    async with await open_ws(emulator, cognito.access_token, session_id, **query) as ws:
        seen = json.loads(await ws.recv())
    assert seen["query"] == "EIO=4&transport=websocket"
    assert seen["session_id"] == session_id
    assert CUSTOM_HEADER + "trace" in seen["header_names"]


# --- WebSockets ---


async def test_websocket_authenticates_with_the_subprotocol_pair(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    session_id = new_session_id()
    async with await open_ws(emulator, cognito.access_token, session_id, EIO="4") as ws:
        assert ws.subprotocol == "base64UrlBearerAuthorization"
        seen = json.loads(await ws.recv())
        assert seen["path"] == "/ws"
        assert seen["session_id"] == session_id
        assert seen["query"] == ""  # forward_query is off
        assert "authorization" in seen["header_names"]
        assert seen["subprotocols"] == [
            "base64UrlBearerAuthorization.<redacted>",
            "base64UrlBearerAuthorization",
        ]
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"

    for token in ("not-a-jwt", cognito.other_access_token):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await open_ws(emulator, token, new_session_id())
        assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(emulator.ws_url(new_session_id()), proxy=None)
    assert refused.value.response.status_code == 401

    # Clients that can set headers may send the token and the session id as headers instead.
    headers = {"Authorization": f"Bearer {cognito.access_token}", SESSION_HEADER: session_id}
    async with await websockets.connect(
        emulator.ws_url(), additional_headers=headers, proxy=None
    ) as ws:
        assert ws.subprotocol is None
        seen = json.loads(await ws.recv())
        assert seen["session_id"] == session_id
        assert "authorization" in seen["header_names"]


async def test_websocket_message_over_the_frame_limit_closes_with_1009(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    session_id, limit = new_session_id(), emulator.settings.frame_limit
    async with await open_ws(emulator, cognito.access_token, session_id) as ws:
        await ws.recv()
        await ws.send(b"x" * limit)
        assert len(await ws.recv()) == limit
        await ws.send(b"x" * (limit + 1))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009

    # From the container's side too.
    async with await open_ws(emulator, cognito.access_token, session_id) as ws:
        await ws.recv()
        await ws.send(f"big:{limit + 1}")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009


async def test_container_close_codes_reach_the_browser(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    async with await open_ws(emulator, cognito.access_token, new_session_id()) as ws:
        await ws.recv()
        await ws.send("close:4001")
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4001


async def test_connection_older_than_the_limit_closes_with_1008(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator = start_emulator(connection_limit_s=2)
    async with await open_ws(emulator, cognito.access_token, new_session_id()) as ws:
        opened = time.monotonic()
        await ws.recv()
        with pytest.raises(websockets.ConnectionClosed):
            while True:  # busy all along: it is the age that counts, not idleness
                await ws.send("still here")
                await ws.recv()
                await asyncio.sleep(0.2)
        assert ws.close_code == 1008
        assert 1.8 < time.monotonic() - opened < 4


# --- session lifecycle ---


def test_idle_session_ends_and_its_id_gets_a_fresh_container_and_disk(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator, token, session_id = (
        start_emulator(idle_timeout_s=1.5),
        cognito.access_token,
        new_session_id(),
    )
    first = report(emulator, token, session_id, mark=True)
    assert first["data_dir_entries"] == []
    assert report(emulator, token, session_id)["data_dir_entries"] == ["marker"]

    wait_until(lambda: not Path(first["data_dir"]).exists(), 5, "the idle session's disk to go")
    assert process_gone(first["pid"])
    again = report(emulator, token, session_id)
    assert again["pid"] != first["pid"]
    assert again["data_dir_entries"] == []


def test_healthy_busy_keeps_a_session_past_its_idle_timeout(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator = start_emulator(idle_timeout_s=1, container_env={"PROBE_BUSY": "1"})
    token, session_id = cognito.access_token, new_session_id()
    pid = report(emulator, token, session_id)["pid"]
    time.sleep(2.5)
    assert report(emulator, token, session_id, busy=False)["pid"] == pid  # still there
    wait_until(lambda: process_gone(pid), 5, "the no longer busy session to end")


def test_maximum_lifetime_ends_even_a_busy_session(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator = start_emulator(max_lifetime_s=1.5, container_env={"PROBE_BUSY": "1"})
    token, session_id = cognito.access_token, new_session_id()
    pid = report(emulator, token, session_id)["pid"]
    wait_until(lambda: process_gone(pid), 5, "the session to reach its lifetime")
    assert report(emulator, token, session_id)["pid"] != pid


def test_stop_runtime_session_ends_the_session_now(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    token, session_id = cognito.access_token, new_session_id()
    first = report(emulator, token, session_id, mark=True)
    assert stop_session(emulator, None, session_id).status_code == 401

    stopped = stop_session(emulator, token, session_id)
    assert stopped.status_code == 200
    assert stopped.json()["runtimeSessionId"] == session_id
    assert process_gone(first["pid"])
    assert not Path(first["data_dir"]).exists()
    assert stop_session(emulator, token, session_id).status_code == 404  # nothing running

    again = report(emulator, token, session_id)
    assert again["pid"] != first["pid"]
    assert again["data_dir_entries"] == []


def test_emulator_shutdown_ends_every_session(
    start_emulator: StartEmulator, cognito: CognitoPool
) -> None:
    emulator = start_emulator()
    seen = [report(emulator, cognito.access_token, new_session_id()) for _ in range(2)]
    emulator.stop()
    for one in seen:
        assert process_gone(one["pid"])
        assert not Path(one["data_dir"]).exists()


async def test_concurrent_first_requests_start_one_container(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    session_id = new_session_id()
    headers = {"Authorization": f"Bearer {cognito.access_token}", SESSION_HEADER: session_id}
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post(emulator.url(), json={}, headers=headers) for _ in range(3))
        )
    assert len({r.json()["pid"] for r in responses}) == 1
    starts = [s for s in emulator.starts if s.session_id == session_id]
    assert len(starts) == 1
    assert 0 < starts[0].seconds < 30  # recorded for benches


def test_streamed_response_arrives_chunk_by_chunk(
    emulator: AgentCoreEmulator, cognito: CognitoPool
) -> None:
    headers = {"Authorization": f"Bearer {cognito.access_token}", SESSION_HEADER: new_session_id()}
    arrivals: list[float] = []
    payload = {"stream": 4, "delay": 0.4}
    with httpx.stream(
        "POST", emulator.url(), json=payload, headers=headers, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] > 1.0  # the first event came long before the body ended


# --- containers that do not start ---


def test_container_exiting_at_start_gives_424_and_its_output_in_the_log(
    start_emulator: StartEmulator, cognito: CognitoPool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.devtools.agentcore")
    command = (sys.executable, "-c", "print('no configuration found'); raise SystemExit(3)")
    emulator = start_emulator(container_command=command)
    assert invoke(emulator, cognito.access_token, new_session_id()).status_code == 424
    assert "no configuration found" in caplog.text
    assert "exited with code 3" in caplog.text


def test_container_not_healthy_in_time_gives_424_and_is_stopped(
    start_emulator: StartEmulator, cognito: CognitoPool, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    emulator = start_emulator(container_command=(sys.executable, "-c", script), start_timeout_s=1)
    response = invoke(emulator, cognito.access_token, new_session_id())
    assert response.status_code == 424
    assert "not healthy within" in response.json()["message"]
    assert process_gone(int(pid_file.read_text()))
