"""The egress proxy behind each door: CONNECT tunnels (HTTPS, git, package managers) and plain
HTTP requests in absolute form, to destinations the policy allows, connecting only to the
addresses it checked (no second DNS lookup that could answer differently)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import h11

from app.sandbox.policy import EgressPolicy, IPAddress, Refused
from app.sandbox.wire import Wire, forwardable, pump

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0


async def tunnel(policy: EgressPolicy, wire: Wire, target: str, session_id: str) -> None:
    """Answer `CONNECT host:port` and splice the two sockets together."""
    host, _, port_text = target.rpartition(":")
    upstream = await _open(policy, wire, host.strip("[]"), _port(port_text), session_id)
    if upstream is None:
        return
    reader, writer = upstream
    await wire.send(h11.Response(status_code=200, headers=[], reason=b"Connection established"))
    if early := wire.leftover():
        writer.write(early)
    await _splice(wire, reader, writer)


async def forward(policy: EgressPolicy, wire: Wire, request: h11.Request, session_id: str) -> None:
    """Send one plain-HTTP request (absolute-form target) on, and stream the answer back."""
    url = urlsplit(request.target.decode("latin-1"))
    if url.scheme != "http" or not url.hostname:
        await wire.respond(400, b"Use CONNECT for HTTPS; plain requests need an http:// URL.\n")
        return
    upstream = await _open(policy, wire, url.hostname, url.port or 80, session_id)
    if upstream is None:
        return
    reader, writer = upstream
    client = h11.Connection(h11.CLIENT)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = [*forwardable(request.headers, frozenset()), (b"connection", b"close")]
    writer.write(client.send(h11.Request(method=request.method, target=path, headers=headers)))
    while True:
        event = await wire.next_event()
        if isinstance(event, h11.Data):
            writer.write(client.send(h11.Data(data=event.data)))
        elif isinstance(event, h11.EndOfMessage):
            writer.write(client.send(h11.EndOfMessage()) or b"")
            break
        else:
            break
    await writer.drain()
    # The answer goes back byte for byte; `connection: close` ends it.
    await pump(reader, wire.writer)
    writer.close()


async def _open(
    policy: EgressPolicy, wire: Wire, host: str, port: int, session_id: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        addresses = await policy.resolve(host, port)
    except Refused as refused:
        logger.info("session %s: refused %s:%s: %s", session_id, host, port, refused.message)
        await wire.respond(403, f"agent-web sandbox: {refused.message}\n".encode())
        return None
    error: OSError | None = None
    for address in addresses:
        try:
            return await asyncio.wait_for(_connect(address, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            error = exc if isinstance(exc, OSError) else OSError("timed out")
    await wire.respond(
        502, f"agent-web sandbox: could not connect to {host}:{port}: {error}\n".encode()
    )
    return None


async def _connect(
    address: IPAddress, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(str(address), port)


async def _splice(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tasks = [
        asyncio.create_task(pump(wire.reader, writer)),
        asyncio.create_task(pump(reader, wire.writer)),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _port(text: str) -> int:
    return int(text) if text.isdigit() else 0
