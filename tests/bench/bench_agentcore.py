"""AgentCore benchmark, through the local stand-in of the deployment (app.devtools.local_aws).

    python -m tests.bench.bench_agentcore [--starts 5]

1. Container start: `python -m app.container` on an empty disk until `/ping` answers Healthy
   (AgentCore's start), against the smallest container that keeps the contract
   (deploy/probe_app.py: Starlette alone), alternating run by run, both from bytecode compiled
   beforehand as the image has it. Target: under 3 s.
2. Sign-in to a usable page on a running runtime: from the click on "Sign in" on the static
   site to the page hydrated and signed in over the runtime's socket; against loading the
   static sign-in page itself. Target: under 2 s.
3. The largest socket message, both ways, while a 10,000-token answer streams and while a
   5,000-message session opens. Target: under AgentCore's 32 KB.

It prints numbers and never asserts them; the last line is one JSON object with all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sysconfig
import tempfile
import time
import urllib.request
from typing import Any

from playwright.sync_api import Page, WebSocket, expect, sync_playwright
from sqlmodel import Session, select

from app.db.engine import open_database
from app.db.models import AgentSession, User
from app.devtools.local_aws import LocalAws, LocalAwsSettings
from tests.browser.conftest import ARTIFACTS, CHROMIUM_ARGS, SCENARIO, _chromium_path
from tests.browser.test_conversation import _write_transcript

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-9"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time_to_healthy(command: list[str]) -> float:
    port = _free_port()
    with tempfile.TemporaryDirectory() as disk:
        env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": disk}
        env.update(DEMO_MODEL="on")
        env.pop("DATABASE_URL", None)
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                        if json.load(r).get("status") in ("Healthy", "HealthyBusy"):
                            return time.perf_counter() - started
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError(f"{command} exited with {process.returncode}") from None
                    time.sleep(0.02)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _compile_bytecode() -> None:
    """What the image's build does (`UV_COMPILE_BYTECODE=1`, `compileall app`): a microVM
    starts from bytecode. Without it (a checkout run with PYTHONDONTWRITEBYTECODE, as on these
    machines) every start would compile Reflex, the SDK and the app first, about 2.5 s more."""
    sources = [REPO / "app", REPO / "rxconfig.py", Path(sysconfig.get_paths()["purelib"])]
    command = [sys.executable, "-m", "compileall", "-q", "-j", "0", *map(str, sources)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def container_starts(runs: int) -> dict[str, Any]:
    _compile_bytecode()
    app, probe = [], []
    for run in range(runs):
        pair = [
            ("app", [sys.executable, "-m", "app.container"]),
            ("probe", [sys.executable, str(REPO / "deploy" / "probe_app.py")]),
        ]
        for name, command in pair if run % 2 == 0 else reversed(pair):
            (app if name == "app" else probe).append(_time_to_healthy(command))
    app_s, probe_s = statistics.median(app), statistics.median(probe)
    print(f"container start to Healthy: app {app_s:.2f} s, minimal container {probe_s:.2f} s")
    print(f"  ratio {app_s / probe_s:.1f}x (median of {runs}; target: app under 3 s)")
    return {"container_start_s": app_s, "minimal_container_start_s": probe_s}


def _frames(page: Page) -> list[int]:
    sizes: list[int] = []

    def watch(ws: WebSocket) -> None:
        for direction in ("framesent", "framereceived"):
            ws.on(direction, lambda payload: sizes.append(len(str(payload).encode())))

    page.on("websocket", watch)
    return sizes


def _sign_in(page: Page, email: str) -> float:
    """Seconds from the click on "Sign in" to the page signed in over the runtime's socket."""
    page.goto("/signin.html")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    started = time.perf_counter()
    page.locator("#submit").click()
    expect(page.locator("#user-email")).to_have_text(email, timeout=120_000)
    return time.perf_counter() - started


def _runtime_of(page: Page) -> str:
    token = str(page.evaluate("localStorage.getItem('aw_access')"))
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
    return f"agent-web-workspace-{claims['sub']}"


def page_numbers(aws: LocalAws, runs: int) -> dict[str, Any]:
    email = "bench@example.com"
    cognito = aws.cognito()
    cognito.admin_create_user(
        UserPoolId=aws.pool_id,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(
        UserPoolId=aws.pool_id, Username=email, Password=PASSWORD, Permanent=True
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_ARGS)
        first = browser.new_context(base_url=aws.site_url).new_page()
        boot = _sign_in(first, email)
        print(f"first sign-in, booting the user's microVM: {boot:.2f} s")
        sign_ins, static_loads = [], []
        for _ in range(runs):
            context = browser.new_context(base_url=aws.site_url)
            page = context.new_page()
            started = time.perf_counter()
            page.goto("/signin.html")
            expect(page.locator("#submit")).to_be_visible()
            static_loads.append(time.perf_counter() - started)
            sign_ins.append(_sign_in(page, email))
            context.close()
        sign_in_s, static_s = statistics.median(sign_ins), statistics.median(static_loads)
        print(f"sign-in to a usable page (runtime running): {sign_in_s:.2f} s (target under 2 s)")
        print(f"  static sign-in page load {static_s:.2f} s; ratio {sign_in_s / static_s:.1f}x")

        answer_frames = _frames(first)
        first.reload()
        expect(first.locator("#user-email")).to_have_text(email, timeout=60_000)
        first.locator("#new-session").click()
        first.locator("#prompt").fill("epic story")
        first.locator("#prompt").press("Enter")
        expect(first.locator(".msg-assistant").last).to_contain_text("w10000", timeout=300_000)
        answer_max = max(answer_frames)
        print(f"largest socket message, 10,000-token answer: {answer_max:,} B (limit 32,768)")

        disk = aws.emulator.disk(_runtime_of(first))
        assert disk is not None, "the user's microVM is running"
        database = open_database(f"sqlite:///{aws.settings.data_dir / 'app.db'}")
        with Session(database) as db:
            user = db.exec(select(User).where(User.email == email)).one()
            row = db.exec(
                select(AgentSession)
                .where(AgentSession.user_id == user.id)
                .order_by(AgentSession.created_at.desc())  # type: ignore[attr-defined]
            ).first()
            assert row is not None
            row.has_transcript, row.title = True, "5,000 messages"
            db.add(row)
            db.commit()
            session_id, user_id = row.id, user.id
        _write_transcript(disk / "homes" / user_id, session_id, messages=5000)
        history_frames = _frames(first)
        first.reload()
        expect(first.locator(".msg-assistant").last).to_have_text("answer 2499", timeout=60_000)
        history_max = max(history_frames)
        print(f"largest socket message, 5,000-message session: {history_max:,} B")
        browser.close()
    return {
        "first_sign_in_s": boot,
        "sign_in_s": sign_in_s,
        "static_page_s": static_s,
        "largest_message_answer_b": answer_max,
        "largest_message_history_b": history_max,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    results = container_starts(args.starts)
    with tempfile.TemporaryDirectory() as data:
        settings = LocalAwsSettings(
            data_dir=Path(data),
            site_port=_free_port(),
            emulator_port=_free_port(),
            web_workdir=ARTIFACTS / "web-agentcore",
            container_env={"DEMO_MODEL": "on", "DEMO_SCENARIO": str(SCENARIO)},
        )
        with LocalAws(settings) as aws:
            results |= page_numbers(aws, args.starts)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
