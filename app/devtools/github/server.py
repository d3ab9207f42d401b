"""The stand-in on a background uvicorn thread, and the ASGI app that records every request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.devtools.github.rest import RestApi, error
from app.devtools.github.smart_http import SmartHttp
from app.devtools.github.store import Repo, Store
from app.devtools.github.web import WebPages, not_found
from app.devtools.threaded import ThreadedServer


class _Recorder:
    """Appends method, path, query, Authorization value and status of every request."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app, self.store = app, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "authorization": headers.get("authorization"),
            "status": None,
        }
        with self.store.lock:
            self.store.requests.append(entry)

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, record_status)


def create_app(store: Store) -> ASGIApp:
    web = WebPages(store)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if request.url.path.startswith("/api/"):
            return error(status, "Not Found" if status in (404, 405) else "Server Error")
        return not_found()

    app = Starlette(
        routes=[
            Mount("/api/v3", routes=RestApi(store).routes),
            *web.routes,
            *SmartHttp(store).routes,
            *web.page_routes,
        ],
        exception_handlers={HTTPException: http_error},
    )
    return _Recorder(app, store)


class GitHubStandIn:
    """GitHub (Enterprise Server-style: the API under /api/v3) for tests; see the package doc."""

    def __init__(
        self, root: Path, host: str = "127.0.0.1", port: int = 0, *, app_name: str = "Agent Web"
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.store = Store(root.resolve(), app_name)
        self._serving = ThreadedServer("GitHub stand-in", host, port)

    # ------------------------------------------------------------------ serving

    def start(self) -> str:
        """Bind, serve on a daemon thread, and return the base URL (the web URL)."""
        self.store.web_url = self._serving.start(create_app(self.store))
        return self.store.web_url

    def stop(self) -> None:
        """Shut down and wait for the thread; safe to call twice."""
        self._serving.stop()

    def __enter__(self) -> GitHubStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def web_url(self) -> str:
        """Like "http://127.0.0.1:54321": the app's GITHUB_URL."""
        return self._serving.base_url

    @property
    def api_url(self) -> str:
        """The web URL + "/api/v3", as on GitHub Enterprise Server: the app's GITHUB_API_URL."""
        return self.web_url + "/api/v3"

    # ------------------------------------------------------------------ the OAuth app

    @property
    def client_id(self) -> str:
        return self.store.client_id

    @property
    def client_secret(self) -> str:
        return self.store.client_secret

    @property
    def callback_url(self) -> str | None:
        """The OAuth app's registered callback URL; None (the default) accepts any."""
        return self.store.callback_url

    @callback_url.setter
    def callback_url(self, url: str | None) -> None:
        self.store.callback_url = url

    @property
    def code_lifetime_s(self) -> float:
        """How long an authorization code may wait to be exchanged (GitHub: 10 minutes)."""
        return self.store.code_lifetime_s

    @code_lifetime_s.setter
    def code_lifetime_s(self, seconds: float) -> None:
        self.store.code_lifetime_s = seconds

    @property
    def signed_in_as(self) -> str | None:
        """Who is signed in at GitHub in "the browser" (the authorize page's user)."""
        return self.store.signed_in_as

    @signed_in_as.setter
    def signed_in_as(self, login: str | None) -> None:
        if login is not None and self.store.user(login) is None:
            raise ValueError(f"no user {login!r}")
        self.store.signed_in_as = login

    # ------------------------------------------------------------------ users, tokens, repos

    def add_user(self, login: str) -> None:
        self.store.add_user(login)

    def token_for(self, login: str, scopes: tuple[str, ...] = ("repo",)) -> str:
        """A token as the OAuth flow would issue, for tests that skip the flow."""
        return self.store.issue_token(login, tuple(scopes))

    def revoke(self, token: str) -> None:
        """The token stops working (as when the user revokes the app)."""
        self.store.revoke(token)

    def add_repo(
        self,
        owner: str,
        name: str,
        files: dict[str, str],
        *,
        default_branch: str = "main",
        private: bool = True,
        branches: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """A bare repository under root: one commit of `files` on the default branch (none if
        empty), and each of `branches` one commit on top of it adding or replacing files (or,
        given no files, the default branch's commit itself)."""
        self.store.add_repo(
            owner, name, files, default_branch=default_branch, private=private, branches=branches
        )

    def protect(self, owner: str, repo: str, branch: str) -> None:
        """Pushes to the branch fail as on GitHub: `GH006: Protected branch update failed`."""
        self.store.protect(self._repo(owner, repo), branch)

    def head_of(self, owner: str, repo: str, branch: str) -> str | None:
        return self.store.head_of(self._repo(owner, repo), branch)

    def file_at(self, owner: str, repo: str, branch: str, path: str) -> str | None:
        return self.store.file_at(self._repo(owner, repo), branch, path)

    def repo_path(self, owner: str, repo: str) -> Path:
        """The bare repository's folder."""
        return self._repo(owner, repo).path

    def _repo(self, owner: str, name: str) -> Repo:
        repo = self.store.repo(owner, name)
        if repo is None:
            raise KeyError(f"no repository {owner}/{name}")
        return repo

    # ------------------------------------------------------------------ records

    @property
    def pulls(self) -> list[dict[str, Any]]:
        """Every pull request created, in order, as the API returned it."""
        with self.store.lock:
            return list(self.store.pulls)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request: method, path, query, authorization (the header's value), status."""
        with self.store.lock:
            return [dict(r) for r in self.store.requests]
