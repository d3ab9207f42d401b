"""The WebSocket bridge: messages both ways, AgentCore's limits, close codes passed on.

A message over the frame limit, in either direction, closes both sides with 1009; a connection
older than the connection limit closes with 1008; otherwise whichever side closes first has its
code passed to the other (codes that cannot be sent, such as 1006, become 1011). Every message
resets the session's idle timer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import anyio
import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

from app.devtools.agentcore.config import EmulatorSettings
from app.devtools.agentcore.containers import Container

logger = logging.getLogger(__name__)

_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, *range(1007, 1015)})
_MAX_REASON_BYTES = 123


@dataclass(frozen=True)
class _Close:
    """How a bridged connection ended, and who ended it (that side is already closed)."""

    code: int
    reason: str
    by: Literal["browser", "container", "emulator"]


async def bridge(
    browser: WebSocket, upstream: ClientConnection, container: Container, settings: EmulatorSettings
) -> None:
    """Messages both ways until a side closes, a message is too big, or the connection is old."""
    ends: list[_Close] = []

    async def run(pump: Callable[[], Awaitable[_Close]]) -> None:
        ends.append(await pump())
        group.cancel_scope.cancel()

    async def to_container() -> _Close:
        return await _browser_to_container(browser, upstream, container, settings.frame_limit)

    async def to_browser() -> _Close:
        return await _container_to_browser(browser, upstream, container, settings.frame_limit)

    with anyio.move_on_after(settings.connection_limit_s):
        async with anyio.create_task_group() as group:
            group.start_soon(run, to_container)
            group.start_soon(run, to_browser)
    end = ends[0] if ends else _Close(1008, "connection lifetime exceeded", "emulator")
    code, reason = _sendable(end.code), _short(end.reason)
    if end.by != "browser":
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await browser.close(code, reason)
    if end.by != "container":
        await upstream.close(code, reason)
    logger.info("%s: WebSocket closed by the %s: %d %s", container.label, end.by, code, reason)


async def _browser_to_container(
    browser: WebSocket, upstream: ClientConnection, container: Container, limit: int
) -> _Close:
    while True:
        message = await browser.receive()
        if message["type"] == "websocket.disconnect":
            return _Close(message.get("code", 1005), message.get("reason") or "", "browser")
        text, data = message.get("text"), message.get("bytes")
        payload: str | bytes = text if text is not None else data or b""
        if _size(payload) > limit:
            return _Close(1009, "message too big", "emulator")
        container.touch()
        try:
            await upstream.send(payload)
        except websockets.ConnectionClosed:
            return _container_close(upstream)


async def _container_to_browser(
    browser: WebSocket, upstream: ClientConnection, container: Container, limit: int
) -> _Close:
    try:
        async for payload in upstream:
            if _size(payload) > limit:
                return _Close(1009, "message too big", "emulator")
            container.touch()
            if isinstance(payload, str):
                await browser.send_text(payload)
            else:
                await browser.send_bytes(payload)
    except websockets.ConnectionClosed:
        pass
    except WebSocketDisconnect as exc:
        return _Close(exc.code, exc.reason or "", "browser")
    return _container_close(upstream)


def _container_close(upstream: ClientConnection) -> _Close:
    return _Close(upstream.close_code or 1005, upstream.close_reason or "", "container")


def _size(payload: str | bytes) -> int:
    return len(payload.encode() if isinstance(payload, str) else payload)


def _sendable(code: int) -> int:
    """Codes that mean "no code" or "no close frame" cannot be sent on: 1000 and 1011 instead."""
    if code == 1005:
        return 1000
    return code if code in _SENDABLE_CODES or 3000 <= code <= 4999 else 1011


def _short(reason: str) -> str:
    return reason.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
