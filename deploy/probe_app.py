"""A minimal AgentCore Runtime container that reports what reaches it.

Deployed once on a real account it settles the UNKNOWNs of the runtime contract (which query
parameters, headers and subprotocols arrive, whether a bubblewrap sandbox can start in the
microVM); locally it is the container behind `app.devtools.agentcore` in tests. Every report is
also printed as one JSON line on stdout, so it can be read from CloudWatch.

It never reports a secret: header names only, query and subprotocol tokens redacted.

Standalone on purpose (Starlette and uvicorn only): copy this one file into an image and run
`python probe_app.py`. It listens on $HOST:$PORT (default 0.0.0.0:8080).

- `GET /ping`: Healthy, or HealthyBusy while busy (env `PROBE_BUSY=1`, or `{"busy": true}`).
- `POST /invocations` with an optional JSON object: `busy` (bool) switches the busy state,
  `mark` (true) writes a file into $DATA_DIR first, `stream` (n) answers with n SSE events
  `delay` seconds apart (default 0.2); otherwise the answer is the report.
- `/ws`: accepts (choosing `base64UrlBearerAuthorization` if offered), sends the report, then
  echoes every message, except `close:<code>` (closes with that code) and `big:<n>` (answers
  with n bytes).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

BEARER_PROTOCOL = "base64UrlBearerAuthorization"
SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id"
REDACTED = "<redacted>"
# Query parameters whose values may be credentials (a token, a presigned URL's signature).
_SECRET_WORDS = ("token", "auth", "signature", "credential", "secret", "password", "key")
_SANDBOX_COMMAND = ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
_USERNS_FILES = ("/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces")

_state: dict[str, Any] = {
    "busy": os.environ.get("PROBE_BUSY") == "1",
    "started": int(time.time()),
    "updated": int(time.time()),
}


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(k, REDACTED if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in pairs]
    )


def _redact_subprotocol(name: str) -> str:
    """`base64UrlBearerAuthorization.<token>` carries the caller's JWT."""
    head, dot, _ = name.partition(".")
    return f"{head}.{REDACTED}" if dot else name


def _data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR", "/tmp/probe-data"))


def _userns() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _USERNS_FILES:
        try:
            found[name] = Path(name).read_text().strip()
        except OSError:
            found[name] = None
    return found


def _entries(folder: Path) -> list[str] | None:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None


async def _sandbox_check() -> dict[str, Any]:
    """Can an agent sandbox start here? AgentCore's microVM may refuse user namespaces."""
    bwrap = shutil.which("bwrap")
    result: dict[str, Any] = {"bwrap": bwrap, "userns": _userns(), "ok": False, "error": None}
    if bwrap is None:
        result["error"] = "bwrap not installed"
        return result
    try:
        proc = await asyncio.create_subprocess_exec(
            bwrap,
            *_SANDBOX_COMMAND,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
    except (OSError, TimeoutError) as exc:
        result["error"] = repr(exc)
        return result
    result["ok"] = proc.returncode == 0
    if proc.returncode != 0:
        result["error"] = f"exit {proc.returncode}: {stderr.decode(errors='replace')[-500:]}"
    return result


async def _report(conn: HTTPConnection, kind: str) -> dict[str, Any]:
    """What arrived and where we run, logged as one JSON line and returned."""
    data_dir = _data_dir()
    report = {
        "probe": kind,
        "path": conn.url.path,
        "query": _redact_query(conn.url.query),
        "header_names": sorted(conn.headers.keys()),
        "session_id": conn.headers.get(SESSION_HEADER),
        "subprotocols": [_redact_subprotocol(p) for p in conn.scope.get("subprotocols", [])],
        "pid": os.getpid(),
        "started": _state["started"],
        "data_dir": str(data_dir),
        "data_dir_entries": _entries(data_dir),
        "env_names": sorted(os.environ),
        "sandbox": await _sandbox_check(),
    }
    print(json.dumps(report), flush=True)
    return report


async def ping(request: Request) -> Response:
    status = "HealthyBusy" if _state["busy"] else "Healthy"
    return JSONResponse({"status": status, "time_of_last_update": _state["updated"]})


async def invocations(request: Request) -> Response:
    try:
        payload = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if "busy" in payload:
        _state["busy"] = bool(payload["busy"])
        _state["updated"] = int(time.time())
    if payload.get("stream"):
        return StreamingResponse(
            _events(int(payload["stream"]), float(payload.get("delay", 0.2))),
            media_type="text/event-stream",
        )
    report = await _report(request, "invocations")
    if payload.get("mark"):
        _mark()
    return JSONResponse(report)


def _mark() -> None:
    """A file on the session's disk, to see whether the next container finds it."""
    _data_dir().mkdir(parents=True, exist_ok=True)
    (_data_dir() / "marker").write_text("written by the probe\n")


async def _events(count: int, delay: float) -> AsyncIterator[bytes]:
    for index in range(count):
        if index:
            await asyncio.sleep(delay)
        yield f"data: {json.dumps({'chunk': index, 'time': time.time()})}\n\n".encode()


async def ws(websocket: WebSocket) -> None:
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=BEARER_PROTOCOL if BEARER_PROTOCOL in offered else None)
    await websocket.send_text(json.dumps(await _report(websocket, "ws")))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            if text is not None and text.startswith("close:"):
                await websocket.close(int(text.removeprefix("close:")))
                return
            if text is not None and text.startswith("big:"):
                await websocket.send_bytes(b"x" * int(text.removeprefix("big:")))
            elif text is not None:
                await websocket.send_text(text)
            elif data is not None:
                await websocket.send_bytes(data)
    except WebSocketDisconnect:
        return


app = Starlette(
    routes=[
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        WebSocketRoute("/ws", ws),
    ]
)


if __name__ == "__main__":
    print(f"probe starting: python {sys.version.split()[0]}, pid {os.getpid()}", flush=True)
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8080")),
        log_level="warning",
    )
