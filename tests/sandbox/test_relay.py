"""The model relay behind a door: the credential is added outside, the stream is not held back,
usage is counted from the API's own fields, and the token dies with its door."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from app.agent.schemas import NewSession
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario
from app.sandbox.gateway import Door, Gateway
from app.sandbox.policy import EgressPolicy
from app.sandbox.relay import ModelRelay, Upstream
from app.sandbox.usage import Usage
from tests.agent.helpers import Follower, say
from tests.conftest import ensure_user, new_engine
from tests.sandbox.helpers import SSE_HEAD, read_request, sse

REAL_KEY = "sk-real-upstream-key"


def bedrock_text(body: bytes) -> str:
    """The answer's text, decoded from Bedrock's event-stream frames."""
    frames = EventStreamBuffer()
    frames.add_data(body)
    events = [json.loads(base64.b64decode(json.loads(f.payload)["bytes"])) for f in frames]
    return "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")


@dataclass
class HeldStream:
    """An upstream that sends `message_start`, then waits for `release` before the rest."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    heads: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.heads.append(await read_request(reader))
        writer.write(SSE_HEAD)
        start = {"model": "claude-sonnet-4-5", "usage": {"input_tokens": 1200, "output_tokens": 1}}
        writer.write(sse({"type": "message_start", "message": start}))
        await writer.drain()
        await self.release.wait()
        for text in ("Hel", "lo"):
            delta = {"type": "text_delta", "text": text}
            writer.write(sse({"type": "content_block_delta", "index": 0, "delta": delta}))
        writer.write(sse({"type": "message_delta", "usage": {"output_tokens": 3400}}))
        writer.write(sse({"type": "message_stop"}))
        await writer.drain()
        writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[HeldStream]:
    held = HeldStream()
    server = await asyncio.start_server(held.handle, "127.0.0.1", 0)
    held.port = server.sockets[0].getsockname()[1]
    yield held
    held.release.set()
    server.close()


async def open_door(upstream: Upstream) -> tuple[Gateway, Door, list[Usage]]:
    recorded: list[Usage] = []

    async def record(_session: str, _user: str, usage: Usage) -> None:
        recorded.append(usage)

    gateway = Gateway(EgressPolicy(()), ModelRelay(upstream))
    door = await gateway.open("session-1", "user-1", None, record)
    return gateway, door, recorded


async def test_the_stream_passes_through_as_it_arrives(upstream: HeldStream) -> None:
    gateway, door, recorded = await open_door(
        Upstream(kind="anthropic", base_url=f"http://127.0.0.1:{upstream.port}", api_key=REAL_KEY)
    )
    url = f"http://127.0.0.1:{door.port}/s/{door.token}/v1/messages?beta=true"
    try:
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("POST", url, json={"stream": True}) as response,
        ):
            assert response.status_code == 200
            chunks = response.aiter_raw()
            # The upstream holds the rest back until this first event has arrived.
            first = await asyncio.wait_for(anext(chunks), 5)
            assert b"message_start" in first
            upstream.release.set()
            rest = b"".join([chunk async for chunk in chunks])
        assert b'"text": "lo"' in rest and b"message_stop" in rest
        assert len(recorded) == 1
        usage = recorded[0]
        assert (usage.model, usage.input_tokens, usage.output_tokens) == (
            "claude-sonnet-4-5",
            1200,
            3400,
        )
        assert usage.cost_usd() == pytest.approx((1200 * 3 + 3400 * 15) / 1_000_000)
    finally:
        await gateway.close_all()


async def test_the_real_credential_is_added_and_the_agents_dropped(upstream: HeldStream) -> None:
    upstream.release.set()
    gateway, door, _ = await open_door(
        Upstream(kind="anthropic", base_url=f"http://127.0.0.1:{upstream.port}", api_key=REAL_KEY)
    )
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"http://127.0.0.1:{door.port}/s/{door.token}/v1/messages",
                json={"stream": True},
                headers={"x-api-key": door.token, "authorization": "Bearer agent-chosen"},
            )
        assert response.status_code == 200
        head = upstream.heads[-1].decode().lower()
        assert f"x-api-key: {REAL_KEY}" in head
        assert door.token.lower() not in head, "the session token never leaves the app"
        assert "agent-chosen" not in head
    finally:
        await gateway.close_all()


async def test_wrong_tokens_other_paths_and_closed_doors_are_refused(
    upstream: HeldStream,
) -> None:
    upstream.release.set()
    gateway, door, _ = await open_door(
        Upstream(kind="anthropic", base_url=f"http://127.0.0.1:{upstream.port}", api_key=REAL_KEY)
    )
    base = f"http://127.0.0.1:{door.port}"
    async with httpx.AsyncClient(timeout=10) as client:
        for path in ("/v1/messages", f"/s/{door.token[:-1]}x/v1/messages", "/s//v1/messages"):
            response = await client.post(base + path, json={})
            assert response.status_code == 401, path
            assert response.json()["error"]["type"] == "authentication_error"
        for path in ("/v2/admin", "/v1/../admin", "/v1/%2e%2e/admin"):
            response = await client.post(f"{base}/s/{door.token}{path}", json={})
            assert response.status_code == 404, path
        await gateway.close("session-1")
        with pytest.raises(httpx.ConnectError):
            await client.post(f"{base}/s/{door.token}/v1/messages", json={})
    assert upstream.heads == []
    await gateway.close_all()


async def test_bedrock_requests_are_signed_and_metered() -> None:
    credentials = Credentials("AKIDRELAYTEST", "relay-test-secret-key")
    server = ModelServer(load_scenario(SCENARIOS_DIR / "test.json"), aws_credentials=credentials)
    server.start()
    try:
        gateway, door, recorded = await open_door(
            Upstream(
                kind="bedrock",
                base_url=server.base_url,
                control_url=server.base_url,
                region="eu-west-1",
                aws_credentials=credentials,
            )
        )
        model = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
        relay = f"http://127.0.0.1:{door.port}/s/{door.token}"
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "tools": [{"name": "Bash", "description": "", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "echo over bedrock"}]}
            ],
        }
        async with httpx.AsyncClient(timeout=30) as client:
            profiles = await client.get(f"{relay}/inference-profiles?type=SYSTEM_DEFINED")
            assert profiles.status_code == 200, profiles.text
            answer = await client.post(
                f"{relay}/model/{model.replace(':', '%3A')}/invoke-with-response-stream",
                json=body,
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/vnd.amazon.eventstream"
            # A relay that forgot to sign (or signed for another key) is refused upstream.
            unsigned = await client.post(
                f"{server.base_url}/model/{model}/invoke-with-response-stream", json=body
            )
            assert unsigned.status_code == 403
        assert bedrock_text(answer.content) == "You said: over bedrock"
        assert len(recorded) == 1 and recorded[0].model == model
        assert recorded[0].output_tokens > 0 and recorded[0].cost_usd() > 0
        await gateway.close_all()
    finally:
        server.stop()


async def test_an_agent_talks_to_bedrock_through_the_signing_relay(
    tmp_path: Path, store: Store
) -> None:
    """The real CLI in Bedrock mode, in its jail, holding no AWS credential: the relay signs."""
    credentials = Credentials("AKIDAGENTTEST", "agent-test-secret-key")
    server = ModelServer(load_scenario(SCENARIOS_DIR / "test.json"), aws_credentials=credentials)
    server.start()
    upstream = Upstream(
        kind="bedrock",
        base_url=server.base_url,
        control_url=server.base_url,
        region="us-west-2",
        aws_credentials=credentials,
    )
    engine = new_engine(tmp_path, store, server, upstream=upstream)
    await engine.start()
    try:
        user_id = ensure_user(store, "ann@example.com").id
        session = await engine.create(user_id, NewSession(permission_mode="bypassPermissions"))
        follow = await Follower.start(engine, user_id, session.session_id)
        await say(engine, user_id, session.session_id, "run bash env | grep -c AKIDAGENTTEST")
        await follow.turn_end()
        assert follow.of("tool_result")[-1]["content"].strip() == "0"
        assert follow.text().startswith("Output: 0")
        assert any(r.get("anthropic_version", "").startswith("bedrock") for r in server.requests)
        assert all(
            h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDAGENTTEST/")
            for h in server.request_headers
        )
        assert follow.of("usage")[-1]["cost_usd"] > 0
    finally:
        await engine.shutdown()
        server.stop()
