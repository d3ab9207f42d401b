"""A scripted, offline stand-in for the Anthropic Messages API.

Point the Claude Code CLI at it with ANTHROPIC_BASE_URL and it gets replies decided by a
scenario (see `app.devtools.scenario`): deterministic tests of the whole agent stack, and a demo
model for people without credentials. Replies stream with the same SSE events as the real API.

Run standalone: `python -m app.devtools.model_server --scenario PATH --port 8765`.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.devtools import bedrock
from app.devtools.scenario import (
    SCENARIOS_DIR,
    Block,
    Reply,
    Scenario,
    estimate_input_tokens,
    load_scenario,
    plan_reply,
)
from app.devtools.threaded import ThreadedServer

logger = logging.getLogger(__name__)

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SIGNATURE = "c2NyaXB0ZWQtdGhpbmtpbmc="  # the CLI echoes it back; nobody verifies it here
_DEFAULT_MODEL = "claude-scripted"


def _new_id(prefix: str) -> str:
    """Unique ids: the CLI merges streamed fragments by message id and pairs results by tool id."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error JSON shape, which the CLI parses to show and classify failures."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": _new_id("req_"),
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _message_shell(reply: Reply, model: str, message_id: str) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(reply.input_tokens, 0),
    }


def _block_start(block: Block, tool_id: str) -> dict[str, Any]:
    if block.type == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if block.type == "tool_use":
        return {"type": "tool_use", "id": tool_id, "name": block.name, "input": {}}
    return {"type": "text", "text": ""}


def _delta(block: Block, chunk: str) -> dict[str, str]:
    if block.type == "thinking":
        return {"type": "thinking_delta", "thinking": chunk}
    if block.type == "tool_use":
        return {"type": "input_json_delta", "partial_json": chunk}
    return {"type": "text_delta", "text": chunk}


def _full_block(block: Block, tool_id: str) -> dict[str, Any]:
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.content, "signature": _SIGNATURE}
    if block.type == "tool_use":
        return {
            "type": "tool_use",
            "id": tool_id,
            "name": block.name,
            "input": json.loads(block.content),
        }
    return {"type": "text", "text": block.content}


async def stream_events(reply: Reply, model: str) -> AsyncIterator[bytes]:
    """The SSE byte stream of one reply, event for event like the real API."""
    yield _sse(
        "message_start",
        {"type": "message_start", "message": _message_shell(reply, model, _new_id("msg_01"))},
    )
    yield _sse("ping", {"type": "ping"})
    for index, block in enumerate(reply.blocks):
        start = _block_start(block, _new_id("toolu_01"))
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for chunk in block.chunks:
            if reply.delay_ms:
                await anyio.sleep(reply.delay_ms / 1000)
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": _delta(block, chunk)},
            )
        if block.type == "thinking":
            signature = {"type": "signature_delta", "signature": _SIGNATURE}
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": signature},
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.output_tokens},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def full_message(reply: Reply, model: str) -> dict[str, Any]:
    """The non-streaming response body for `stream: false` requests."""
    message = _message_shell(reply, model, _new_id("msg_01"))
    message["content"] = [_full_block(b, _new_id("toolu_01")) for b in reply.blocks]
    message["stop_reason"] = reply.stop_reason
    message["usage"] = _usage(reply.input_tokens, reply.output_tokens)
    return message


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "request body must be a JSON object")
    return body


def create_app(
    scenario_provider: Callable[[], Scenario],
    log: list[dict[str, Any]] | None = None,
    *,
    headers_log: list[dict[str, str]] | None = None,
    aws_credentials: Credentials | None = None,
) -> Starlette:
    """The ASGI app; `scenario_provider` is called per request so scenarios can be swapped live.

    Every /v1/messages body is appended to `log` (and its headers to `headers_log`) so tests
    can assert what the CLI sent; the standalone server passes None because it would grow
    without bound. Bedrock's routes check SigV4 signatures by `aws_credentials` when given.
    """
    log_lock = threading.Lock()

    def record(request: Request, body: dict[str, Any]) -> None:
        with log_lock:
            if log is not None:
                log.append(body)
            if headers_log is not None:
                headers_log.append(dict(request.headers))

    async def messages(request: Request) -> Response:
        body = await _json_body(request)
        record(request, body)
        reply = plan_reply(scenario_provider(), body)
        model = str(body.get("model") or _DEFAULT_MODEL)
        logger.info("%s: rule=%s step=%d", model, reply.rule, reply.step)
        if reply.http_error is not None:
            error = reply.http_error
            return JSONResponse(error_body(error.type, error.message), status_code=error.status)
        if body.get("stream"):
            return StreamingResponse(
                stream_events(reply, model),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        return JSONResponse(full_message(reply, model))

    async def bedrock_invoke(request: Request) -> Response:
        """Bedrock's InvokeModel(WithResponseStream): the model id in the path, not the body."""
        raw = await request.body()
        if problem := await _aws_problem(request, raw):
            return JSONResponse({"message": problem}, status_code=403)
        body = await _json_body(request)
        record(request, body)
        model = request.path_params["model_id"]
        reply = plan_reply(scenario_provider(), body)
        if reply.http_error is not None:
            error = reply.http_error
            return JSONResponse({"message": error.message}, status_code=error.status)
        if request.url.path.endswith("-with-response-stream"):

            async def frames() -> AsyncIterator[bytes]:
                async for event in stream_events(reply, model):
                    data = event.split(b"data: ", 1)[1]
                    yield bedrock.chunk(json.loads(data))

            return StreamingResponse(frames(), media_type="application/vnd.amazon.eventstream")
        return JSONResponse(full_message(reply, model))

    async def inference_profiles(request: Request) -> Response:
        if problem := await _aws_problem(request, b""):
            return JSONResponse({"message": problem}, status_code=403)
        return JSONResponse({"inferenceProfileSummaries": []})

    async def _aws_problem(request: Request, raw: bytes) -> str | None:
        if aws_credentials is None:
            return None
        # As AWS does: the path exactly as sent (still percent-encoded), not Starlette's decoding.
        raw_path = request.scope["raw_path"].decode()
        query = request.url.query
        url = f"{request.url.scheme}://{request.url.netloc}{raw_path}" + (
            f"?{query}" if query else ""
        )
        return bedrock.signature_problem(
            request.method, url, dict(request.headers), raw, aws_credentials
        )

    async def count_tokens(request: Request) -> Response:
        return JSONResponse({"input_tokens": estimate_input_tokens(await _json_body(request))})

    async def http_error(request: Request, exc: Exception) -> Response:
        """Routing and body errors in Anthropic's shape, so clients report them sensibly."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 400:
            return JSONResponse(
                error_body("invalid_request_error", str(getattr(exc, "detail", exc))), status
            )
        error_type = "not_found_error" if status in (404, 405) else "api_error"
        message = f"no route for {request.method} {request.url.path}"
        return JSONResponse(error_body(error_type, message), status_code=status)

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/model/{model_id}/invoke", bedrock_invoke, methods=["POST"]),
            Route(
                "/model/{model_id}/invoke-with-response-stream", bedrock_invoke, methods=["POST"]
            ),
            Route("/inference-profiles", inference_profiles, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


class ModelServer:
    """The scripted API on a background uvicorn thread, for tests and local development."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        aws_credentials: Credentials | None = None,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self._aws_credentials = aws_credentials
        self._scenario = scenario
        self._scenario_lock = threading.Lock()
        self._serving = ThreadedServer("model server", host, port)

    @property
    def base_url(self) -> str:
        """Like "http://127.0.0.1:54321"; only known once started (port 0 picks a free port)."""
        return self._serving.base_url

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch scripts between (or during) conversations; applies from the next request."""
        with self._scenario_lock:
            self._scenario = scenario

    def _current_scenario(self) -> Scenario:
        with self._scenario_lock:
            return self._scenario

    def start(self) -> str:
        """Bind, serve on a daemon thread, and return once connections are accepted."""
        app = create_app(
            self._current_scenario,
            self.requests,
            headers_log=self.request_headers,
            aws_credentials=self._aws_credentials,
        )
        return self._serving.start(app)

    def stop(self) -> None:
        """Shut down and wait for the thread; safe to call twice."""
        self._serving.stop()

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a scenario in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scenario",
        type=Path,
        default=SCENARIOS_DIR / "demo.json",
        help="scenario JSON file (default: the bundled demo)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        scenario = load_scenario(args.scenario)
    except ValueError as exc:
        parser.error(str(exc))
    logger.info("scripted model: export ANTHROPIC_BASE_URL=http://%s:%d", args.host, args.port)
    uvicorn.run(create_app(lambda: scenario), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
