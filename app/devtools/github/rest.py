"""GitHub's REST API (the subset the app uses), served under `/api/v3` as GitHub Enterprise
Server does: the signed-in user, their repositories, search, branches and pull requests.

Shapes and status codes are GitHub's: `Bad credentials` for a wrong token, 404 (never 403) for
a private repository the caller may not see, 422 `Validation Failed` with `errors`, `Link`
headers for paging, `X-OAuth-Scopes` on every authenticated answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.devtools.github.store import Repo, Store, Token, User, now_iso

DOCS = "https://docs.github.com/rest"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


class Anonymous:
    """No Authorization header: public data only, as on GitHub."""


ANONYMOUS = Anonymous()


def token_from_header(store: Store, header: str | None) -> Token | Anonymous | None:
    """The caller behind an Authorization header: a token, ANONYMOUS, or None for a bad one.

    GitHub takes `Bearer <t>`, `token <t>`, and Basic with the token as password (any user
    name) or as user name (with an empty or `x-oauth-basic` password)."""
    if not header:
        return ANONYMOUS
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        value = password if password and password != "x-oauth-basic" else user
    elif scheme.lower() not in ("bearer", "token"):
        return None
    return store.token(value) if value else None


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"message": message, **extra, "documentation_url": DOCS, "status": str(status)},
        status_code=status,
    )


def validation_failed(*errors: dict[str, str]) -> JSONResponse:
    return error(422, "Validation Failed", errors=list(errors))


def _int_param(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return default


def paginate(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` and GitHub's Link header (prev, next, last, first as they apply)."""
    per_page = min(max(_int_param(request, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
    page = max(_int_param(request, "page", 1), 1)
    last = max(math.ceil(len(items) / per_page), 1)

    def link(number: int, rel: str) -> str:
        return f'<{request.url.include_query_params(page=number)}>; rel="{rel}"'

    links = []
    if page > 1:
        links.append(link(min(page - 1, last), "prev"))
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links.append(link(1, "first"))
    headers = {"Link": ", ".join(links)} if links else {}
    return items[(page - 1) * per_page : page * per_page], headers


class RestApi:
    """The routes, bound to a store; `routes` goes under a `/api/v3` mount."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.root),
            Route("/user", self.get_user),
            Route("/user/repos", self.list_repos),
            Route("/search/repositories", self.search_repos),
            Route("/repos/{owner}/{repo}", self.get_repo),
            Route("/repos/{owner}/{repo}/branches", self.list_branches),
            Route("/repos/{owner}/{repo}/branches/{branch:path}", self.get_branch),
            Route("/repos/{owner}/{repo}/pulls", self.list_pulls, methods=["GET"]),
            Route("/repos/{owner}/{repo}/pulls", self.create_pull, methods=["POST"]),
            Route("/repos/{owner}/{repo}/pulls/{number:int}", self.get_pull),
        ]

    # ------------------------------------------------------------------ plumbing

    def _caller(self, request: Request) -> Token | Anonymous | Response:
        caller = token_from_header(self.store, request.headers.get("authorization"))
        return error(401, "Bad credentials") if caller is None else caller

    def _user_caller(self, request: Request) -> Token | Response:
        caller = self._caller(request)
        if isinstance(caller, Anonymous):
            return error(401, "Requires authentication")
        return caller

    def _json(
        self,
        caller: Token | Anonymous,
        data: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        headers = dict(headers or {})
        if isinstance(caller, Token):
            headers["X-OAuth-Scopes"] = ", ".join(caller.scopes)
            headers["X-Accepted-OAuth-Scopes"] = "repo"
        return JSONResponse(data, status_code=status, headers=headers)

    def _visible_repo(self, request: Request, caller: Token | Anonymous) -> Repo | Response:
        repo = self.store.repo(request.path_params["owner"], request.path_params["repo"])
        readable = repo is not None and (
            not repo.private or (isinstance(caller, Token) and caller.can_read(repo))
        )
        return repo if repo is not None and readable else error(404, "Not Found")

    # ------------------------------------------------------------------ shapes

    def user_json(self, user: User) -> dict[str, Any]:
        web = self.store.web_url
        return {
            "login": user.login,
            "id": user.id,
            "node_id": _node_id("U", user.id),
            "avatar_url": f"{web}/avatars/u/{user.id}",
            "url": f"{self.store.api_url}/users/{user.login}",
            "html_url": f"{web}/{user.login}",
            "type": "User",
            "site_admin": False,
        }

    def repo_json(self, repo: Repo, caller: Token | Anonymous) -> dict[str, Any]:
        web, api = self.store.web_url, self.store.api_url
        owner = self.store.user(repo.owner)
        owns = isinstance(caller, Token) and caller.owns(repo)
        return {
            "id": repo.id,
            "node_id": _node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "owner": self.user_json(owner) if owner else {"login": repo.owner},
            "html_url": f"{web}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": f"{api}/repos/{repo.full_name}",
            "clone_url": f"{web}/{repo.full_name}.git",
            "default_branch": repo.default_branch,
            "archived": False,
            "disabled": False,
            "created_at": now_iso(repo.created_at),
            "updated_at": now_iso(repo.pushed_at),
            "pushed_at": now_iso(repo.pushed_at),
            "permissions": {
                "admin": owns,
                "maintain": owns,
                "push": owns,
                "triage": owns,
                "pull": True,
            },
        }

    # ------------------------------------------------------------------ endpoints

    async def root(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        api = self.store.api_url
        return self._json(
            caller,
            {
                "current_user_url": f"{api}/user",
                "repository_url": f"{api}/repos/{{owner}}/{{repo}}",
                "user_repositories_url": f"{api}/user/repos",
            },
        )

    async def get_user(self, request: Request) -> Response:
        caller = self._user_caller(request)
        if isinstance(caller, Response):
            return caller
        user = self.store.user(caller.login)
        assert user is not None
        return self._json(caller, {**self.user_json(user), "name": user.name, "email": None})

    async def list_repos(self, request: Request) -> Response:
        """`GET /user/repos`: the caller's repositories (they own them all here)."""
        caller = self._user_caller(request)
        if isinstance(caller, Response):
            return caller
        repos = [r for r in self.store.repos_of(caller.login) if caller.can_read(r)]
        visibility = request.query_params.get("visibility", "all")
        if visibility in ("public", "private"):
            repos = [r for r in repos if r.private == (visibility == "private")]
        sort = request.query_params.get("sort", "full_name")
        keys = {"created": "created_at", "updated": "pushed_at", "pushed": "pushed_at"}
        if sort in keys:
            repos.sort(key=lambda r: (getattr(r, keys[sort]), r.id))
            descending = True
        else:
            repos.sort(key=lambda r: r.full_name.lower())
            descending = False
        direction = request.query_params.get("direction")
        if direction in ("asc", "desc"):
            descending = direction == "desc"
        if descending:
            repos.reverse()
        page, headers = paginate(request, repos)
        return self._json(caller, [self.repo_json(r, caller) for r in page], headers=headers)

    async def search_repos(self, request: Request) -> Response:
        """`GET /search/repositories?q=words user:login is:private`: names matching all words."""
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        query = request.query_params.get("q", "").strip()
        if not query:
            return validation_failed({"resource": "Search", "field": "q", "code": "missing"})
        words, owners, visibility = [], [], None
        for term in query.split():
            key, sep, value = term.partition(":")
            if sep and key.lower() in ("user", "org"):
                owners.append(value.lower())
            elif sep and key.lower() == "is" and value.lower() in ("public", "private"):
                visibility = value.lower()
            elif sep and key.lower() in ("in", "fork", "archived", "sort"):
                continue
            else:
                words.append(term.lower())

        def matches(repo: Repo) -> bool:
            readable = not repo.private or (isinstance(caller, Token) and caller.can_read(repo))
            return (
                readable
                and (not owners or repo.owner.lower() in owners)
                and (visibility is None or repo.private == (visibility == "private"))
                and all(word in repo.name.lower() for word in words)
            )

        found = sorted(
            (r for r in self.store.all_repos() if matches(r)),
            key=lambda r: (r.name.lower() not in words, r.full_name.lower()),
        )
        page, headers = paginate(request, found)
        items = [{**self.repo_json(r, caller), "score": 1.0} for r in page]
        body = {"total_count": len(found), "incomplete_results": False, "items": items}
        return self._json(caller, body, headers=headers)

    async def get_repo(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        return self._json(caller, self.repo_json(repo, caller))

    def _branch_json(self, repo: Repo, name: str, sha: str) -> dict[str, Any]:
        return {
            "name": name,
            "commit": {
                "sha": sha,
                "url": f"{self.store.api_url}/repos/{repo.full_name}/commits/{sha}",
            },
            "protected": name in repo.protected,
        }

    async def list_branches(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        branches = await anyio.to_thread.run_sync(self.store.branches, repo)
        if request.query_params.get("protected") in ("true", "false"):
            wanted = request.query_params["protected"] == "true"
            branches = [b for b in branches if (b[0] in repo.protected) == wanted]
        page, headers = paginate(request, branches)
        return self._json(caller, [self._branch_json(repo, *b) for b in page], headers=headers)

    async def get_branch(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        name = request.path_params["branch"]
        sha = await anyio.to_thread.run_sync(self.store.head_of, repo, name)
        if sha is None:
            return error(404, "Branch not found")
        return self._json(caller, self._branch_json(repo, name, sha))

    # ------------------------------------------------------------------ pull requests

    def _pulls_of(self, repo: Repo) -> list[dict[str, Any]]:
        with self.store.lock:
            return [p for p in self.store.pulls if p["base"]["repo"]["id"] == repo.id]

    async def list_pulls(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        state = request.query_params.get("state", "open")
        head, base = request.query_params.get("head"), request.query_params.get("base")
        pulls = [
            p
            for p in reversed(self._pulls_of(repo))
            if (state == "all" or p["state"] == state)
            and (head is None or p["head"]["label"].lower() == head.lower())
            and (base is None or p["base"]["ref"] == base)
        ]
        page, headers = paginate(request, pulls)
        return self._json(caller, page, headers=headers)

    async def get_pull(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        number = request.path_params["number"]
        for pull in self._pulls_of(repo):
            if pull["number"] == number:
                return self._json(caller, pull)
        return error(404, "Not Found")

    async def create_pull(self, request: Request) -> Response:
        """`POST /repos/{owner}/{repo}/pulls` between two branches of the repository."""
        caller = self._user_caller(request)
        if isinstance(caller, Response):
            return caller
        repo = self._visible_repo(request, caller)
        if isinstance(repo, Response):
            return repo
        if not caller.can_open_pull(repo):
            return error(404, "Not Found")
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "Problems parsing JSON")
        if not isinstance(body, dict):
            return error(400, "Problems parsing JSON")
        for field_name in ("title", "head", "base"):
            if not isinstance(body.get(field_name), str) or not body[field_name].strip():
                return validation_failed(
                    {"resource": "PullRequest", "code": "missing_field", "field": field_name}
                )
        head_owner, _, head = str(body["head"]).rpartition(":")
        base = str(body["base"])
        if head_owner and head_owner.lower() != repo.owner.lower():
            return validation_failed(
                {"resource": "PullRequest", "field": "head", "code": "invalid"}
            )
        return await anyio.to_thread.run_sync(self._open_pull, caller, repo, body, head, base)

    def _open_pull(
        self, caller: Token, repo: Repo, body: dict[str, Any], head: str, base: str
    ) -> Response:
        store = self.store
        base_sha = store.head_of(repo, base)
        head_sha = store.head_of(repo, head)
        if base_sha is None:
            return validation_failed(
                {"resource": "PullRequest", "field": "base", "code": "invalid"}
            )
        if head_sha is None:
            return validation_failed(
                {"resource": "PullRequest", "field": "head", "code": "invalid"}
            )
        label = f"{repo.owner}:{head}"
        if store.commits_between(repo, base, head) == 0:
            message = f"No commits between {base} and {head}"
            return validation_failed(
                {"resource": "PullRequest", "code": "custom", "message": message}
            )
        user = store.user(caller.login)
        assert user is not None
        repo_json = self.repo_json(repo, caller)
        owner_json = repo_json["owner"]
        with store.lock:
            if any(
                p["state"] == "open" and p["head"]["ref"] == head and p["base"]["ref"] == base
                for p in self._pulls_of(repo)
            ):
                message = f"A pull request already exists for {label}."
                return validation_failed(
                    {"resource": "PullRequest", "code": "custom", "message": message}
                )
            number = len(self._pulls_of(repo)) + 1
            pull_id = store.new_id()
            stamp = now_iso(time.time())
            html_url = f"{store.web_url}/{repo.full_name}/pull/{number}"
            pull = {
                "url": f"{store.api_url}/repos/{repo.full_name}/pulls/{number}",
                "id": pull_id,
                "node_id": _node_id("PR", pull_id),
                "html_url": html_url,
                "diff_url": f"{html_url}.diff",
                "patch_url": f"{html_url}.patch",
                "number": number,
                "state": "open",
                "locked": False,
                "title": body["title"],
                "user": self.user_json(user),
                "body": body.get("body"),
                "created_at": stamp,
                "updated_at": stamp,
                "closed_at": None,
                "merged_at": None,
                "draft": bool(body.get("draft", False)),
                "merged": False,
                "maintainer_can_modify": bool(body.get("maintainer_can_modify", False)),
                "head": {
                    "label": label,
                    "ref": head,
                    "sha": head_sha,
                    "user": owner_json,
                    "repo": repo_json,
                },
                "base": {
                    "label": f"{repo.owner}:{base}",
                    "ref": base,
                    "sha": base_sha,
                    "user": owner_json,
                    "repo": repo_json,
                },
            }
            store.pulls.append(pull)
        return self._json(caller, pull, 201, {"Location": pull["url"]})


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode().rstrip("=")
