"""Security headers on everything the backend serves, and a Content-Security-Policy on pages.

The pages are Reflex's prerendered HTML, which carries a few inline scripts (theme, router
hydration). Instead of allowing every inline script, each page's policy lists the SHA-256 of
exactly the inline scripts it contains, so a script or event handler that gets into the page
any other way (agent text rendered in a spot that was missed) does not run. No frames, no
plugins, no foreign hosts.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
# FastAPI's own documentation pages load their assets from a CDN and show no user content.
_UNPOLICED = ("/docs", "/redoc")
_FILE_SENDS = ("http.response.pathsend", "http.response.zerocopysend")
COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


def page_policy(html: bytes, host: str) -> str:
    """The CSP for one page: its own inline scripts by hash, everything else from here."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
            for body in _INLINE_SCRIPT.findall(html)
        }
    )
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(hashes),
            "style-src 'self' 'unsafe-inline'",  # emotion (Radix) writes <style> at run time
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "worker-src 'self' blob:",
            "frame-src 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def security_headers(app: ASGIApp) -> ASGIApp:
    """Wrap the backend: common headers on every response, the page policy on HTML."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(_UNPOLICED):
            await app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *COMMON]
                if not _is_html(headers):
                    await send({**message, "headers": headers})
                    return
                start = {**message, "headers": headers}  # held until the page is complete
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body)
            policy = page_policy(_decoded(page, start["headers"]), _host(scope))
            start["headers"].append((b"content-security-policy", policy.encode()))
            await send(start)
            await send({"type": "http.response.body", "body": page})

        # Files must arrive as body messages to be read (not as a path for the server to send).
        extensions = {
            k: v for k, v in (scope.get("extensions") or {}).items() if k not in _FILE_SENDS
        }
        await app({**scope, "extensions": extensions}, receive, send_with_headers)

    return wrapped


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and b"text/html" in v for k, v in headers)


def _decoded(page: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    if any(k.lower() == b"content-encoding" and b"gzip" in v for k, v in headers):
        return gzip.decompress(page)
    return page


def _host(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"host":
            host = value.decode("latin-1")
            return host if re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,255}", host) else ""
    return ""
