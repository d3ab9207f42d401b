"""GitHub's REST API, the few calls the app makes, with GitHub's refusals turned into
sentences for the user (the token is sent to the configured API host and nowhere else)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.errors import AppError, Forbidden, InvalidInput, NotFound, Unauthorized

PER_PAGE = 30


@dataclass(frozen=True)
class Repository:
    full_name: str
    private: bool
    default_branch: str
    description: str
    html_url: str
    can_push: bool


@dataclass(frozen=True)
class RepositoryPage:
    repositories: list[Repository]
    page: int
    has_next: bool


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    title: str


class GitHubError(AppError):
    status = 502
    code = "github_error"


class GitHubAPI:
    def __init__(self, api_url: str, token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "agent-web",
            },
            timeout=20,
        )

    async def __aenter__(self) -> GitHubAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def user(self) -> dict[str, Any]:
        return dict(await self._get("/user"))

    async def repositories(self, search: str = "", page: int = 1) -> RepositoryPage:
        """The user's repositories, newest push first; with `search`, those matching it."""
        params: dict[str, Any] = {"per_page": PER_PAGE, "page": page}
        if search.strip():
            login = (await self.user())["login"]
            params["q"] = f"{search.strip()} user:{login} fork:true"
            response = await self._request("GET", "/search/repositories", params=params)
            items = response.json().get("items", [])
        else:
            params["sort"] = "pushed"
            response = await self._request("GET", "/user/repos", params=params)
            items = response.json()
        return RepositoryPage(
            [_repository(item) for item in items],
            page,
            'rel="next"' in response.headers.get("link", ""),
        )

    async def repository(self, full_name: str) -> Repository:
        return _repository(await self._get(f"/repos/{full_name}"))

    async def branches(self, full_name: str, page: int = 1) -> tuple[list[Branch], bool]:
        response = await self._request(
            "GET", f"/repos/{full_name}/branches", params={"per_page": 100, "page": page}
        )
        branches = [
            Branch(b["name"], b["commit"]["sha"], bool(b.get("protected"))) for b in response.json()
        ]
        return branches, 'rel="next"' in response.headers.get("link", "")

    async def create_pull(
        self, full_name: str, *, title: str, body: str, head: str, base: str
    ) -> PullRequest:
        response = await self._request(
            "POST",
            f"/repos/{full_name}/pulls",
            json={"title": title, "body": body, "head": head, "base": base},
        )
        made = response.json()
        return PullRequest(int(made["number"]), str(made["html_url"]), title)

    async def _get(self, path: str) -> Any:
        return (await self._request("GET", path)).json()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise GitHubError(f"GitHub could not be reached: {error.__class__.__name__}.") from None
        if response.status_code < 400:
            return response
        raise _refusal(response)


def _repository(item: dict[str, Any]) -> Repository:
    permissions = item.get("permissions") or {}
    return Repository(
        full_name=str(item["full_name"]),
        private=bool(item.get("private")),
        default_branch=str(item.get("default_branch") or "main"),
        description=str(item.get("description") or ""),
        html_url=str(item.get("html_url") or ""),
        can_push=bool(permissions.get("push")),
    )


def _refusal(response: httpx.Response) -> AppError:
    """GitHub's own words, under the status the user's request deserves."""
    try:
        body = response.json()
        message = str(body.get("message") or "")
        details = [str(e.get("message")) for e in body.get("errors", []) if e.get("message")]
    except ValueError:
        message, details = response.text[:200], []
    said = "; ".join([message, *details]).strip("; ") or f"HTTP {response.status_code}"
    if response.status_code == 401:
        return Unauthorized(f"GitHub no longer accepts the link ({said}): link GitHub again.")
    if response.status_code == 403:
        return Forbidden(f"GitHub refused: {said}.")
    if response.status_code == 404:
        return NotFound("GitHub has no such repository or branch (or it is not yours to see).")
    if response.status_code == 422:
        return InvalidInput(f"GitHub refused: {said}.")
    return GitHubError(f"GitHub answered {response.status_code}: {said}.")
