"""Test connection for a remote MCP server (SSE or streamable HTTP): the app says hello as the
CLI would (`initialize`, then `tools/list`) and reports the tools or what went wrong.

The app makes the request itself, so it obeys the same egress rules as the agents' proxy: the
user's allowlist (the app's AGENT_ALLOWED_HOSTS plus the user's own servers' hosts, public
addresses only) decides, and the connection goes to the very addresses the policy checked (no
second DNS lookup that could answer 127.0.0.1). Redirects are not followed, and an SSE server's
message endpoint must be on the same host and port.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from app.agent.mcp import HANDSHAKE_S, HELLO, McpTest
from app.errors import InvalidInput
from app.sandbox.policy import EgressPolicy, IPAddress, Refused

MAX_BODY = 1_000_000  # bytes of one answer: a tool list is far smaller
_ACCEPT = "application/json, text/event-stream"


class NotMcp(Exception):
    """The server answered, but not as an MCP server would."""


async def handshake_remote(config: dict[str, Any], policy: EgressPolicy) -> McpTest:
    """Say hello to the server at `config["url"]` (its header values opened) through
    `policy`; InvalidInput with a plain reason otherwise."""
    url: str = config["url"]
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or _default_port(parts.scheme)
    try:
        addresses = await policy.resolve(host, port)
    except Refused as error:
        raise InvalidInput(f"Refused: {error.message}") from None
    headers = {"accept": _ACCEPT, **config.get("headers", {})}
    try:
        with anyio.fail_after(HANDSHAKE_S):
            async with _client(host, port, addresses[0], headers) as client:
                if config["type"] == "sse":
                    return await _sse(client, url)
                return await _streamable(client, url)
    except TimeoutError:
        raise InvalidInput(f"The server did not answer within {HANDSHAKE_S:.0f} seconds.") from None
    except httpx.HTTPStatusError as error:
        status = error.response.status_code
        raise InvalidInput(f"The server answered HTTP {status}: not an MCP endpoint?") from None
    except httpx.TransportError as error:
        reason = str(error) or type(error).__name__
        raise InvalidInput(f"Could not connect to {host}:{port}: {reason}") from None
    except (NotMcp, ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"The server's answer is not MCP: {error}") from None


@asynccontextmanager
async def _client(
    host: str, port: int, address: IPAddress, headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    transport = _Pinned(host, port, address)
    async with httpx.AsyncClient(
        transport=transport, headers=headers, follow_redirects=False, trust_env=False
    ) as client:
        yield client


class _Pinned(httpx.AsyncBaseTransport):
    """Connects to the checked address only, for the server's own host and port only (TLS
    still verifies the certificate against the host name)."""

    def __init__(self, host: str, port: int, address: IPAddress) -> None:
        self.host, self.port, self.address = host, port, address
        self._inner = httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.host != self.host or (url.port or _default_port(url.scheme)) != self.port:
            raise NotMcp(f"it sent the app to another address ({url.host}:{url.port})")
        request.url = url.copy_with(host=str(self.address))
        request.extensions = {**request.extensions, "sni_hostname": self.host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


async def _streamable(client: httpx.AsyncClient, url: str) -> McpTest:
    """Streamable HTTP: one POST per message; answers as JSON or a short event stream."""
    hello, initialized, listing = HELLO
    answer, session = await _post(client, url, hello, {})
    server = _server_name(answer)
    version = str(answer["result"].get("protocolVersion", hello["params"]["protocolVersion"]))
    extra = {"mcp-protocol-version": version, **({"mcp-session-id": session} if session else {})}
    await _post(client, url, initialized, extra)
    tools, _ = await _post(client, url, listing, extra)
    return McpTest(server=server, tools=_tool_names(tools))


async def _post(
    client: httpx.AsyncClient, url: str, message: dict[str, Any], extra: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """Send one message; its answer (empty for a notification) and the session id."""
    async with client.stream("POST", url, json=message, headers=extra) as response:
        response.raise_for_status()
        session = response.headers.get("mcp-session-id", "")
        if "id" not in message:
            return {}, session
        kind = response.headers.get("content-type", "")
        if kind.startswith("text/event-stream"):
            async for event, data in _events(response):
                if event in ("", "message") and data:
                    reply = _checked(json.loads(data))
                    if reply.get("id") == message["id"]:
                        return reply, session
            raise NotMcp("its event stream ended without an answer")
        if kind.startswith("application/json"):
            return _checked(json.loads(await _body(response))), session
        raise NotMcp(f"it answered with {kind or 'no content type'!r}")


async def _sse(client: httpx.AsyncClient, url: str) -> McpTest:
    """The older SSE transport: a GET opens the event stream, whose first event names the
    endpoint that messages are POSTed to; answers arrive on the stream."""
    async with client.stream("GET", url, headers={"accept": "text/event-stream"}) as response:
        response.raise_for_status()
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise NotMcp("it did not open an event stream")
        events = _events(response)
        endpoint = ""
        async for event, data in events:
            if event == "endpoint":
                endpoint = urljoin(url, data.strip())
                break
        if not endpoint:
            raise NotMcp("its event stream named no message endpoint")
        for message in HELLO:
            posted = await client.post(endpoint, json=message)
            posted.raise_for_status()
        answers: dict[Any, dict[str, Any]] = {}
        async for event, data in events:
            if event == "message" and data:
                reply = _checked(json.loads(data))
                answers[reply.get("id")] = reply
                if 1 in answers and 2 in answers:
                    return McpTest(server=_server_name(answers[1]), tools=_tool_names(answers[2]))
        raise NotMcp("its event stream ended before it listed its tools")


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as (event name, data), at most MAX_BODY characters in all."""
    event, seen = "", 0
    data: list[str] = []
    async for line in response.aiter_lines():
        seen += len(line)
        if seen > MAX_BODY:
            raise NotMcp("its event stream is too long")
        if not line:
            if data or event:
                yield event, "\n".join(data)
            event, data = "", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


async def _body(response: httpx.Response) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            raise NotMcp("its answer is too long")
    return body


def _checked(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise NotMcp("it did not answer in JSON-RPC")
    if "error" in message:
        error = message["error"]
        said = error.get("message", "an error") if isinstance(error, dict) else error
        raise NotMcp(f"it answered with an error: {str(said)[:300]}")
    return message


def _server_name(answer: dict[str, Any]) -> str:
    return str(answer["result"].get("serverInfo", {}).get("name", ""))


def _tool_names(answer: dict[str, Any]) -> list[str]:
    return [str(tool.get("name", "")) for tool in answer["result"].get("tools", [])]
