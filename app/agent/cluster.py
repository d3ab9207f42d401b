"""More than one app instance: processes (behind one proxy, on one machine or several) that
share the database, the data folders (or S3) and one Redis (`CLUSTER_REDIS_URL`).

Each user's agents live on one instance, the user's *home*; every instance serves any user's
page and API:

- what needs the user's live agents (start, send, answer, interrupt, whether one runs, ...)
  runs on the home: the engine's own method is called there through Redis (a request list per
  instance, a reply list per call), its typed arguments and result carried as JSON;
- the home appends each session's events to a Redis stream too (entry id: the event's
  number), so a reader on any instance follows a session from any number, nothing twice;
- the first instance to serve a user claims them, and stays their home while its heartbeat
  lives. An instance that stops, even killed in the middle of a turn, is gone within ALIVE_S:
  the next instance to serve one of its users (or its watchdog, within a few seconds) takes
  them over, ends their running turns as interrupted and says so in their events; their
  agents start again there on the next prompt, resuming from the transcripts.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any, get_type_hints

import redis.asyncio as aioredis
from pydantic import TypeAdapter

from app import errors
from app.agent.engine import AgentEngine
from app.agent.events import Event
from app.agent.journal import Follower
from app.agent.schemas import ResumeInfo
from app.agent.stream import QUICK_SHARE
from app.errors import AgentFailed, AppError

logger = logging.getLogger(__name__)

PREFIX = "agent-web"
HEARTBEAT_S = 1.0
ALIVE_S = 10.0  # an instance not heard from for this long is gone
WATCH_S = 2.0  # how often an instance looks for users whose home is gone
STREAM_KEEP = 20_000  # about this many events are kept per session stream
STREAM_TTL_S = 7 * 24 * 3600
HOME_TTL_S = 7 * 24 * 3600  # a home claim lapses after this; renewed while agents run
GONE = (
    "The app instance running this agent stopped in the middle of its turn. What the agent "
    "did until then is kept; send a message to go on."
)

# The engine's operations that need the user's live agents, or say whether they run.
ROUTED = (
    "create",
    "warm",
    "fork",
    "get",
    "list_sessions",
    "live_sessions",
    "rename",
    "close",
    "close_all",
    "delete",
    "send",
    "interrupt",
    "set_mode",
    "set_model",
    "status",
    "pending",
    "answer",
    "restart_workspace",
    "rewind_preview",
    "rewind",
    "turn_ids",
    "resume_info",
    "open_terminal",
    "terminal_output",
    "terminal_input",
    "terminal_resize",
    "close_terminal",
)

# Claim a key if it still holds what was read ("" for nothing).
_SWAP = """
local now = redis.call('GET', KEYS[1])
if (now == false and ARGV[1] == '') or now == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


class Codec:
    """One engine operation's arguments and result as JSON, from its own type hints."""

    def __init__(self, name: str) -> None:
        function = getattr(AgentEngine, name)
        hints = get_type_hints(function)
        self.params = [p for p in inspect.signature(function).parameters if p != "self"]
        self.args = {p: TypeAdapter(hints[p]) for p in self.params}
        self.result: TypeAdapter[Any] = TypeAdapter(hints["return"])

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = {**dict(zip(self.params, args, strict=False)), **kwargs}
        return {k: self.args[k].dump_python(v, mode="json") for k, v in bound.items()}

    def decode(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {k: self.args[k].validate_python(v) for k, v in raw.items() if k in self.args}


class Cluster:
    def __init__(self, url: str) -> None:
        self.redis = aioredis.from_url(url, decode_responses=True)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.codecs = {name: Codec(name) for name in ROUTED}
        self.engine: ClusteredEngine | None = None
        self._swap = self.redis.register_script(_SWAP)
        self._outbox: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._calls: set[asyncio.Task[None]] = set()  # calls being answered here

    def key(self, *parts: str) -> str:
        return ":".join((PREFIX, *parts))

    async def start(self, engine: ClusteredEngine) -> None:
        self.engine = engine
        engine.journal.listeners.append(lambda sid, event: self._outbox.put_nowait((sid, event)))
        await self._beat()
        for loop in (self._beating, self._serving, self._publishing, self._watching):
            self._tasks.append(asyncio.create_task(loop(), name=f"cluster-{loop.__name__}"))

    async def stop(self) -> None:
        """After the engine stopped its agents: their last events go out, then this instance
        is gone at once for the others (no wait for its heartbeat to lapse)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._publish_waiting()
        await self.redis.delete(self.key("instance", self.id))
        await self.redis.aclose()

    # --- homes --------------------------------------------------------------------------

    async def home_of(self, user_id: str) -> str:
        """The instance holding the user's agents; this one if none (alive) does."""
        key = self.key("home", user_id)
        while True:
            current = await self.redis.get(key)
            if current == self.id or (current and await self.alive(current)):
                return str(current)
            if await self._swap(keys=[key], args=[current or "", self.id, int(HOME_TTL_S)]):
                if current:
                    await self._take_over(user_id, current)
                return self.id

    async def alive(self, instance: str) -> bool:
        return bool(await self.redis.exists(self.key("instance", instance)))

    async def _take_over(self, user_id: str, gone: str) -> None:
        """The user's home `gone` stopped: the turns it was running end, and say why."""
        assert self.engine is not None
        engine = self.engine
        ids = await asyncio.to_thread(engine.store.mark_unfinished_sessions, user_id, GONE)
        logger.warning("took over user %s from %s: %d turns cut short", user_id, gone, len(ids))
        for session_id in ids:
            await asyncio.to_thread(engine.store.mark_lost_approvals, session_id)
            engine.journal.emit(session_id, "error", {"kind": "agent_failed", "message": GONE})
            engine.journal.emit(session_id, "turn_end", {"status": "interrupted"})
            engine.journal.tell_status(session_id, "interrupted", live=False, error=GONE)

    async def _watching(self) -> None:
        """Users whose home is gone are taken over here, so readers elsewhere hear of it
        without waiting for that user's next request."""
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                async for key in self.redis.scan_iter(match=self.key("home", "*"), count=500):
                    home = await self.redis.get(key)
                    if home and home != self.id and not await self.alive(home):
                        await self.home_of(key.rsplit(":", 1)[1])
            except Exception:
                logger.exception("cluster watchdog")

    async def _beat(self) -> None:
        await self.redis.set(self.key("instance", self.id), "1", px=int(ALIVE_S * 1000))

    async def _beating(self) -> None:
        """The heartbeat. The homes of users whose agents run here do not lapse; and if one
        was taken over all the same (this instance stalled past ALIVE_S), its agents here
        stop: a user's agents run in one place only."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._beat()
                assert self.engine is not None
                users = {live.user_id for live in list(self.engine.pool.live.values())}
                for user_id in users:
                    key = self.key("home", user_id)
                    if await self.redis.get(key) == self.id:
                        await self.redis.expire(key, int(HOME_TTL_S))
                        continue
                    logger.warning("user %s was taken over: stopping their agents here", user_id)
                    await AgentEngine.close_all(self.engine, user_id)
            except Exception:
                logger.exception("cluster heartbeat")

    # --- calls ----------------------------------------------------------------------------

    async def call(
        self, home: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The engine operation `name` run on `home`; its result, or the AppError it raised.
        If `home` stops meanwhile, AgentFailed says so (the next try goes to the new home)."""
        codec = self.codecs[name]
        call_id = secrets.token_hex(12)
        request = {"id": call_id, "op": name, "args": codec.encode(args, kwargs)}
        reply_key = self.key("reply", call_id)
        await self.redis.lpush(self.key("calls", home), json.dumps(request))  # type: ignore[misc]
        while True:
            reply = await self.redis.blpop([reply_key], timeout=HEARTBEAT_S)  # type: ignore[misc]
            if reply is not None:
                break
            if not await self.alive(home):
                raise AgentFailed(
                    "The app instance running your agents stopped; try again in a moment."
                )
        answer = json.loads(reply[1])
        if "error" in answer:
            kind = getattr(errors, answer["error"]["kind"], AppError)
            if not (isinstance(kind, type) and issubclass(kind, AppError)):
                kind = AppError
            raise kind(answer["error"]["message"])
        return codec.result.validate_python(answer["result"])

    async def _serving(self) -> None:
        queue = self.key("calls", self.id)
        while True:
            try:
                item = await self.redis.blpop([queue], timeout=5)  # type: ignore[misc]
            except Exception:
                logger.exception("cluster calls")
                await asyncio.sleep(1)
                continue
            if item is not None:
                task = asyncio.create_task(self._answer(json.loads(item[1])))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _answer(self, request: dict[str, Any]) -> None:
        assert self.engine is not None
        codec = self.codecs[request["op"]]
        answer: dict[str, Any]
        try:
            local = getattr(AgentEngine, request["op"])
            result = await local(self.engine, **codec.decode(request["args"]))
            answer = {"result": codec.result.dump_python(result, mode="json")}
        except AppError as error:
            answer = {"error": {"kind": type(error).__name__, "message": error.message}}
        except Exception as error:
            logger.exception("cluster call %s", request["op"])
            answer = {"error": {"kind": "AgentFailed", "message": f"Failed here: {error}"}}
        reply_key = self.key("reply", request["id"])
        await self.redis.rpush(reply_key, json.dumps(answer))  # type: ignore[misc]
        await self.redis.expire(reply_key, 60)

    # --- events ---------------------------------------------------------------------------

    async def _publishing(self) -> None:
        while True:
            first = await self._outbox.get()
            await self._publish_waiting([first])

    async def _publish_waiting(self, batch: list[tuple[str, Event]] | None = None) -> None:
        """Everything appended so far, in one round trip."""
        batch = batch or []
        while not self._outbox.empty():
            batch.append(self._outbox.get_nowait())
        if not batch:
            return
        pipe = self.redis.pipeline(transaction=False)
        for session_id, event in batch:
            key = self.key("events", session_id)
            raw = {"seq": event.seq, "type": event.type, "ts": event.ts, "data": event.data}
            fields: dict[Any, Any] = {"e": json.dumps(raw)}
            pipe.xadd(key, fields, id=f"{event.seq}-0", maxlen=STREAM_KEEP, approximate=True)
            pipe.expire(key, STREAM_TTL_S)
        try:
            await pipe.execute(raise_on_error=False)
        except Exception:
            logger.exception("cluster events: %d not published", len(batch))

    def stream(self, session_id: str, last_seq: int) -> StreamLog:
        return StreamLog(self, session_id, last_seq)


class StreamLog:
    """A session's events as another instance appends them: what `Follower` reads."""

    def __init__(self, cluster: Cluster, session_id: str, last_seq: int) -> None:
        self.cluster = cluster
        self.key = cluster.key("events", session_id)
        self.last_seq = last_seq

    async def _read(self, after: int) -> list[Event]:
        answer = await self.cluster.redis.xread({self.key: f"{after}-0"}, count=1000, block=5000)
        events = []
        for _key, entries in answer or []:
            for _id, fields in entries:
                raw = json.loads(fields["e"])
                events.append(Event(raw["seq"], raw["type"], raw["data"], raw["ts"]))
        return events

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        async for batch in self.follow_batches(after, 0.0):
            for event in batch:
                yield event

    async def follow_batches(
        self, after: int = 0, interval: float = 0.05
    ) -> AsyncIterator[list[Event]]:
        """What is there at once, then as it comes (each read takes all that is waiting, so a
        flood arrives in large batches by itself)."""
        position = after
        while True:
            batch = await self._read(position)
            if batch:
                position = batch[-1].seq
                self.last_seq = max(self.last_seq, position)
                yield batch
                await asyncio.sleep(interval / QUICK_SHARE)


def _routed(name: str) -> Any:
    local = getattr(AgentEngine, name)

    async def operation(self: ClusteredEngine, user_id: str, *args: Any, **kwargs: Any) -> Any:
        home = await self.cluster.home_of(user_id)
        if home == self.cluster.id:
            return await local(self, user_id, *args, **kwargs)
        return await self.cluster.call(home, name, (user_id, *args), kwargs)

    operation.__name__ = name
    operation.__doc__ = local.__doc__
    return operation


class ClusteredEngine(AgentEngine):
    """The engine of one of several instances: the operations in ROUTED run on the user's
    home; a session's events are read from wherever its agent runs."""

    cluster: Cluster

    async def start(self) -> None:
        await super().start()
        await self.cluster.start(self)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.cluster.stop()

    async def follow(
        self,
        user_id: str,
        session_id: str,
        after: int | None = None,
        *,
        until_turn_end: bool = False,
    ) -> Follower:
        home = await self.cluster.home_of(user_id)
        if home == self.cluster.id:
            return await super().follow(user_id, session_id, after, until_turn_end=until_turn_end)
        info: ResumeInfo = await self.cluster.call(home, "resume_info", (user_id, session_id), {})
        return Follower.of(
            self.cluster.stream(session_id, info.last_seq),
            after,
            info.resume_point,
            until_turn_end=until_turn_end,
            running=lambda: info.busy,
        )


for _name in ROUTED:
    setattr(ClusteredEngine, _name, _routed(_name))
