"""Doors: one listening socket per live agent, the only thing its sandbox can connect to.

A request through a door is one of three things: `CONNECT host:port` (a tunnel through the
egress proxy), a plain `http://` request (forwarded by the proxy), or a model request under
`/s/<session token>/...` (relayed with the real credential). The door's token lives exactly as
long as the door, which the engine closes when the agent stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h11

from app.sandbox import proxy
from app.sandbox.policy import EgressPolicy, Entry
from app.sandbox.relay import ModelRelay, refuse_over_budget
from app.sandbox.usage import Budgets, Usage
from app.sandbox.wire import Wire

logger = logging.getLogger(__name__)

UsageRecorder = Callable[[str, str, Usage], Awaitable[None]]
# What the CLI is told (and shows as its turn's text); the engine then shows the amounts. No
# dollar signs: a pair of them in the CLI's text would render as math on the page.
_OVER_BUDGET = "Your monthly model budget is spent; ask your admin or raise it in Settings."


@dataclass
class Door:
    session_id: str
    user_id: str
    token: str
    server: asyncio.Server
    record: UsageRecorder
    socket_path: Path | None = None
    port: int | None = None
    connections: set[asyncio.Task[None]] = field(default_factory=set)
    relaying: int = 0  # model requests in flight
    quiet: asyncio.Event = field(default_factory=asyncio.Event)
    refused: str | None = None  # why the budget stopped a model request (until taken)
    policy: EgressPolicy | None = None  # the app's allowlist and the user's own hosts


class Gateway:
    def __init__(self, policy: EgressPolicy, relay: ModelRelay) -> None:
        self.policy = policy
        self.relay = relay
        self._doors: dict[str, Door] = {}
        # Each user's monthly budget, checked before a model request goes out (None: none).
        self.budgets: Budgets | None = None
        # Hosts a user's own settings add for their agents (their remote MCP servers): as
        # the built-in entries, public addresses only. Read when a door opens.
        self.user_hosts: Callable[[str], Sequence[Entry]] | None = None

    async def open(
        self, session_id: str, user_id: str, socket_path: Path | None, record: UsageRecorder
    ) -> Door:
        """A new door for the session: a unix socket at `socket_path` (for a sandbox that binds
        it in), or a loopback TCP port when agents run without a sandbox. `record` receives
        the usage of each model request relayed through it."""
        await self.close(session_id)
        door_ref: list[Door] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(door_ref[0], reader, writer)

        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path)
            server = await asyncio.start_unix_server(serve, path=str(socket_path))
            os.chmod(socket_path, 0o666)  # the agent's own uid connects; only its jail sees it
            door = Door(session_id, user_id, _token(), server, record, socket_path)
        else:
            server = await asyncio.start_server(serve, host="127.0.0.1", port=0)
            port = int(server.sockets[0].getsockname()[1])
            door = Door(session_id, user_id, _token(), server, record, port=port)
        door.policy = await self.policy_for(user_id)
        door_ref.append(door)
        self._doors[session_id] = door
        return door

    async def policy_for(self, user_id: str) -> EgressPolicy:
        """The admin's allowlist and the hosts of the user's own remote MCP servers."""
        if self.user_hosts is None:
            return self.policy
        extra = await asyncio.to_thread(self.user_hosts, user_id)
        return self.policy.with_entries(extra) if extra else self.policy

    async def close(self, session_id: str) -> None:
        """Shut the session's door: its token stops working and open streams end."""
        door = self._doors.pop(session_id, None)
        if door is None:
            return
        door.server.close()
        for task in list(door.connections):
            task.cancel()
        await asyncio.gather(*door.connections, return_exceptions=True)
        if door.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(door.socket_path)

    async def close_all(self) -> None:
        for session_id in list(self._doors):
            await self.close(session_id)
        await self.relay.close()

    def door(self, session_id: str) -> Door | None:
        return self._doors.get(session_id)

    def take_refusal(self, session_id: str) -> str | None:
        """Why the budget refused this session's model request since last asked, if it did:
        the engine ends the turn with this instead of the CLI's retelling of it."""
        door = self._doors.get(session_id)
        if door is None:
            return None
        refused, door.refused = door.refused, None
        return refused

    async def settled(self, session_id: str, timeout: float) -> None:
        """Wait (at most `timeout`) until the session's model requests are all counted: a turn
        can end while the relay still reads the end of its last request."""
        door = self._doors.get(session_id)
        if door is not None and door.relaying:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(door.quiet.wait(), timeout)

    async def _serve(
        self, door: Door, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        door.connections.add(task)
        wire = Wire(reader, writer)
        try:
            while await self._one_request(door, wire):
                wire.conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the door closed: this connection task ends here, quietly
        finally:
            door.connections.discard(task)
            await wire.close()

    async def _one_request(self, door: Door, wire: Wire) -> bool:
        """Handle one request; True when the connection can carry another."""
        event = await wire.next_event()
        if not isinstance(event, h11.Request):
            return False
        target = event.target.decode("latin-1")
        if event.method == b"CONNECT":
            await proxy.tunnel(door.policy or self.policy, wire, target, door.session_id)
            return False
        if "://" in target:
            await proxy.forward(door.policy or self.policy, wire, event, door.session_id)
            return False
        path = self._relay_path(door, target)
        if path is None:
            await wire.respond_json(
                401,
                {
                    "type": "error",
                    "error": {
                        "type": "authentication_error",
                        "message": "This session's relay token is not valid (the session ended?).",
                    },
                },
            )
            return False

        if self.budgets is not None and event.method == b"POST":
            refusal = await self.budgets.refusal(door.user_id)
            if refusal is not None:
                door.refused = refusal
                logger.info("session %s: monthly budget spent, request refused", door.session_id)
                return await refuse_over_budget(wire, _OVER_BUDGET)

        async def record(usage: Usage) -> None:
            await door.record(door.session_id, door.user_id, usage)
            if self.budgets is not None:
                self.budgets.add(door.user_id, usage.cost_usd())

        door.relaying += 1
        door.quiet.clear()
        try:
            await self.relay.handle(wire, event, path, record)
        finally:
            door.relaying -= 1
            if not door.relaying:
                door.quiet.set()
        return wire.conn.our_state is h11.DONE and wire.conn.their_state is h11.DONE

    def _relay_path(self, door: Door, target: str) -> str | None:
        """`/s/<token>/rest` -> `/rest` when the token is this door's; None otherwise."""
        if not target.startswith("/s/"):
            return None
        token, _, rest = target[3:].partition("/")
        if not hmac.compare_digest(token.encode(), door.token.encode()):
            return None
        return "/" + rest


def _token() -> str:
    return secrets.token_urlsafe(32)
