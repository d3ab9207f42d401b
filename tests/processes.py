"""Python child processes serving HTTP, for tests and benchmarks that run the app (or the
scripted model) as a process of its own: one that can be measured, or killed."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until `url` answers (below 500); RuntimeError with the log's end if `proc` exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def child(argv: list[str], env: dict[str, str], log: Path, url: str) -> Iterator[int]:
    """`python <argv>` serving `url`, its output in `log`; its pid, until the block ends."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_http(url, proc, log)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
