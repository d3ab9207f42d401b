"""The model relay: agents call the model through their door; the relay adds the real
credential (API key, gateway token or Bedrock signature) on the way out and streams the answer
back as it arrives, counting tokens from the API's own usage fields.

Agents hold only their session's token, which exists while the session's agent runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote

import botocore.session
import h11
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from app.errors import AppError
from app.sandbox.usage import EventStreamMeter, JsonMeter, SseMeter, Usage
from app.sandbox.wire import Wire, forwardable

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 32 * 1024 * 1024
# What the agent's request may not choose: where it goes and with which credential.
_DROP_REQUEST = frozenset(
    {b"host", b"content-length", b"x-api-key", b"authorization", b"accept-encoding", b"cookie"}
)
_DROP_RESPONSE = frozenset({b"content-length", b"content-encoding", b"set-cookie"})
UsageSink = Callable[[Usage], Awaitable[None]]


class RelayError(AppError):
    """The relay cannot forward this request (its own configuration is missing something)."""

    status = 500
    code = "relay_error"


class Meter(Protocol):
    usage: Usage

    def feed(self, chunk: bytes) -> None: ...


@dataclass(frozen=True)
class Upstream:
    """Where model requests go and how they are authorised (from the app's environment)."""

    kind: Literal["anthropic", "bedrock"]
    base_url: str  # the Messages API, or Bedrock's runtime endpoint
    control_url: str = ""  # Bedrock's control plane (the CLI lists inference profiles there)
    api_key: str | None = None
    auth_token: str | None = None
    custom_headers: tuple[tuple[str, str], ...] = ()
    region: str | None = None
    bedrock_bearer: str | None = None
    aws_credentials: Credentials | None = None  # None: the app's default AWS credential chain

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Upstream:
        if env.get("CLAUDE_CODE_USE_BEDROCK", "").strip() not in ("", "0", "false"):
            region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
            override = env.get("ANTHROPIC_BEDROCK_BASE_URL")
            return cls(
                kind="bedrock",
                base_url=override or f"https://bedrock-runtime.{region}.amazonaws.com",
                control_url=override or f"https://bedrock.{region}.amazonaws.com",
                region=region,
                bedrock_bearer=env.get("AWS_BEARER_TOKEN_BEDROCK") or None,
            )
        headers = []
        for line in env.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip():
                headers.append((name.strip(), value.strip()))
        return cls(
            kind="anthropic",
            base_url=env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
            api_key=env.get("ANTHROPIC_API_KEY") or None,
            auth_token=env.get("ANTHROPIC_AUTH_TOKEN") or None,
            custom_headers=tuple(headers),
        )

    def url(self, path: str) -> str:
        base = self.base_url
        if self.kind == "bedrock" and not path.startswith("/model/"):
            base = self.control_url
        return base.rstrip("/") + path

    def serves(self, method: str, path: str) -> bool:
        """Only the model API's own paths: the relay is not a way to reach anything else."""
        segments = unquote(path.partition("?")[0]).split("/")
        if any(s in (".", "..") or "\\" in s for s in segments):
            return False
        if self.kind == "anthropic":
            return path.startswith("/v1/")
        if method == "GET":
            return path.startswith(("/inference-profiles", "/foundation-models"))
        return path.startswith("/model/")

    def authorise(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        """Add the real credential to an outgoing request's headers."""
        if self.kind == "anthropic":
            if self.api_key:
                headers["x-api-key"] = self.api_key
            if self.auth_token:
                headers["authorization"] = f"Bearer {self.auth_token}"
            headers.update(self.custom_headers)
        elif self.bedrock_bearer:
            headers["authorization"] = f"Bearer {self.bedrock_bearer}"
        else:
            credentials = self.aws_credentials or _default_credentials()
            headers.update(
                _sigv4(method, url, headers, body, self.region or "us-east-1", credentials)
            )


class ModelRelay:
    def __init__(self, upstream: Upstream, client: httpx.AsyncClient | None = None) -> None:
        self.upstream = upstream
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15, read=600, write=60, pool=60),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def handle(self, wire: Wire, request: h11.Request, path: str, record: UsageSink) -> None:
        """Relay one request (`path` already stripped of the session token) and its answer."""
        body = await wire.body(MAX_REQUEST_BYTES)
        if body is None:
            await _api_error(wire, 413, "request_too_large", "The request is too large.")
            return
        method = request.method.decode()
        if not self.upstream.serves(method, path):
            await _api_error(wire, 404, "not_found_error", f"The relay does not serve {path}.")
            return
        url = self.upstream.url(path)
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in forwardable(request.headers, _DROP_REQUEST)
        }
        headers["accept-encoding"] = "identity"  # usage is read from the plain stream
        try:
            # Bedrock signing may fetch or refresh role credentials: off the event loop.
            await asyncio.to_thread(self.upstream.authorise, method, url, headers, body)
        except RelayError as error:
            await _api_error(wire, 500, "api_error", error.message)
            return
        outgoing = self._client.build_request(method, url, headers=headers, content=body)
        started = time.monotonic()
        try:
            response = await self._client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            logger.warning("model relay: %s %s failed: %s", method, path, type(error).__name__)
            await _api_error(
                wire, 502, "api_error", f"The model relay could not reach the model: {error}"
            )
            return
        meter = _meter(response.headers.get("content-type", ""), _bedrock_model(path))
        try:
            await wire.send(
                h11.Response(
                    status_code=response.status_code,
                    headers=forwardable(response.headers.raw, _DROP_RESPONSE),
                )
            )
            async for chunk in response.aiter_raw():
                meter.feed(chunk)
                await wire.send(h11.Data(data=chunk))
            await wire.send(h11.EndOfMessage())
        finally:
            await response.aclose()
            if isinstance(meter, JsonMeter):
                meter.close()
            if meter.usage.seen:
                await record(meter.usage)
            logger.debug(
                "model relay: %s %s -> %s in %.2fs",
                method,
                path,
                response.status_code,
                time.monotonic() - started,
            )


def _meter(content_type: str, model: str) -> Meter:
    if "event-stream" in content_type and "amazon" not in content_type:
        return SseMeter()
    if "amazon.eventstream" in content_type:
        return EventStreamMeter(model)
    return JsonMeter()


def _bedrock_model(path: str) -> str:
    """`/model/<id>/invoke...` -> the model id (Bedrock's messages carry no model name)."""
    parts = path.split("/")
    return unquote(parts[2]) if len(parts) > 2 and parts[1] == "model" else ""


async def refuse_over_budget(wire: Wire, message: str) -> bool:
    """Answer a model request the user's budget does not allow, without sending it on: 402
    `billing_error`, which the CLI reports as the turn's error and does not retry. True when
    the connection can carry another request."""
    if await wire.body(MAX_REQUEST_BYTES) is None:
        await _api_error(wire, 413, "request_too_large", "The request is too large.")
        return False
    await _api_error(wire, 402, "billing_error", message)
    return wire.conn.our_state is h11.DONE and wire.conn.their_state is h11.DONE


async def _api_error(wire: Wire, status: int, kind: str, message: str) -> None:
    """An error in the Messages API's own shape, which the CLI shows to the user."""
    await wire.respond_json(status, {"type": "error", "error": {"type": kind, "message": message}})


@functools.cache
def _aws_session() -> botocore.session.Session:
    return botocore.session.get_session()


def _default_credentials() -> Credentials:
    """The app's AWS credentials (environment, profile or role; refreshed when they expire)."""
    credentials = _aws_session().get_credentials()
    if credentials is None:
        raise RelayError(
            "The app has no AWS credentials to sign Bedrock requests with (set them in the "
            "app's environment, or give its machine a role)."
        )
    return credentials


def _sigv4(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    region: str,
    credentials: Credentials,
) -> dict[str, str]:
    """Bedrock's SigV4 headers for this request."""
    signed = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(credentials.get_frozen_credentials(), "bedrock", region).add_auth(signed)
    return {
        k: v for k, v in signed.headers.items() if k.lower().startswith(("x-amz-", "authorization"))
    }
