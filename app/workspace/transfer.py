"""Many S3 objects at once, over a few kept-alive HTTP/1.1 connections: the bulk path of the
workspace sync (manifests, listings, deletions and versions stay with boto3).

Why by hand: a sync moves thousands of small files, where the cost is per request, and on a
two-core machine the client's share of that cost is what a sync costs beyond the server.
Measured on 2,000 small files against SeaweedFS (`tests/bench/bench_sync.py`): s5cmd opens a
new connection for nearly every request and takes 1.15-1.4x the time of this module; httpx's
async client 4-6x; boto3 more. What a sync needs of HTTP is small: PUT from a file, GET into
one, SigV4 with an unsigned payload. The body is covered by TLS against S3 and, for uploads
read whole, by S3's own check of `x-amz-checksum-sha256` (the file's SHA-256, which the
manifest holds too).

The transfer runs on an event loop of its own in a worker thread, so the app's loop (pages,
agent streams) never waits on a file being read, hashed or written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import random
import re
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

from app.workspace.snapshot import Placer

CONNECTIONS = 64  # enough to hide S3's latency per request; a local server needs far fewer
WHOLE = 1024 * 1024  # files up to this size are read at once and sent with their checksum
CHUNK = 256 * 1024  # memory per connection for anything larger
ATTEMPTS = 5
IDLE_S = 60.0  # a connection silent this long is given up on (and the request retried)
PROGRESS_S = 0.05  # the page hears of a transfer's progress at most this often
MISMATCH = ".mismatch"  # a download whose content is not the one asked for is kept under this

Progress = Callable[[int, int], None]  # files done, bytes done (this transfer)
T = TypeVar("T")


class TransferError(Exception):
    """S3 refused a request (or stayed unreachable after retries); `code` is S3's."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class _Retry(Exception):
    """A failure worth another attempt: a dropped connection, a 5xx, S3 asking to slow down."""


@dataclass(frozen=True)
class Endpoint:
    """Where one bucket's objects are: `https://<bucket>.s3.<region>.amazonaws.com/<key>` on
    AWS, `<endpoint>/<bucket>/<key>` on an S3-compatible server."""

    scheme: str
    host: str
    port: int
    base: str  # the path before the key, ending in "/"
    region: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    @classmethod
    def of(cls, bucket: str, service_url: str, region: str, path_style: bool) -> Endpoint:
        """`service_url` is S3's address without the bucket (what boto3 resolved)."""
        url = urlsplit(service_url)
        host = url.hostname or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        if path_style or "." in bucket:
            return cls(url.scheme, host, port, f"{url.path.rstrip('/')}/{bucket}/", region)
        return cls(url.scheme, f"{bucket}.{host}", port, "/", region)

    def path(self, key: str) -> str:
        return self.base + quote(key, safe="/~")


class Signer:
    """AWS Signature Version 4 for S3 requests without a query string and with an unsigned
    payload (the signing key is derived once a day, not once a request)."""

    def __init__(self, access_key: str, secret_key: str, token: str | None, region: str) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        self._day = ""
        self._key = b""

    def sign(
        self, method: str, path: str, host: str, headers: dict[str, str], now: datetime
    ) -> dict[str, str]:
        """`headers` with the date, payload, token and authorization headers added."""
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        if day != self._day:
            key = ("AWS4" + self.secret_key).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        signed = {k.lower(): v.strip() for k, v in headers.items()}
        signed.update(
            {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": stamp}
        )
        if self.token:
            signed["x-amz-security-token"] = self.token
        names = sorted(signed)
        canonical = "\n".join(
            [
                method,
                path,
                "",
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                "UNSIGNED-PAYLOAD",
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


class _Connection:
    """One kept-alive connection, opened on first use and again after any failure."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            context = ssl.create_default_context() if self.endpoint.scheme == "https" else None
            try:
                async with asyncio.timeout(IDLE_S):
                    self.reader, self.writer = await asyncio.open_connection(
                        self.endpoint.host, self.endpoint.port, ssl=context, limit=CHUNK
                    )
            except OSError as error:  # refused, unreachable, no such host: worth a retry
                raise _Retry(str(error) or type(error).__name__) from error
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]


class Transfers:
    """Uploads and downloads for one bucket with one set of keys."""

    def __init__(
        self,
        endpoint: Endpoint,
        signer: Signer,
        connections: int,
        big_upload: Callable[[int, str], Awaitable[None]],
        big: int,
    ) -> None:
        """`big_upload(fd, key)` sends a file of `big` bytes or more (in parts)."""
        self.endpoint = endpoint
        self.signer = signer
        self.connections = connections
        self.big_upload = big_upload
        self.big = big

    # --- what the sync calls (from any thread; the work runs on a loop of its own) ----------

    async def upload(
        self, root: Path, items: Iterator[tuple[str, str]], progress: Progress
    ) -> None:
        """Send each file under `root` to its key. An item is (path in the folder, key). Files
        are opened without following any link on the way (an agent can make links); one that
        is gone, or no longer a plain file, when its turn comes is skipped."""

        async def run(count: Callable[[int], None], stop: threading.Event) -> None:
            with Placer(root, None) as folder:

                async def one(connection: _Connection, item: tuple[str, str]) -> int:
                    return await self._upload_one(connection, folder, item)

                await self._all(items, one, count, stop)

        await self._elsewhere(run, progress)

    async def download(self, items: Iterator[tuple[str, str, str]], progress: Progress) -> None:
        """Fetch each key into its new local file. An item is (key, local path, the SHA-256
        the content should have, or ""): content that does not match is left at
        `path + MISMATCH` instead, and a key S3 does not have leaves no file at all."""

        async def run(count: Callable[[int], None], stop: threading.Event) -> None:
            await self._all(items, self._download_one, count, stop)

        await self._elsewhere(run, progress)

    async def _elsewhere(
        self,
        run: Callable[[Callable[[int], None], threading.Event], Awaitable[None]],
        progress: Progress,
    ) -> None:
        caller = asyncio.get_running_loop()
        stop = threading.Event()
        done = [0, 0]
        said = [time.monotonic()]

        def count(size: int) -> None:  # on the transfer's own loop: one thread
            done[0] += 1
            done[1] += size
            if time.monotonic() - said[0] >= PROGRESS_S:
                said[0] = time.monotonic()
                caller.call_soon_threadsafe(progress, done[0], done[1])

        try:
            await asyncio.to_thread(asyncio.run, run(count, stop))  # type: ignore[arg-type]
        except asyncio.CancelledError:
            stop.set()  # the thread ends after the requests under way
            raise
        progress(done[0], done[1])

    async def _all(
        self,
        items: Iterator[T],
        one: Callable[[_Connection, T], Awaitable[int]],
        count: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        async def worker() -> None:
            connection = _Connection(self.endpoint)
            try:
                while not stop.is_set() and (item := next(items, None)) is not None:
                    count(await self._attempts(connection, one, item))
            finally:
                connection.close()

        workers = [asyncio.create_task(worker()) for _ in range(self.connections)]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # the first failure ends the transfer
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    async def _attempts(
        self, connection: _Connection, one: Callable[[_Connection, T], Awaitable[int]], item: T
    ) -> int:
        for attempt in range(ATTEMPTS):
            try:
                return await one(connection, item)
            except _NETWORK as error:
                connection.close()
                if attempt == ATTEMPTS - 1:
                    raise TransferError(f"S3 could not be reached: {error}") from error
                await asyncio.sleep(min(3.0, 0.1 * 2**attempt) * (0.5 + random.random()))
            except TransferError:
                connection.close()
                raise
        raise AssertionError("unreachable")

    # --- one file ---------------------------------------------------------------------------

    async def _upload_one(
        self, connection: _Connection, folder: Placer, item: tuple[str, str]
    ) -> int:
        relative, key = item
        fd = folder.open_file(relative)
        if fd is None:
            return 0
        try:
            size = os.fstat(fd).st_size
            if size >= self.big:
                await self.big_upload(fd, key)
                return size
            headers = {"content-length": str(size)}
            body: bytes | None = None
            if size <= WHOLE:
                body = _read_all(fd)
                headers["content-length"] = str(len(body))
                checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
                headers["x-amz-checksum-sha256"] = checksum
            else:
                os.lseek(fd, 0, os.SEEK_SET)
            answer = await self._request(connection, "PUT", key, headers, body, fd, size)
            await self._finish(connection, answer, key)
            return len(body) if body is not None else size
        finally:
            os.close(fd)

    async def _download_one(self, connection: _Connection, item: tuple[str, str, str]) -> int:
        key, path, expected = item
        answer = await self._request(connection, "GET", key, {}, None, None, 0)
        if answer.status != 200:
            await self._finish(connection, answer, key, missing_ok=True)  # raises unless 404
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return 0
        reader, _ = await connection.streams()
        digest = hashlib.sha256()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        try:
            size = 0
            async for chunk in _body(reader, answer.headers):
                digest.update(chunk)
                _write_all(fd, chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        self._after(connection, answer)
        if expected and digest.hexdigest() != expected:
            os.replace(path, path + MISMATCH)
        return size

    # --- HTTP -------------------------------------------------------------------------------

    async def _request(
        self,
        connection: _Connection,
        method: str,
        key: str,
        headers: dict[str, str],
        body: bytes | None,
        fd: int | None,
        size: int,
    ) -> _Answer:
        path = self.endpoint.path(key)
        signed = self.signer.sign(method, path, self.endpoint.host_header, headers, _now())
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in signed.items())
        reader, writer = await connection.streams()
        writer.write(head.encode("latin-1") + b"\r\n")
        if body is not None:
            writer.write(body)
        elif fd is not None:
            await _send_file(writer, fd, size)
        async with asyncio.timeout(IDLE_S):
            await writer.drain()
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                answer = _parse_head(raw)
                if answer.status != 100:
                    return answer

    async def _finish(
        self, connection: _Connection, answer: _Answer, key: str, missing_ok: bool = False
    ) -> None:
        """Read the rest of an answer; raise unless it says the request was done."""
        reader, _ = await connection.streams()
        text = b""
        async for chunk in _body(reader, answer.headers):
            text += chunk
            if len(text) > 65536:  # not S3's answer; the connection is not worth keeping
                connection.close()
                break
        else:
            self._after(connection, answer)
        code = _tag(text, "Code") or str(answer.status)
        if answer.status == 200 or (missing_ok and answer.status == 404 and code != "NoSuchBucket"):
            return
        if answer.status >= 500 or answer.status == 429 or code in _RETRIED:
            raise _Retry(f"{code} ({answer.status})")
        message = _tag(text, "Message")
        raise TransferError(f"{code}: {message} ({key})" if message else f"{code} ({key})", code)

    def _after(self, connection: _Connection, answer: _Answer) -> None:
        if answer.headers.get("connection", "").lower() == "close":
            connection.close()


_NETWORK = (
    _Retry,
    ConnectionError,
    TimeoutError,
    ssl.SSLError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
)
_RETRIED = {"RequestTimeout", "SlowDown", "InternalError", "BadDigest", "IncompleteBody"}


async def _send_file(writer: asyncio.StreamWriter, fd: int, size: int) -> None:
    left = size
    while left:
        chunk = os.read(fd, min(CHUNK, left))
        if not chunk:
            raise _Retry("the file got shorter while it was sent")
        writer.write(chunk)
        left -= len(chunk)
        async with asyncio.timeout(IDLE_S):
            await writer.drain()


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    """An answer's body, as it arrives (by Content-Length, chunked, or to the end)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            async with asyncio.timeout(IDLE_S):
                line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as error:
                raise _Retry("a garbled answer") from error
            if size == 0:
                async with asyncio.timeout(IDLE_S):
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                return
            async with asyncio.timeout(IDLE_S):
                data = await reader.readexactly(size + 2)
            yield data[:-2]
        return
    length = headers.get("content-length")
    left = int(length) if length is not None else -1
    while left:
        async with asyncio.timeout(IDLE_S):
            chunk = await reader.read(CHUNK if left < 0 else min(CHUNK, left))
        if not chunk:
            if left < 0:
                return
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(chunk) if left > 0 else 0
        yield chunk


def _parse_head(raw: bytes) -> _Answer:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _Retry(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if not headers.get("content-length", "0").isdigit():
        raise _Retry("a garbled answer")
    status = int(parts[1])
    if status in (204, 304):
        headers["content-length"] = "0"  # never a body
    framed = "content-length" in headers or "transfer-encoding" in headers
    kept = headers.get("connection", "").lower() == "keep-alive"
    if not framed or (parts[0] == "HTTP/1.0" and not kept):
        headers["connection"] = "close"  # the body ends with the connection
    return _Answer(status, headers)


def _tag(xml: bytes, name: str) -> str:
    found = re.search(rf"<{name}>([^<]*)</{name}>".encode(), xml)
    return found.group(1).decode(errors="replace") if found else ""


def _read_all(fd: int) -> bytes:
    pieces = []
    while piece := os.read(fd, WHOLE + 1):
        pieces.append(piece)
    return b"".join(pieces)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _now() -> datetime:
    return datetime.now(UTC)
