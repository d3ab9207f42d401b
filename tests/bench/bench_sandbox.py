"""Sandbox benchmark: what the jail and the model relay cost, against no jail, in one run.

    python -m tests.bench.bench_sandbox [--starts 8 --idle 4 --tokens 2000]

1. Agent start: `create_session` until the real Claude Code CLI is connected and idle, with
   the sandbox on and off, alternating run by run (so machine noise hits both alike).
2. Memory: the PSS of each idle agent's whole process tree (the CLI, and with the sandbox
   both bubblewraps, setpriv's successor and socat), with `--idle` agents alive at once.
3. Relay latency per token: a local SSE server emits `--tokens` events 1 ms apart, each
   stamped with its emission time; a client reads them directly, through the relay over a
   door's TCP port (no sandbox), and through socat + the door's unix socket (the path inside
   the jail). Printed: arrival - emission, and the relay's added latency.

It prints numbers and never asserts them; the last line is one JSON object with all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from typing import Any

import httpx

from app.agent.engine import AgentEngine
from app.agent.schemas import NewSession
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario
from app.sandbox.gateway import Gateway
from app.sandbox.policy import EgressPolicy
from app.sandbox.relay import ModelRelay, Upstream
from app.sandbox.service import SandboxConfig
from app.sandbox.usage import Usage
from tests.conftest import ensure_user, new_engine
from tests.sandbox.helpers import SSE_HEAD, read_request


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


# --- 1 and 2: start time and memory -----------------------------------------------------


def tree_pss_kb(root: int) -> int:
    """PSS of a process and all its descendants, from /proc/<pid>/smaps_rollup."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def agent_root(session_id: str) -> int:
    """The process the SDK started for a session (bwrap, or the CLI itself): the topmost
    process whose command line names the session."""
    named = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if session_id.encode() in cmdline:
                named[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return next(pid for pid, parent in named.items() if parent not in named)


async def engine_for(root: Path, server: ModelServer, *, sandbox: bool) -> AgentEngine:
    store = Store(open_database(f"sqlite:///{root / 'app.db'}"))  # makes the folder too
    engine = new_engine(
        root, store, server, sandbox=SandboxConfig(enabled=sandbox), max_agents_per_user=100
    )
    await engine.start()
    return engine


async def starts_and_memory(server: ModelServer, starts: int, idle: int) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    engines = {
        "off": await engine_for(scratch / "off", server, sandbox=False),
        "on": await engine_for(scratch / "on", server, sandbox=True),
    }
    times: dict[str, list[float]] = {"off": [], "on": []}
    memory: dict[str, list[int]] = {"off": [], "on": []}
    try:
        users = {
            mode: ensure_user(engine.store, f"bench-{mode}@example.com").id
            for mode, engine in engines.items()
        }
        for mode, engine in engines.items():  # warm caches (the CLI binary, bwrap) once
            row = await engine.create(users[mode], NewSession())
            await engine.close(users[mode], row.session_id)
        for run in range(starts):
            for mode in ("off", "on") if run % 2 == 0 else ("on", "off"):
                engine = engines[mode]
                started = time.perf_counter()
                row = await engine.create(users[mode], NewSession())
                times[mode].append(time.perf_counter() - started)
                await engine.close(users[mode], row.session_id)
        for mode, engine in engines.items():
            rows = [await engine.create(users[mode], NewSession()) for _ in range(idle)]
            await asyncio.sleep(3)  # let the CLIs settle into idle
            memory[mode] = [tree_pss_kb(agent_root(row.session_id)) for row in rows]
            for row in rows:
                await engine.close(users[mode], row.session_id)
    finally:
        for engine in engines.values():
            await engine.shutdown()
    return {"start_s": times, "pss_kb": memory}


# --- 3: relay latency -------------------------------------------------------------------


async def stamped_upstream(tokens: int) -> tuple[asyncio.Server, int]:
    """An SSE server: `tokens` deltas 1 ms apart, each carrying its emission time (ns)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD)
        for _ in range(tokens):
            event = {"type": "content_block_delta", "delta": {"text": str(time.time_ns())}}
            writer.write(f"event: x\ndata: {json.dumps(event)}\n\n".encode())
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def read_latencies(url: str) -> list[float]:
    """ms from each event's emission to its arrival at this client."""
    latencies: list[float] = []
    buffer = b""
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("POST", url, json={"stream": True}) as response,
    ):
        async for chunk in response.aiter_raw():
            arrived = time.time_ns()
            buffer += chunk
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                data = json.loads(frame.split(b"data: ", 1)[1])
                latencies.append((arrived - int(data["delta"]["text"])) / 1e6)
    return latencies


async def relay_latency(tokens: int) -> dict[str, list[float]]:
    server, port = await stamped_upstream(tokens)
    upstream = Upstream(kind="anthropic", base_url=f"http://127.0.0.1:{port}", api_key="k")
    gateway = Gateway(EgressPolicy(()), ModelRelay(upstream))

    async def ignore(_s: str, _u: str, _usage: Usage) -> None:
        pass

    scratch = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    tcp = await gateway.open("tcp", "u", None, ignore)
    unix = await gateway.open("unix", "u", scratch / "door.sock", ignore)
    bridge_port = free_port()
    socat = await asyncio.create_subprocess_exec(
        "socat",
        f"TCP-LISTEN:{bridge_port},bind=127.0.0.1,reuseaddr,fork",
        f"UNIX-CONNECT:{unix.socket_path}",
    )
    await asyncio.sleep(0.3)
    results: dict[str, list[float]] = {"direct": [], "relay": [], "socat+relay": []}
    try:
        for _ in range(2):  # alternate, twice
            results["direct"] += await read_latencies(f"http://127.0.0.1:{port}/v1/messages")
            results["relay"] += await read_latencies(
                f"http://127.0.0.1:{tcp.port}/s/{tcp.token}/v1/messages"
            )
            results["socat+relay"] += await read_latencies(
                f"http://127.0.0.1:{bridge_port}/s/{unix.token}/v1/messages"
            )
    finally:
        socat.terminate()
        await socat.wait()
        await gateway.close_all()
        server.close()
    return results


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- report -----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    server = ModelServer(load_scenario(SCENARIOS_DIR / "test.json"))
    server.start()
    try:
        agents = await starts_and_memory(server, args.starts, args.idle)
    finally:
        server.stop()
    relay = await relay_latency(args.tokens)

    start = {mode: quantiles(values) for mode, values in agents["start_s"].items()}
    pss = {mode: statistics.median(values) / 1024 for mode, values in agents["pss_kb"].items()}
    latency = {path: quantiles(values) for path, values in relay.items()}
    print(f"\nAgent start (create_session until the CLI is ready), {args.starts} runs each:")
    print("                      p50      p90      max")
    for mode, label in (("off", "no sandbox"), ("on", "sandbox")):
        q = start[mode]
        print(f"  {label:<14} {q['p50']:7.2f}s {q['p90']:7.2f}s {q['max']:7.2f}s")
    print(f"  ratio (p50)     {start['on']['p50'] / start['off']['p50']:.2f}x")
    print(f"\nMemory per idle agent (PSS of its process tree), {args.idle} agents, median:")
    print(f"  no sandbox     {pss['off']:7.1f} MB")
    print(f"  sandbox        {pss['on']:7.1f} MB")
    print(f"  ratio          {pss['on'] / pss['off']:.2f}x")
    print(f"\nRelay latency per token ({args.tokens} SSE events 1 ms apart, x2), ms:")
    print("                      p50      p90      p99      max")
    for path, q in latency.items():
        print(f"  {path:<14} {q['p50']:7.2f}  {q['p90']:7.2f}  {q['p99']:7.2f}  {q['max']:7.2f}")
    added = latency["socat+relay"]["p50"] - latency["direct"]["p50"]
    print(f"  added by socat + relay (p50): {added:.2f} ms")
    print(
        json.dumps(
            {
                "start_s": start,
                "start_ratio_p50": start["on"]["p50"] / start["off"]["p50"],
                "pss_mb": pss,
                "pss_ratio": pss["on"] / pss["off"],
                "relay_ms": latency,
                "relay_added_p50_ms": added,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=8)
    parser.add_argument("--idle", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
