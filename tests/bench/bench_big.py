"""Big sessions benchmark: first paint of a long session, and the app's memory on a 100 MB one.

Runs the real app (`reflex run --env prod --single-port`, real Claude Code CLI, Debian Chromium)
against the scripted model server, as `bench_stream` does, and prints numbers; it never asserts
times.

    python -m tests.bench.bench_big [--messages 5000 --big-mb 100 --rounds 3 ...]

Three sessions get a real first turn through the CLI; their agents are stopped and their
transcripts grown on disk with lines in the CLI's own shape (user / assistant records chained
by parentUuid, tool_use / tool_result pairs with `toolUseResult`, timestamps):

- baseline: about 10 messages;
- long: `--messages` messages (ordinary turns of a few KB);
- big: about `--big-mb` MB: ordinary turns, a large tool result every few turns, and a few
  single lines of several MB (a `cat` of a big file, its output in the line twice, as the CLI
  writes it), one of them in the newest turn.

Each is opened as a user does, by a click on its entry in the session rail, from a small
session, `--rounds` times in turn; *first paint* is from the click to the first animation
frame in which the session's newest message is in the page, and it is reported with its ratio
to the baseline's. The bytes the page received over `/_event` for each open are counted too.
Then the page is reloaded on the big session (first paint after a navigation), and "Load
earlier messages" is clicked `--pages` times. The RSS of the app's backend process is sampled
before the big sessions are opened, after each, and after paging back.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import contextlib
import json
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.bench.bench_load import descendants, rss_kb
from tests.bench.bench_stream import (
    PASSWORD,
    App,
    EmitClock,
    SocketCounter,
    api_client,
    new_page,
    running_app,
    timed_model_server,
)
from tests.browser.conftest import CHROMIUM_ARGS, _chromium_path
from tests.browser.test_chat import sign_up

TARGETS = {"first_paint_ms": 1000.0}
WARMUP_TOKENS = 20
EMAIL = "big@bench.example"

# From a click (window.__open.t0) to the first animation frame whose newest answer holds the
# session's marker: the frame in which it is painted.
PAINT_WATCH = """
(marker) => new Promise((resolve) => {
  const started = window.__open.t0;
  const look = () => {
    const answers = document.querySelectorAll("#conversation .msg-assistant");
    const last = answers[answers.length - 1];
    if (last && last.textContent.includes(marker)) {
      resolve(performance.now() - started);
    } else if (performance.now() - started > 120000) {
      resolve(-1);
    } else {
      requestAnimationFrame(look);
    }
  };
  requestAnimationFrame(look);
})
"""
# After a reload: the same, from the navigation's start, for the marker in sessionStorage.
RELOAD_WATCH = """
(() => {
  const marker = sessionStorage.getItem("benchMarker");
  if (!marker) return;
  const look = () => {
    const answers = document.querySelectorAll("#conversation .msg-assistant");
    const last = answers[answers.length - 1];
    if (last && last.textContent.includes(marker)) window.__paint = performance.now();
    else requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""
# The page's CSP forbids eval, so no page.wait_for_function: promises that poll per frame.
UNTIL = """
(name) => new Promise((resolve) => {
  const look = () => {
    const value = window[name];
    if (value !== undefined) resolve(value); else requestAnimationFrame(look);
  };
  look();
})
"""
MORE_WATCH = """
(shown) => new Promise((resolve) => {
  const started = window.__open.t0;
  const look = () => {
    if (document.querySelectorAll("#conversation .msg").length > shown) {
      resolve(performance.now() - started);
    } else if (performance.now() - started > 120000) {
      resolve(-1);
    } else {
      requestAnimationFrame(look);
    }
  };
  requestAnimationFrame(look);
})
"""
CLICK = """
(title) => {
  const items = [...document.querySelectorAll(".session-item")];
  const item = items.find((el) => el.querySelector(".session-title")?.textContent === title);
  if (!item) throw new Error("no rail entry " + title);
  window.__open = {t0: performance.now()};
  item.querySelector(".session-title").click();
}
"""


# --------------------------------------------------------------------------- transcripts


@dataclass
class Chain:
    """Writes records in the CLI's shape, each one's parentUuid the previous one's uuid."""

    session_id: str
    cwd: str
    version: str
    branch: str
    parent: str | None
    clock: datetime
    messages: int = 0

    def record(self, kind: str, message: dict[str, Any], **extra: Any) -> str:
        self.clock += timedelta(milliseconds=700)
        uid = str(uuid.uuid4())
        record = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "type": kind,
            "message": message,
            "uuid": uid,
            "timestamp": self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **extra,
            "userType": "external",
            "entrypoint": "sdk-py",
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": self.version,
            "gitBranch": self.branch,
        }
        self.parent = uid
        self.messages += 1
        return json.dumps(record, separators=(",", ":"))

    def prompt(self, text: str) -> str:
        return self.record("user", {"role": "user", "content": text}, permissionMode="default")

    def assistant(self, blocks: list[dict[str, Any]]) -> str:
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": blocks,
            "stop_reason": "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 15774, "output_tokens": 120, "service_tier": "standard"},
        }
        return self.record("assistant", message, requestId=f"req_{uuid.uuid4().hex[:24]}")

    def tool_result(self, tool_id: str, output: str) -> str:
        block = {"type": "tool_result", "tool_use_id": tool_id, "content": output}
        result = {"stdout": output, "stderr": "", "interrupted": False, "isImage": False}
        return self.record("user", {"role": "user", "content": [block]}, toolUseResult=result)


def _source(index: int, size: int) -> str:
    """A file's text, as `cat` prints it: numbered lines of code-like text."""
    line = "    result = compute(value_{i}, options={{'retries': 3}})  # step {n} of module {i}\n"
    out, n = [], 0
    total = 0
    while total < size:
        piece = line.format(i=index, n=n)
        out.append(piece)
        total += len(piece)
        n += 1
    return "".join(out)[:size]


def turn(chain: Chain, index: int, output_size: int, marker: str = "") -> list[str]:
    """One turn, four messages: prompt, text + Bash call, its output, the answer."""
    tool_id = f"toolu_{uuid.uuid4().hex[:24]}"
    words = f"Looking at module {index}: the retries are counted twice in the loop. " * 8
    answer = f"Fixed module {index}: the loop now counts each retry once. " * 10
    return [
        chain.prompt(f"Please check module {index} and fix the retry count ({index})"),
        chain.assistant(
            [
                {"type": "text", "text": words},
                {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": "Bash",
                    "input": {"command": f"cat src/module_{index}.py", "description": "Show it"},
                },
            ]
        ),
        chain.tool_result(tool_id, _source(index, output_size)),
        chain.assistant([{"type": "text", "text": marker or answer}]),
    ]


def open_chain(path: Path) -> Chain:
    """Continue a transcript the CLI wrote: its session, cwd, version and last message."""
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") in ("user", "assistant") and "uuid" in record:
            last = record
    when = datetime.fromisoformat(last["timestamp"].replace("Z", "+00:00"))
    return Chain(
        session_id=last["sessionId"],
        cwd=last["cwd"],
        version=last.get("version", ""),
        branch=last.get("gitBranch", ""),
        parent=last["uuid"],
        clock=max(when, datetime.now(UTC)),
    )


def grow(path: Path, plan: list[tuple[int, str]]) -> int:
    """Append turns: (tool output size, marker) each; returns the messages added."""
    chain = open_chain(path)
    with path.open("a") as f:
        for index, (size, marker) in enumerate(plan):
            f.write("\n".join(turn(chain, index, size, marker)) + "\n")
    return chain.messages


def plans(args: argparse.Namespace) -> dict[str, list[tuple[int, str]]]:
    """What each session gets appended; the newest turn's answer is its marker."""
    baseline = [(800, ""), (800, "newest of baseline")]
    long = [(1500, "")] * (args.messages // 4 - 1) + [(1500, "newest of long")]
    # big: ordinary 3 KB turns, a 200 KB output every 10th turn, a `cat` of a big file
    # (--line-mb of output, twice in its line) in the middle, 4 pages back and in the newest.
    line = int(args.line_mb * 1_000_000)
    ordinary = 3000
    budget = int(args.big_mb * 1_000_000) - 3 * 2 * line
    per_ten = 9 * (ordinary * 2 + 3000) + (200_000 * 2 + 3000)
    turns = max(40, budget * 10 // per_ten)
    big = [(200_000 if i % 10 == 9 else ordinary, "") for i in range(turns)]
    big[turns // 2] = (line, "")
    big[turns - 75] = (line, "")
    big.append((line, "newest of big"))
    return {"baseline": baseline, "long": long, "big": big}


# --------------------------------------------------------------------------- the app


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def backend_pid(app: App) -> int:
    """The process serving the app: of the Python processes between `reflex run` and an
    agent's process, the outermost (a Granian worker; `reflex run` itself if it serves).
    Called while agents run."""
    tree = [app.pid, *descendants(app.pid)]
    for pid in tree:
        with contextlib.suppress(OSError):
            if not _cmdline(pid).startswith("/usr/bin/bwrap") and "claude" not in _cmdline(pid):
                continue
            chain = [pid]
            while chain[-1] != app.pid:
                chain.append(_parent(chain[-1]))
            below = [p for p in chain[:-1] if "python" in _cmdline(p)]
            return below[-1] if below else app.pid
    raise RuntimeError("no agent process found under the app")


def prepare(app: App, data_dir: Path, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Sessions with a real first turn each, then their transcripts grown on disk."""
    with contextlib.closing(api_client(app, EMAIL)) as api:
        api.timeout = httpx.Timeout(120)
        ids: dict[str, str] = {}
        for name in ("baseline", "long", "big", "home"):
            session_id = api.post("/sessions", json={}).raise_for_status().json()["session_id"]
            api.post(
                f"/sessions/{session_id}/messages", json={"message": f"bench warm-up {name}"}
            ).raise_for_status()
            api.patch(f"/sessions/{session_id}", json={"title": name}).raise_for_status()
            ids[name] = session_id
        pid = backend_pid(app)
        api.post("/sessions/close_all").raise_for_status()
    sessions: dict[str, Any] = {}
    for name, plan in plans(args).items():
        path = next(data_dir.rglob(f"{ids[name]}.jsonl"))
        added = grow(path, plan)
        sessions[name] = {
            "id": ids[name],
            "messages": 2 + added,  # the real turn's prompt and answer
            "bytes": path.stat().st_size,
            "longest_line": max(len(line) for line in path.open("rb")),
            "marker": plan[-1][1],
        }
    sessions["home"] = {"id": ids["home"], "marker": f"w{WARMUP_TOKENS}"}
    return sessions, pid


# --------------------------------------------------------------------------- measurements


@contextlib.contextmanager
def counted(page: Page, context: BrowserContext) -> Iterator[SocketCounter]:
    counter = SocketCounter()
    cdp = context.new_cdp_session(page)
    cdp.on("Network.webSocketCreated", counter.created)
    cdp.on("Network.webSocketFrameReceived", lambda p: counter.frame(counter.received, p))
    cdp.on("Network.webSocketFrameSent", lambda p: counter.frame(counter.sent, p))
    cdp.send("Network.enable")
    yield counter


def open_session(page: Page, counter: SocketCounter, title: str, marker: str) -> dict[str, Any]:
    counter.received.clear()
    counter.on = True
    page.evaluate(CLICK, title)
    ms = page.evaluate(PAINT_WATCH, marker)
    page.evaluate("0")
    counter.on = False
    if ms < 0:
        raise RuntimeError(f"{title}: its newest message never showed")
    return {"ms": round(ms, 1), "received_bytes": sum(counter.received)}


def reload_session(page: Page, marker: str) -> float:
    """Reload on the open session: from the navigation's start to its newest message painted
    (RELOAD_WATCH, an init script)."""
    page.evaluate("(m) => sessionStorage.setItem('benchMarker', m)", marker)
    page.reload()
    ms = page.evaluate(UNTIL, "__paint")
    page.evaluate("sessionStorage.removeItem('benchMarker')")
    return round(float(ms), 1)


def page_back(page: Page, counter: SocketCounter, pages: int) -> list[dict[str, Any]]:
    """Click "Load earlier messages" `pages` times; each until more messages are shown."""
    done = []
    for _ in range(pages):
        button = page.locator("#load-older")
        if not button.count():
            break
        shown = page.locator("#conversation .msg").count()
        page.evaluate("window.__open = {t0: performance.now()}")
        counter.received.clear()
        counter.on = True
        button.click()
        ms = page.evaluate(MORE_WATCH, shown)
        page.evaluate("0")
        counter.on = False
        if ms < 0:
            raise RuntimeError("'Load earlier messages' showed nothing more")
        shown = page.locator("#conversation .msg").count()
        done.append({"ms": round(ms, 1), "shown": shown, "received_bytes": sum(counter.received)})
    return done


def measure(browser: Browser, app: App, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as cleanup:
        context, page = new_page(browser, app)
        cleanup.callback(context.close)
        context.set_default_timeout(120_000)
        context.add_init_script(RELOAD_WATCH)
        sign_up(page, EMAIL, PASSWORD)
        mark = time.monotonic()
        sessions, pid = prepare(app, data_dir, args)
        prepare_s = time.monotonic() - mark
        counter = cleanup.enter_context(counted(page, context))
        page.reload()  # the rail lists the new sessions; the newest ("home") opens
        expect(page.locator(".session-title", has_text="home")).to_be_visible()
        home = sessions["home"]["marker"]
        open_session(page, counter, "home", home)  # warm-up of the open path
        rss: dict[str, float] = {"before": rss_kb(pid) / 1024}
        opens: dict[str, list[dict[str, Any]]] = {"baseline": [], "long": [], "big": []}
        for _ in range(args.rounds):
            for name in opens:
                opens[name].append(open_session(page, counter, name, sessions[name]["marker"]))
                rss.setdefault(f"after {name}", rss_kb(pid) / 1024)
                open_session(page, counter, "home", home)
        open_session(page, counter, "big", sessions["big"]["marker"])
        reload_ms = {"big": reload_session(page, sessions["big"]["marker"])}
        earlier = page_back(page, counter, args.pages)
        rss["after paging back"] = rss_kb(pid) / 1024
        open_session(page, counter, "home", home)
        open_session(page, counter, "baseline", sessions["baseline"]["marker"])
        reload_ms["baseline"] = reload_session(page, sessions["baseline"]["marker"])
        rss["at the end"] = rss_kb(pid) / 1024
    return {
        "sessions": {k: v for k, v in sessions.items() if k != "home"},
        "opens": opens,
        "reload_ms": reload_ms,
        "earlier": earlier,
        "rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "backend": {"pid": pid, "is_group_leader": pid == app.pid},
        "prepare_s": round(prepare_s, 1),
    }


# --------------------------------------------------------------------------- report


def report(result: dict[str, Any], timing: dict[str, float]) -> None:
    sessions, opens = result["sessions"], result["opens"]
    base = statistics.median(o["ms"] for o in opens["baseline"])
    print()
    print(
        "First paint: click on the rail entry -> newest message painted, ms "
        f"(median of {len(opens['baseline'])}; each open from a small session)"
    )
    print(
        f"  {'session':<9}{'messages':>9}{'MB':>8}{'longest line':>14}{'median':>9}"
        f"{'runs':>22}{'x baseline':>11}{'sent to page':>14}"
    )
    for name, runs in opens.items():
        info = sessions[name]
        median = statistics.median(o["ms"] for o in runs)
        each = "/".join(f"{o['ms']:.0f}" for o in runs)
        sent = statistics.median(o["received_bytes"] for o in runs)
        target = ""
        if name == "long":
            ok = median <= TARGETS["first_paint_ms"]
            target = f"   target <= {TARGETS['first_paint_ms']:.0f} ({'met' if ok else 'MISSED'})"
        print(
            f"  {name:<9}{info['messages']:>9,}{info['bytes'] / 1e6:>8.1f}"
            f"{info['longest_line'] / 1e6:>11.2f} MB{median:>9.0f}{each:>22}"
            f"{median / base:>10.1f}x{sent / 1e3:>11.0f} KB{target}"
        )
    reload = result["reload_ms"]
    print(
        f"  reload (navigation -> newest message): big {reload['big']:.0f} ms, "
        f"baseline {reload['baseline']:.0f} ms ({reload['big'] / reload['baseline']:.1f}x)"
    )
    earlier = result["earlier"]
    print(
        "  load earlier on big: "
        + ", ".join(
            f"{e['ms']:.0f} ms / {e['received_bytes'] / 1e3:.0f} KB ({e['shown']} shown)"
            for e in earlier
        )
    )
    print()
    rss = result["rss_mb"]
    big_mb = sessions["big"]["bytes"] / 1e6
    growth = max(rss.values()) - rss["before"]
    print("App backend RSS, MB")
    print("  " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))
    print(
        f"  growth {growth:.0f} MB (peak - before) for a {big_mb:.0f} MB transcript: "
        f"{growth / big_mb:.2f} MB per transcript MB"
    )
    print()
    print(", ".join(f"{k} {v:.1f} s" for k, v in timing.items()))
    summary = {
        "bench": "big",
        **result,
        "baseline_ms": base,
        "targets": TARGETS,
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
    }
    print(json.dumps(summary, separators=(",", ":")))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000, help="the long session's size")
    parser.add_argument("--big-mb", type=float, default=100, help="the big transcript's size")
    parser.add_argument("--line-mb", type=float, default=4, help="a long line's tool output")
    parser.add_argument("--rounds", type=int, default=3, help="opens of each session")
    parser.add_argument("--pages", type=int, default=4, help="'load earlier' clicks on big")
    parser.add_argument(
        "--deadline-s", type=int, default=600, help="abort (and clean up) after this long"
    )
    args = parser.parse_args(argv)
    if args.messages < 8 or args.big_mb < 10 or args.rounds < 1:
        parser.error("--messages >= 8, --big-mb >= 10, --rounds >= 1")
    return args


def _abort(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _abort)
    signal.signal(signal.SIGALRM, _abort)
    signal.alarm(args.deadline_s)
    started = time.monotonic()
    timing: dict[str, float] = {}
    model_args = argparse.Namespace(
        warmup_tokens=WARMUP_TOKENS, tokens=1, bytes_tokens=1, delay_ms=1, bytes_delay_ms=1
    )
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-data-") as data_dir,
            timed_model_server(model_args, EmitClock()) as model_url,
            running_app(model_url, Path(data_dir)) as app,
            sync_playwright() as pw,
        ):
            timing["app_start"] = app.startup_s
            print(f"app serving {app.url} after {app.startup_s:.1f} s (log: {app.log_path})")
            browser = pw.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_ARGS)
            try:
                mark = time.monotonic()
                result = measure(browser, app, Path(data_dir), args)
                timing["measure"] = time.monotonic() - mark
            finally:
                browser.close()
    finally:
        signal.alarm(0)
    timing["total"] = time.monotonic() - started
    report(result, timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
