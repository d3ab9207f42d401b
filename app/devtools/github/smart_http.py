"""Git's smart HTTP protocol at `/<owner>/<repo>.git/...`, served by `git http-backend` (CGI).

Authentication is GitHub's: HTTP Basic with the token as password (any user name, such as
`x-access-token`) or `Authorization: Bearer`. Without credentials, or with a wrong token, the
answer is 401 with `WWW-Authenticate: Basic realm="GitHub"` (so git asks its credential
helpers) unless the repository is public and only read; a private repository the token may not
see is "Repository not found." (404); pushing needs the owner's token with `repo` scope (403
otherwise). The request body streams into the CGI process and its output streams back, so
large pushes and clones never sit in memory.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from app.devtools.github.rest import Anonymous, token_from_header
from app.devtools.github.store import Repo, Store, git_env

logger = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")
_PASSED_HEADERS = ("content-encoding", "git-protocol", "user-agent", "accept")
_MAX_CGI_HEADER = 64 * 1024


def http_backend() -> str:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return str(Path(exec_path) / "git-http-backend")


def unauthorized() -> Response:
    return PlainTextResponse(
        "Invalid username or token. Password authentication is not supported for Git operations.\n",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
    )


class SmartHttp:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.backend = http_backend()

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{owner}/{repo}/info/refs", self.serve, methods=["GET"]),
            Route("/{owner}/{repo}/git-upload-pack", self.serve, methods=["POST"]),
            Route("/{owner}/{repo}/git-receive-pack", self.serve, methods=["POST"]),
        ]

    async def serve(self, request: Request) -> Response:
        owner, name = request.path_params["owner"], request.path_params["repo"]
        repo = self.store.repo(owner, name.removesuffix(".git"))
        path = request.url.path
        service = request.query_params.get("service") or path.rsplit("/", 1)[-1]
        push = service == "git-receive-pack"
        caller = token_from_header(self.store, request.headers.get("authorization"))
        if caller is None:
            return unauthorized()
        if isinstance(caller, Anonymous):
            if repo is None or repo.private or push:
                return unauthorized()
        elif repo is None or not caller.can_read(repo):
            return PlainTextResponse("Repository not found.\n", status_code=404)
        elif push and not caller.can_write(repo):
            return PlainTextResponse(
                f"Permission to {repo.full_name}.git denied to {caller.login}.\n", status_code=403
            )
        assert repo is not None
        rest = path.split("/", 3)[3]  # "/owner/repo.git/rest": the part after the repository
        user = None if isinstance(caller, Anonymous) else caller.login
        return CgiResponse(self, repo, rest, user, pushed=push and request.method == "POST")

    def environment(
        self, request: Request, repo: Repo, rest: str, user: str | None
    ) -> dict[str, str]:
        env = git_env(self.store.root)
        env.update(
            GIT_PROJECT_ROOT=str(self.store.root),
            GIT_HTTP_EXPORT_ALL="1",
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL="HTTP/1.1",
            REQUEST_METHOD=request.method,
            PATH_INFO=f"/{repo.owner}/{repo.name}.git/{rest}",
            QUERY_STRING=request.url.query,
            CONTENT_TYPE=request.headers.get("content-type", ""),
            REMOTE_ADDR=request.client.host if request.client else "127.0.0.1",
        )
        if "content-length" in request.headers:
            env["CONTENT_LENGTH"] = request.headers["content-length"]
        if user is not None:
            env["REMOTE_USER"] = user
        for header in _PASSED_HEADERS:  # never Authorization: hooks must not see tokens
            if header in request.headers:
                env["HTTP_" + header.upper().replace("-", "_")] = request.headers[header]
        return env


class CgiResponse(Response):
    """Runs `git http-backend` for one request, streaming the body in and the answer out."""

    def __init__(
        self, smart: SmartHttp, repo: Repo, rest: str, user: str | None, *, pushed: bool
    ) -> None:
        super().__init__()
        self.smart, self.repo, self.rest, self.user, self.pushed = smart, repo, rest, user, pushed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        env = self.smart.environment(request, self.repo, self.rest, self.user)
        process = await anyio.open_process([self.smart.backend], env=env, cwd=self.smart.store.root)
        assert process.stdin and process.stdout and process.stderr
        async with process, anyio.create_task_group() as tasks:
            tasks.start_soon(_feed, request, process.stdin)
            tasks.start_soon(_log_stderr, process.stderr)
            status, headers, first = await _cgi_headers(process.stdout)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in process.stdout:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            code = await process.wait()
        if code != 0:
            logger.warning("git http-backend exited with %s for %s", code, self.rest)
        if self.pushed and code == 0:
            with self.smart.store.lock:
                self.repo.pushed_at = time.time()


async def _feed(request: Request, stdin: ByteSendStream) -> None:
    try:
        async for chunk in request.stream():
            if chunk:
                await stdin.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the backend stopped reading (an error it reports on stdout)
    finally:
        await stdin.aclose()


async def _log_stderr(stderr: ByteReceiveStream) -> None:
    async for chunk in stderr:
        logger.info("git http-backend: %s", chunk.decode(errors="replace").rstrip())


async def _cgi_headers(
    stdout: ByteReceiveStream,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The CGI header block: (status, headers, the body's first bytes already read)."""
    buffer = b""
    while True:
        for separator in (b"\r\n\r\n", b"\n\n"):
            if separator in buffer:
                head, _, body = buffer.partition(separator)
                return (*_parse_head(head), body)
        if len(buffer) > _MAX_CGI_HEADER:
            raise RuntimeError("git http-backend: header block too long")
        try:
            buffer += await stdout.receive()
        except anyio.EndOfStream:
            return (*_parse_head(buffer), b"") if buffer else (502, [], b"")


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    status, headers = 200, []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        if name.strip().lower() == b"status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip().lower(), value.strip()))
    return status, headers
