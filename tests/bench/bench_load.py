"""Load benchmark: N concurrent streaming sessions through the real HTTP API, against the bare
Agent SDK driving the same number of CLIs in the same run.

    python -m tests.bench.bench_load [--sizes 5,10,25,50] [--users 5]

Three processes besides the CLIs: the scripted model server (`app/devtools/scenarios/test.json`,
rule "load answer": 300 tokens `w1 … w300`, 20 ms apart), the app (its FastAPI server with the
services, as `tests/api/conftest.py` runs it, with sandboxed agents at AGENT_NICENESS) and this
client. For each N:

1. **App.** N sessions over `--users` signed-up users (created first: their CLIs start then,
   outside the measurement), then all N prompts at once through `POST
   /sessions/{id}/messages/stream`, read with httpx. Per stream: first token (prompt sent ->
   first `text_delta` read) and turn (-> `turn_end`); per event: delivery delay (read - the
   event's `ts`, stamped when the engine appended it); the words of the answer, checked for
   lost, duplicated and out-of-order tokens. Meanwhile a thread times `GET /sessions` and
   `GET /ping` every 100 ms and samples the app's RSS. At the end: the agents' total PSS
   (every process under the app's), and the CPU seconds the app and the agents used.
2. **SDK.** N `ClaudeSDKClient`s (the same bundled CLI, no sandbox, no app) connected first,
   then all N prompts at once: first token and turn, the baseline for the app's.

Finally the first token after resuming a stopped session (its agent stopped as an idle one is,
then a prompt), three times. It prints a table and one JSON line; it never asserts times.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.bench.bench_sandbox import tree_pss_kb
from tests.processes import child

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "app" / "devtools" / "scenarios" / "test.json"
PROMPT = "load answer"
TOKENS = 300  # the rule's answer: w1 ... w300
PASSWORD = "correct horse battery"
POLL_S = 0.1
_WORD = re.compile(r"\bw(\d+)\b")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, pending = [], list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children.get(pid, [])
    return found


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- measurements


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Turn:
    first_token: float | None = None
    turn: float | None = None
    delays: list[float] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    error: str = ""

    @property
    def completed(self) -> bool:
        return self.turn is not None and not self.error


def token_faults(words: list[int]) -> tuple[int, int, int]:
    """(lost, duplicated, out of order) against w1 ... wTOKENS."""
    lost = len(set(range(1, TOKENS + 1)) - set(words))
    duplicated = len(words) - len(set(words))
    disorder = sum(1 for a, b in itertools.pairwise(words) if b < a)
    return lost, duplicated, disorder


class Sampler(threading.Thread):
    """While streams run: `GET /sessions` and `GET /ping` latencies, and the app's RSS."""

    def __init__(self, url: str, token: str, app_pid: int) -> None:
        super().__init__(name="sampler", daemon=True)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, trust_env=False
        )
        self.app_pid = app_pid
        self.stop = threading.Event()
        self.sessions: list[float] = []
        self.ping: list[float] = []
        self.rss_peak_kb = 0

    def run(self) -> None:
        with self.client:
            while not self.stop.is_set():
                for path, into in (("/sessions", self.sessions), ("/ping", self.ping)):
                    started = time.perf_counter()
                    self.client.get(path).raise_for_status()
                    into.append(time.perf_counter() - started)
                self.rss_peak_kb = max(self.rss_peak_kb, rss_kb(self.app_pid))
                self.stop.wait(POLL_S)


async def stream_turn(http: httpx.AsyncClient, session_id: str) -> Turn:
    turn = Turn()
    text: list[str] = []
    started = time.time()
    try:
        async with http.stream(
            "POST", f"/sessions/{session_id}/messages/stream", json={"message": PROMPT}
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                now = time.time()
                data = json.loads(line[6:])
                if data["type"] == "done":
                    break
                turn.delays.append(now - float(data["ts"]))
                if data["type"] == "text_delta" and not data.get("parent_tool_use_id"):
                    if turn.first_token is None:
                        turn.first_token = now - started
                    text.append(str(data.get("content") or data.get("text") or ""))
                elif data["type"] == "result" and data.get("is_error"):
                    turn.error = "error result"
                elif data["type"] == "turn_end":
                    turn.turn = now - started
    except httpx.HTTPError as error:
        turn.error = repr(error)
    turn.words = [int(k) for k in _WORD.findall("".join(text))]
    return turn


@dataclass
class Row:
    path: str
    n: int
    turns: list[Turn]
    sessions_s: list[float] = field(default_factory=list)
    ping_s: list[float] = field(default_factory=list)
    app_rss_mb: float | None = None
    agents_pss_mb: float | None = None
    app_cpu_s: float | None = None
    agents_cpu_s: float | None = None
    client_cpu_s: float | None = None  # this process's own, so a slow reader shows

    def summary(self) -> dict[str, Any]:
        faults = [token_faults(t.words) for t in self.turns if t.turn is not None]
        first = [t.first_token for t in self.turns if t.first_token is not None]
        whole = [t.turn for t in self.turns if t.turn is not None]
        delays = [d for t in self.turns for d in t.delays]
        return {
            "path": self.path,
            "n": self.n,
            "completed": sum(t.completed for t in self.turns),
            "lost": sum(f[0] for f in faults),
            "duplicated": sum(f[1] for f in faults),
            "out_of_order": sum(f[2] for f in faults),
            "first_p50_s": pct(first, 50),
            "first_p95_s": pct(first, 95),
            "turn_p50_s": pct(whole, 50),
            "turn_p95_s": pct(whole, 95),
            "delay_p95_ms": _ms(pct(delays, 95)),
            "sessions_p95_ms": _ms(pct(self.sessions_s, 95)),
            "ping_p95_ms": _ms(pct(self.ping_s, 95)),
            "app_rss_mb": self.app_rss_mb,
            "agents_pss_mb": self.agents_pss_mb,
            "app_cpu_s": self.app_cpu_s,
            "agents_cpu_s": self.agents_cpu_s,
            "client_cpu_s": self.client_cpu_s,
            "errors": sorted({t.error for t in self.turns if t.error})[:3],
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# --------------------------------------------------------------------------- the app path


@dataclass
class AppRun:
    url: str
    pid: int
    tokens: list[str]  # one access token per user


def sign_up_users(url: str, users: int) -> list[str]:
    tokens = []
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
        for n in range(users):
            account = {"email": f"load{n}@bench.example", "password": PASSWORD}
            http.post("/auth/local/signup", json=account).raise_for_status()
            response = http.post("/auth/local/token", json=account)
            response.raise_for_status()
            tokens.append(str(response.json()["access_token"]))
    return tokens


def client_for(app: AppRun, user: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=app.url,
        headers={"Authorization": f"Bearer {app.tokens[user]}"},
        timeout=httpx.Timeout(60, read=900),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        trust_env=False,
    )


async def create_sessions(app: AppRun, clients: list[httpx.AsyncClient], n: int) -> list[str]:
    gate = asyncio.Semaphore(8)  # CLIs start outside the measurement; not all at one instant

    async def create(k: int) -> str:
        async with gate:
            response = await clients[k % len(clients)].post("/sessions", json={})
            response.raise_for_status()
            return str(response.json()["session_id"])

    return list(await asyncio.gather(*(create(k) for k in range(n))))


async def app_row(app: AppRun, n: int) -> Row:
    clients = [client_for(app, u) for u in range(len(app.tokens))]
    try:
        ids = await create_sessions(app, clients, n)
        before = {pid: cpu_seconds(pid) for pid in [app.pid, *descendants(app.pid)]}
        sampler = Sampler(app.url, app.tokens[0], app.pid)
        sampler.start()
        client_before = time.process_time()
        try:
            turns = await asyncio.gather(
                *(stream_turn(clients[k % len(clients)], sid) for k, sid in enumerate(ids))
            )
        finally:
            sampler.stop.set()
            sampler.join()
        agents = descendants(app.pid)
        row = Row("app", n, list(turns), sampler.sessions, sampler.ping)
        row.app_rss_mb = sampler.rss_peak_kb / 1024
        row.agents_pss_mb = (tree_pss_kb(app.pid) - tree_pss_kb_self(app.pid)) / 1024
        row.app_cpu_s = cpu_seconds(app.pid) - before[app.pid]
        row.agents_cpu_s = sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in agents)
        row.client_cpu_s = time.process_time() - client_before
        for client in clients:
            (await client.post("/sessions/close_all")).raise_for_status()
        return row
    finally:
        for client in clients:
            await client.aclose()


def tree_pss_kb_self(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


async def resume_first_tokens(app: AppRun, times: int) -> dict[str, list[float]]:
    """First token of a prompt to one session, `times` each: *live*, its agent running (the
    baseline); *cold*, its agent stopped (as an idle one is), started by the prompt; *opened*,
    its agent stopped, then started by opening the session (`POST /sessions` with
    `resume_session_id`, as the page does on open) before the prompt is sent."""
    firsts: dict[str, list[float]] = {"live": [], "cold": [], "opened": []}
    async with client_for(app, 0) as http:
        (session_id,) = await create_sessions(app, [http], 1)
        for _ in range(times):
            for kind in firsts:
                if kind != "live":
                    (await http.delete(f"/sessions/{session_id}")).raise_for_status()
                if kind == "opened":
                    opened = await http.post("/sessions", json={"resume_session_id": session_id})
                    opened.raise_for_status()
                turn = await stream_turn(http, session_id)
                if turn.first_token is not None:
                    firsts[kind].append(turn.first_token)
        (await http.post("/sessions/close_all")).raise_for_status()
    return firsts


# --------------------------------------------------------------------------- the bare SDK


def _sdk_options(home: Path, model_url: str) -> Any:
    """The bare SDK's options: the bundled CLI on the scripted model, in a home of its own."""
    from claude_agent_sdk import ClaudeAgentOptions

    from app.sandbox.environment import bundled_cli

    home.mkdir(parents=True, exist_ok=True)
    return ClaudeAgentOptions(
        cwd=str(home),
        cli_path=bundled_cli(),
        include_partial_messages=True,
        env={
            "HOME": str(home),
            "ANTHROPIC_BASE_URL": model_url,
            "ANTHROPIC_API_KEY": "bench",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
    )


async def sdk_cold_first_tokens(model_url: str, scratch: Path, times: int) -> list[float]:
    """The cold resume's own baseline: the bare SDK starting a fresh CLI (no jail, no
    transcript to load), timed from `connect` to the first token of a prompt."""
    from claude_agent_sdk import ClaudeSDKClient
    from claude_agent_sdk.types import StreamEvent

    options = _sdk_options(scratch / "sdk-cold", model_url)
    firsts = []
    for _ in range(times):
        client = ClaudeSDKClient(options)
        started = time.time()
        await client.connect()
        try:
            await client.query(PROMPT)
            async for message in client.receive_response():
                if not isinstance(message, StreamEvent):
                    continue
                if (message.event.get("delta") or {}).get("type") == "text_delta":
                    firsts.append(time.time() - started)
                    break
        finally:
            await client.disconnect()
    return firsts


async def sdk_row(n: int, model_url: str, scratch: Path) -> Row:
    from claude_agent_sdk import ClaudeSDKClient, ResultMessage
    from claude_agent_sdk.types import StreamEvent

    options = _sdk_options(scratch / f"sdk-home-{n}", model_url)
    clients = [ClaudeSDKClient(options) for _ in range(n)]
    gate = asyncio.Semaphore(8)

    async def connect(client: ClaudeSDKClient) -> None:
        async with gate:
            await client.connect()

    async def turn(client: ClaudeSDKClient) -> Turn:
        result = Turn()
        text: list[str] = []
        started = time.time()
        await client.query(PROMPT)
        async for message in client.receive_response():
            now = time.time()
            if isinstance(message, StreamEvent):
                delta = message.event.get("delta") or {}
                if delta.get("type") == "text_delta":
                    result.first_token = result.first_token or now - started
                    text.append(str(delta.get("text", "")))
            elif isinstance(message, ResultMessage):
                result.turn = now - started
                result.error = "error result" if message.is_error else ""
        result.words = [int(k) for k in _WORD.findall("".join(text))]
        return result

    try:
        await asyncio.gather(*(connect(c) for c in clients))
        turns = await asyncio.gather(*(turn(c) for c in clients))
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.disconnect()
    return Row("sdk", n, list(turns))


# --------------------------------------------------------------------------- report


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(
    rows: list[dict[str, Any]], resume: dict[str, list[float]], args: argparse.Namespace
) -> None:
    head = (
        f"{'N':>3} {'path':<4} {'done':>7} {'lost/dup/ooo':>12} {'first p50/p95 s':>16} "
        f"{'turn p50/p95 s':>15} {'delay p95':>9} {'/sessions p95':>13} {'/ping p95':>9} "
        f"{'app RSS':>8} {'agents PSS':>10} {'CPU app/agents s':>16}"
    )
    print()
    print(
        f"Load: N concurrent streaming sessions, {args.users} users, {TOKENS}-token answer "
        f"20 ms apart (scripted model), {os.cpu_count()} cores; agents at AGENT_NICENESS="
        f"{args.niceness}"
    )
    print(head)
    for r in rows:
        faults = f"{r['lost']}/{r['duplicated']}/{r['out_of_order']}"
        first = f"{fmt(r['first_p50_s'], '.2f')}/{fmt(r['first_p95_s'], '.2f')}"
        whole = f"{fmt(r['turn_p50_s'], '.2f')}/{fmt(r['turn_p95_s'], '.2f')}"
        cpu = f"{fmt(r['app_cpu_s'], '.1f')}/{fmt(r['agents_cpu_s'], '.1f')}"
        print(
            f"{r['n']:>3} {r['path']:<4} {r['completed']:>3}/{r['n']:<3} {faults:>12} "
            f"{first:>16} {whole:>15} {fmt(r['delay_p95_ms'], '.0f'):>6} ms "
            f"{fmt(r['sessions_p95_ms'], '.0f'):>10} ms {fmt(r['ping_p95_ms'], '.0f'):>6} ms "
            f"{fmt(r['app_rss_mb'], '.0f'):>5} MB {fmt(r['agents_pss_mb'], '.0f'):>7} MB "
            f"{cpu:>16}"
        )
        if r["errors"]:
            print(f"    errors: {r['errors']}")
    baselines = {"live": "its agent running", "sdk_cold": "the bare SDK's fresh CLI"}
    for kind, label, against in (
        ("live", "its agent running (baseline)", "live"),
        ("sdk_cold", "the bare SDK starting a fresh CLI (the cold baseline)", "sdk_cold"),
        ("cold", "its agent stopped, started by the prompt", "sdk_cold"),
        ("opened", "its agent stopped, started when the session was opened", "live"),
    ):
        if times := resume.get(kind):
            base = statistics.median(resume[against]) if resume.get(against) else None
            ratio = f", {statistics.median(times) / base:.1f}x {baselines[against]}" if base else ""
            print(
                f"First token, {label}: median {statistics.median(times):.2f} s of "
                f"{len(times)} ({', '.join(f'{s:.2f}' for s in times)}){ratio}"
            )
    print(json.dumps({"bench": "load", "rows": rows, "resume_first_token_s": resume}))


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="5,10,25,50", help="comma-separated session counts")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--niceness", type=int, default=10, help="AGENT_NICENESS for the app")
    parser.add_argument("--resumes", type=int, default=3, help="resume measurements (0: none)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes: whole numbers, such as 5,10")
    if not args.sizes or min(args.sizes) < 1 or args.users < 1:
        parser.error("--sizes and --users must be at least 1")
    return args


async def run(args: argparse.Namespace, scratch: Path) -> None:
    logs = scratch / "logs"
    logs.mkdir()
    model_port, app_port = free_port(), free_port()
    model_url = f"http://127.0.0.1:{model_port}"
    app_url = f"http://127.0.0.1:{app_port}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "DEMO_"))}
    model_argv = ["-m", "app.devtools.model_server", "--scenario", str(SCENARIO)]
    model_argv += ["--port", str(model_port)]
    app_env = {
        **base_env,
        "DATA_DIR": str(scratch / "data"),
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "bench",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "DEMO_MODEL": "off",
        "MAX_AGENTS_PER_USER": str(max(args.sizes) + 1),
        "AGENT_NICENESS": str(args.niceness),
    }
    app_argv = ["-m", "app.devtools.api_server", "--port", str(app_port)]
    rows: list[dict[str, Any]] = []
    with (
        child(model_argv, base_env, logs / "model.log", f"{model_url}/v1/models"),
        child(app_argv, app_env, logs / "app.log", f"{app_url}/ping") as app_pid,
    ):
        app = AppRun(app_url, app_pid, await asyncio.to_thread(sign_up_users, app_url, args.users))
        for n in args.sizes:
            for path in ("app", "sdk"):
                mark = time.monotonic()
                measured = await (
                    app_row(app, n) if path == "app" else sdk_row(n, model_url, scratch)
                )
                row = measured.summary()
                rows.append(row)
                print(
                    f"  N={n} {row['path']}: {row['completed']}/{n} in "
                    f"{time.monotonic() - mark:.0f} s",
                    flush=True,
                )
                await asyncio.sleep(2)  # the stopped agents' processes exit
        resume = await resume_first_tokens(app, args.resumes) if args.resumes else {}
        if args.resumes:
            resume["sdk_cold"] = await sdk_cold_first_tokens(model_url, scratch, args.resumes)
    report(rows, resume, args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        asyncio.run(run(args, Path(scratch)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
