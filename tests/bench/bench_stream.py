"""Streaming benchmark: token latency model -> engine -> page, and bytes on Reflex's websocket.

Runs the real app (`reflex run --env prod --single-port`, real Claude Code CLI, Debian Chromium)
against a scripted model server in this process, and prints numbers; it never asserts times.

    python -m tests.bench.bench_stream [--tokens 2000 --delay-ms 10 --bytes-tokens 10000 ...]

1. Token latency. The answer is `w1 w2 ... wN`, one word per SSE delta. For every word wK:
   t_model = when the model server handed the delta carrying wK to its HTTP transport (an ASGI
   wrapper around `create_app`), t_engine = the `ts` of the engine's text_delta frame carrying
   wK (read from `GET /sessions/{id}/events`, subscribed before the prompt is sent), and
   t_dom = when wK first appeared in `#conversation` (a MutationObserver in the page records
   Date.now(), the same machine clock as time.time()).
2. Bytes. A second browser page counts, through the Chrome DevTools Protocol, the payload of
   every frame on the `/_event` websocket from just before the prompt is sent until the whole
   answer is rendered, and compares it with the length of the answer's text.

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import base64
import contextlib
import json
import math
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from app.devtools import model_server
from app.devtools.model_server import ModelServer
from app.devtools.scenario import load_scenario
from tests.browser.conftest import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    REPO_ROOT,
    _child_env,
    _chromium_path,
    _free_port,
    _http_ok,
    _stop,
)
from tests.browser.test_chat import send, sign_up

# Own build and state dirs: never race a browser-test run over test-artifacts/web.
BENCH_ARTIFACTS = ARTIFACTS / "bench"
START_TIMEOUT_S = 150.0
PASSWORD = "correct horse battery"
TARGETS = {"overhead_p50_ms": 10.0, "overhead_p99_ms": 50.0, "bytes_ratio": 2.0}  # issue 7/7

# One delta per word; the first word of a tokens-only step has no leading separator.
_MODEL_WORD = re.compile(rb'"text_delta", "text": "\s*w(\d+)')
_WORD = re.compile(r"\bw(\d+)\b")

# Records, for every word wK, the first moment it was visible in #conversation. Only the tail
# of the text is scanned: words arrive in order and the turn footer is short.
DOM_RECORDER = """
(() => {
  if (window.__bench) return;
  const rec = {on: false, max: 0, t: [], updates: 0, callbacks: 0};
  rec.reset = () => { rec.on = true; rec.max = 0; rec.t = []; rec.updates = 0; rec.callbacks = 0; };
  window.__bench = rec;
  const word = /\\bw(\\d+)\\b/g;
  const scan = () => {
    if (!rec.on) return;
    rec.callbacks++;
    const conv = document.getElementById("conversation");
    if (!conv) return;
    const tail = conv.textContent.slice(-2000);
    let best = 0;
    for (const m of tail.matchAll(word)) { const k = +m[1]; if (k > best) best = k; }
    if (best <= rec.max) return;
    const now = Date.now();
    for (let k = rec.max + 1; k <= best; k++) rec.t[k] = now;
    rec.max = best;
    rec.updates++;
  };
  const what = {subtree: true, childList: true, characterData: true};
  new MutationObserver(scan).observe(document, what);
})();
"""


# --------------------------------------------------------------------------- model side


class EmitClock:
    """Wall-clock time at which the model server wrote each word's text_delta."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[int, float] = {}

    def reset(self) -> None:
        with self._lock:
            self._times = {}

    def times(self) -> dict[int, float]:
        with self._lock:
            return dict(self._times)

    def wrap(self, asgi: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(scope: dict[str, Any], receive: Any, send: Any) -> None:
            async def timed_send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    if b"text_delta" in body:
                        now = time.time()
                        with self._lock:
                            for match in _MODEL_WORD.finditer(body):
                                self._times.setdefault(int(match.group(1)), now)
                await send(message)

            await asgi(scope, receive, timed_send)

        return timed


def scenario(args: argparse.Namespace) -> dict[str, Any]:
    def rule(name: str, tokens: int, delay_ms: int) -> dict[str, Any]:
        return {
            "name": name,
            "when": f"bench {name}",
            "steps": [{"tokens": tokens, "delay_ms": delay_ms}],
        }

    return {
        "rules": [
            rule("warm-up", args.warmup_tokens, args.delay_ms),
            rule("latency", args.tokens, args.delay_ms),
            rule("bytes", args.bytes_tokens, args.bytes_delay_ms),
        ],
        "default": {"steps": [{"text": "unexpected prompt"}]},
    }


@contextlib.contextmanager
def timed_model_server(args: argparse.Namespace, clock: EmitClock) -> Iterator[str]:
    """The scripted server with every streamed chunk time-stamped (app/ stays untouched)."""
    real_create_app = model_server.create_app

    def create_app(*a: Any, **kw: Any) -> Any:
        return clock.wrap(real_create_app(*a, **kw))

    server = ModelServer(load_scenario(scenario(args)))
    with mock.patch.object(model_server, "create_app", create_app):
        url = server.start()
    try:
        yield url
    finally:
        server.stop()


# --------------------------------------------------------------------------- the app


@dataclass
class App:
    url: str
    log_path: Path
    startup_s: float
    pid: int = 0  # `reflex run`, leader of the app's process group


@contextlib.contextmanager
def running_app(model_url: str, data_dir: Path) -> Iterator[App]:
    """`reflex run --env prod --single-port` in its own process group, killed at the end."""
    BENCH_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://localhost:{port}/"
    env = _child_env(data_dir)
    env.pop("DEMO_SCENARIO", None)
    env.update(
        REFLEX_WEB_WORKDIR=str(BENCH_ARTIFACTS / "web"),
        REFLEX_STATES_WORKDIR=str(BENCH_ARTIFACTS / "states"),
        DEMO_MODEL="off",
        ANTHROPIC_BASE_URL=model_url,
        ANTHROPIC_API_KEY="bench",
        CLAUDE_CODE_MAX_RETRIES="0",
    )
    cmd = [sys.executable, "-m", "reflex", "run", "--env", "prod", "--single-port"]
    cmd += ["--frontend-port", str(port), "--backend-port", str(port)]
    log_path = BENCH_ARTIFACTS / "reflex-run.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not (_http_ok(url + "_health") and _http_ok(url)):
            if proc.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the app did not start (exit {proc.poll()}); log:\n{tail}")
            time.sleep(0.2)
        yield App(url=url, log_path=log_path, startup_s=time.monotonic() - started, pid=proc.pid)
    finally:
        _stop(proc)


def api_client(app: App, email: str) -> httpx.Client:
    client = httpx.Client(base_url=app.url, timeout=20, trust_env=False)
    resp = client.post("/auth/local/token", json={"email": email, "password": PASSWORD})
    resp.raise_for_status()
    client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return client


def open_new_session(page: Page, api: httpx.Client) -> str:
    """Click #new-session and return the id of the session it created."""
    known = {s["session_id"] for s in api.get("/sessions/available?limit=500").json()["sessions"]}
    page.locator("#new-session").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sessions = api.get("/sessions/available?limit=500").json()["sessions"]
        new = [s["session_id"] for s in sessions if s["session_id"] not in known]
        if new:
            expect(page.locator("#conversation .msg")).to_have_count(0)
            return str(new[0])
        time.sleep(0.05)
    raise RuntimeError("#new-session created no session")


class EngineFollower(threading.Thread):
    """Follows a session's SSE events; records the engine `ts` of every word's text_delta."""

    def __init__(self, api: httpx.Client, session_id: str) -> None:
        super().__init__(name="engine-follower", daemon=True)
        self.url = f"{api.base_url}sessions/{session_id}/events"
        self.headers = {"Authorization": api.headers["Authorization"]}
        self.subscribed = threading.Event()
        self.times: dict[int, float] = {}
        self.deltas = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            timeout = httpx.Timeout(10, read=60)
            with (
                httpx.Client(timeout=timeout, trust_env=False) as client,
                client.stream("GET", self.url, headers=self.headers) as resp,
            ):
                resp.raise_for_status()
                self.subscribed.set()  # headers are sent after the engine subscription
                for line in resp.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = json.loads(line[6:])
                    if data["type"] == "done":
                        return
                    if data["type"] == "text_delta" and not data.get("parent_tool_use_id"):
                        self.deltas += 1
                        for k in _WORD.findall(data["content"]):
                            self.times.setdefault(int(k), float(data["ts"]))
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.subscribed.set()


# --------------------------------------------------------------------------- measurements


def percentiles(values: list[float]) -> dict[str, float | int]:
    """Nearest-rank p50/p95/p99 and max, in ms (values are seconds)."""
    if not values:
        return {"n": 0}
    ordered = sorted(v * 1000 for v in values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": round(ordered[-1], 1),
    }


def new_page(browser: Browser, app: App) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)
    return context, context.new_page()


def run_turn(page: Page, prompt: str, last_word: int, timeout_s: float) -> float:
    """Send a prompt in a fresh session and wait until its whole answer is rendered."""
    started = time.monotonic()
    send(page, prompt)
    expect(page.locator(".msg-assistant").last).to_contain_text(
        f"w{last_word}", timeout=timeout_s * 1000
    )
    return time.monotonic() - started


def measure_latency(
    browser: Browser, app: App, clock: EmitClock, args: argparse.Namespace
) -> dict[str, Any]:
    with contextlib.ExitStack() as cleanup:
        context, page = new_page(browser, app)
        cleanup.callback(context.close)
        context.add_init_script(DOM_RECORDER)
        email = "latency@bench.example"
        sign_up(page, email, PASSWORD)
        api = cleanup.enter_context(contextlib.closing(api_client(app, email)))

        open_new_session(page, api)  # warm-up turn: CLI, engine and page code paths
        warmup_s = run_turn(page, "bench warm-up", args.warmup_tokens, 60)
        expect(page.locator(".msg-result")).to_have_count(1)

        session_id = open_new_session(page, api)
        follower = EngineFollower(api, session_id)
        follower.start()
        if not follower.subscribed.wait(20) or follower.error:
            raise RuntimeError(f"could not follow the session's events: {follower.error!r}")
        page.evaluate("window.__bench.reset()")
        clock.reset()
        turn_s = run_turn(page, "bench latency", args.tokens, 120)
        page.evaluate(UNTIL_SEEN, args.tokens)  # what never shows is counted as missing
        follower.join(30)
        if follower.error:
            raise RuntimeError(f"following the session's events failed: {follower.error!r}")
        dom_raw = page.evaluate(
            "({t: window.__bench.t, updates: window.__bench.updates,"
            " callbacks: window.__bench.callbacks})"
        )

    model = clock.times()
    engine = follower.times
    dom = {k: v / 1000 for k, v in enumerate(dom_raw["t"]) if v is not None}
    words = range(1, args.tokens + 1)
    both = [k for k in words if k in model and k in engine and k in dom]
    return {
        "tokens": args.tokens,
        "delay_ms": args.delay_ms,
        "warmup_tokens": args.warmup_tokens,
        "warmup_turn_s": round(warmup_s, 2),
        "turn_s": round(turn_s, 2),
        "stream_s": round(max(model.values()) - min(model.values()), 2) if model else None,
        "missing": {
            "model": sum(k not in model for k in words),
            "engine": sum(k not in engine for k in words),
            "dom": sum(k not in dom for k in words),
        },
        "engine_deltas": follower.deltas,
        "dom_updates": dom_raw["updates"],
        "dom_mutation_callbacks": dom_raw["callbacks"],
        "engine_minus_model_ms": percentiles([engine[k] - model[k] for k in both]),
        "dom_minus_model_ms": percentiles([dom[k] - model[k] for k in both]),
        "dom_minus_engine_ms": percentiles([dom[k] - engine[k] for k in both]),
    }


# The page's CSP forbids eval, so no page.wait_for_function: a promise that polls, and gives
# up after 30 s (the words the page never showed are then reported missing).
UNTIL_SEEN = """
(n) => new Promise((resolve) => {
  const started = performance.now();
  const look = () => {
    if (window.__bench.max >= n || performance.now() - started > 30000) resolve();
    else setTimeout(look, 10);
  };
  look();
})
"""


@dataclass
class SocketCounter:
    """Frames on the page's /_event websockets, counted only while `on`."""

    on: bool = False
    sockets: dict[str, str] = field(default_factory=dict)
    extensions: set[str] | None = None  # None until a handshake response was seen
    received: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)

    def created(self, params: dict[str, Any]) -> None:
        self.sockets[params["requestId"]] = params["url"]

    def handshake(self, params: dict[str, Any]) -> None:
        if params["requestId"] in self.sockets:
            headers = {k.lower(): v for k, v in params["response"]["headers"].items()}
            self.extensions = self.extensions or set()
            self.extensions.add(headers.get("sec-websocket-extensions", ""))

    def frame(self, into: list[int], params: dict[str, Any]) -> None:
        if not self.on or "/_event" not in self.sockets.get(params["requestId"], ""):
            return
        response = params["response"]
        payload = response["payloadData"]
        # opcode 1 is text (UTF-8 as a string), others arrive base64-encoded
        size = len(payload.encode()) if response["opcode"] == 1 else len(base64.b64decode(payload))
        into.append(size)


def measure_bytes(browser: Browser, app: App, args: argparse.Namespace) -> dict[str, Any]:
    context, page = new_page(browser, app)
    counter = SocketCounter()
    try:
        cdp = context.new_cdp_session(page)
        cdp.on("Network.webSocketCreated", counter.created)
        cdp.on("Network.webSocketHandshakeResponseReceived", counter.handshake)
        cdp.on("Network.webSocketFrameReceived", lambda p: counter.frame(counter.received, p))
        cdp.on("Network.webSocketFrameSent", lambda p: counter.frame(counter.sent, p))
        cdp.send("Network.enable")  # before the page opens its socket, so it is seen created
        email = "bytes@bench.example"
        sign_up(page, email, PASSWORD)
        with contextlib.closing(api_client(app, email)) as api:
            open_new_session(page, api)
        counter.on = True
        turn_s = run_turn(page, "bench bytes", args.bytes_tokens, 120)
        page.evaluate("0")  # a round trip, so frame events sent before it have been handled
        counter.on = False
        shown = page.locator(".msg-assistant").last.inner_text()
    finally:
        context.close()

    answer = " ".join(f"w{k}" for k in range(1, args.bytes_tokens + 1))
    text_chars = len(answer)
    received = sum(counter.received)
    return {
        "tokens": args.bytes_tokens,
        "delay_ms": args.bytes_delay_ms,
        "turn_s": round(turn_s, 2),
        "received_bytes": received,
        "received_frames": len(counter.received),
        "largest_frame_bytes": max(counter.received, default=0),
        "sent_bytes": sum(counter.sent),
        "sent_frames": len(counter.sent),
        "text_chars": text_chars,
        "ratio": round(received / text_chars, 2),
        "answer_shown_whole": " ".join(shown.split()) == answer,  # fewer bytes, nothing lost
        "websocket_extensions": (
            None if counter.extensions is None else sorted(e for e in counter.extensions if e)
        ),
    }


# --------------------------------------------------------------------------- report


def report(latency: dict[str, Any], sockets: dict[str, Any], timing: dict[str, float]) -> None:
    def row(name: str, stats: dict[str, Any], target: str = "") -> str:
        cells = "".join(f"{stats.get(p, float('nan')):>9.1f}" for p in ("p50", "p95", "p99", "max"))
        return f"  {name:<28}{cells}   {target}"

    overhead = latency["dom_minus_engine_ms"]
    print()
    print(
        f"Token latency, ms: {latency['tokens']} tokens {latency['delay_ms']} ms apart "
        f"(turn {latency['turn_s']} s, {latency['dom_updates']} DOM updates, "
        f"missing {latency['missing']})"
    )
    print(f"  {'':<28}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    print(row("engine - model", latency["engine_minus_model_ms"]))
    print(row("dom - model", latency["dom_minus_model_ms"]))
    ok50 = overhead.get("p50", math.inf) <= TARGETS["overhead_p50_ms"]
    ok99 = overhead.get("p99", math.inf) <= TARGETS["overhead_p99_ms"]
    target = (
        f"target p50 <= {TARGETS['overhead_p50_ms']:.0f} ({'met' if ok50 else 'MISSED'}), "
        f"p99 <= {TARGETS['overhead_p99_ms']:.0f} ({'met' if ok99 else 'MISSED'})"
    )
    print(row("dom - engine (UI overhead)", overhead, target))
    print()
    ok_bytes = sockets["ratio"] <= TARGETS["bytes_ratio"] and sockets["answer_shown_whole"]
    print(
        f"Bytes on /_event: {sockets['tokens']} tokens {sockets['delay_ms']} ms apart "
        f"(turn {sockets['turn_s']} s)"
    )
    print(
        f"  received {sockets['received_bytes']:,} B in {sockets['received_frames']} frames "
        f"(largest {sockets['largest_frame_bytes']:,} B); sent {sockets['sent_bytes']:,} B in "
        f"{sockets['sent_frames']} frames"
    )
    print(
        f"  answer text {sockets['text_chars']:,} chars; ratio {sockets['ratio']}x   "
        f"target <= {TARGETS['bytes_ratio']:.0f}x ({'met' if ok_bytes else 'MISSED'})"
    )
    whole = "yes" if sockets["answer_shown_whole"] else "NO: the bytes saved lost text"
    print(f"  the page shows the whole answer: {whole}")
    extensions = sockets["websocket_extensions"]
    ext = "handshake not seen" if extensions is None else ", ".join(extensions) or "none"
    print(f"  (payload sizes before websocket compression; negotiated extensions: {ext})")
    print()
    print(", ".join(f"{k} {v:.1f} s" for k, v in timing.items()))
    summary = {
        "bench": "stream",
        "latency": latency,
        "bytes": sockets,
        "targets": TARGETS,
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
    }
    print(json.dumps(summary, separators=(",", ":")))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=2000, help="latency answer length")
    parser.add_argument("--delay-ms", type=int, default=10, help="latency pace per token")
    parser.add_argument("--warmup-tokens", type=int, default=200)
    parser.add_argument("--bytes-tokens", type=int, default=10_000, help="bytes answer length")
    parser.add_argument("--bytes-delay-ms", type=int, default=1, help="bytes pace per token")
    parser.add_argument(
        "--deadline-s", type=int, default=170, help="abort (and clean up) after this long"
    )
    args = parser.parse_args(argv)
    if min(args.tokens, args.warmup_tokens, args.bytes_tokens) < 1:
        parser.error("token counts must be at least 1")
    return args


def _abort(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(args.deadline_s)
    started = time.monotonic()
    clock = EmitClock()
    timing: dict[str, float] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-data-") as data_dir,
            timed_model_server(args, clock) as model_url,
            running_app(model_url, Path(data_dir)) as app,
            sync_playwright() as pw,
        ):
            timing["app_start"] = app.startup_s
            print(f"app serving {app.url} after {app.startup_s:.1f} s (log: {app.log_path})")
            browser = pw.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_ARGS)
            try:
                mark = time.monotonic()
                latency = measure_latency(browser, app, clock, args)
                timing["latency_phase"] = time.monotonic() - mark
                mark = time.monotonic()
                sockets = measure_bytes(browser, app, args)
                timing["bytes_phase"] = time.monotonic() - mark
            finally:
                browser.close()
    finally:
        signal.alarm(0)
    timing["total"] = time.monotonic() - started
    report(latency, sockets, timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
