"""GitHub: link an account (OAuth's web flow; the callback is on the seed's path, or, on
AgentCore, through AgentCore Identity with the static site's return page), list repositories
and branches, and clone one into a new project with git's progress."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from app.agent.schemas import Ident, NewProject, ProjectView, Text
from app.api import frames
from app.api.deps import BearerToken, CurrentUser, Engine, ServicesDep
from app.api.streaming import SSE_HEADERS
from app.errors import AppError, InvalidInput
from app.github.git import Progress
from app.github.identity import workload_token_of
from app.github.oauth import CALLBACK_PATH
from app.github.service import GitHubService, repository_name

router = APIRouter(tags=["github"])


def current_github(services: ServicesDep) -> GitHubService:
    return services.github


GitHub = Annotated[GitHubService, Depends(current_github)]


class LinkState(BaseModel):
    configured: bool
    linked: bool
    login: str
    scopes: str
    web_url: str
    asks_for: str


class AuthorizeLink(BaseModel):
    url: str = Field(description="where to send the browser; empty when already linked")
    login: str = Field("", description="the account linked at once (AgentCore held a token)")


class IdentityReturn(BaseModel):
    session_id: str = Field(min_length=1, max_length=1024, description="AgentCore's sessionUri")
    state: str = Field(min_length=1, max_length=400, description="the state sent back with it")


class Linked(BaseModel):
    login: str


class RepositoryView(BaseModel):
    full_name: str
    private: bool
    default_branch: str
    description: str
    html_url: str
    can_push: bool


class Repositories(BaseModel):
    repositories: list[RepositoryView]
    page: int
    has_next: bool


class BranchView(BaseModel):
    name: str
    sha: str
    protected: bool


class Branches(BaseModel):
    branches: list[BranchView]
    page: int
    has_next: bool


class CloneRequest(BaseModel):
    repository: Text | None = Field(None, max_length=201, description="owner/name")
    git_url: Text | None = Field(None, max_length=500, description="or its URL (seed)")
    branch: Text | None = Field(None, max_length=200, description="default: the repository's")
    new_branch: Text | None = Field(None, max_length=200, description="made from `branch`")
    project: Text | None = Field(None, max_length=100, description="default: the repo's name")


class Cloned(BaseModel):
    project: ProjectView
    repository: str
    branch: str


@router.get("/github/status")
async def status(user: CurrentUser, github: GitHub) -> LinkState:
    """Whether GitHub is set up here, and whether (as whom) this user linked it."""
    return LinkState(**asdict(await github.status(user)))


@router.get("/github/authorize")
async def authorize(user: CurrentUser, github: GitHub, request: Request) -> AuthorizeLink:
    """Where to send the browser to link GitHub (valid for ten minutes). Through AgentCore
    Identity (GITHUB_PROVIDER_NAME set), the request must carry the workload access token
    AgentCore adds (`WorkloadAccessToken`, `X-Amz-Bedrock-AgentCore-Identity-WAT` or
    `x-amzn-bedrock-agentcore-runtime-workload-accesstoken`); when AgentCore already holds the
    user's token, the account is linked at once and `login` says as whom."""
    url, login = await github.start_link(
        user, _callback(request), workload_token_of(request.headers)
    )
    return AuthorizeLink(url=url, login=login)


@router.post("/github/identity/complete")
async def identity_complete(
    body: IdentityReturn, user: CurrentUser, jwt: BearerToken, github: GitHub, request: Request
) -> Linked:
    """The static site's return page, signed in, after consent at GitHub through AgentCore
    Identity: the state must be this user's; the session is confirmed for this user's token."""
    login = await github.complete_identity(
        user, body.state, body.session_id, jwt, workload_token_of(request.headers)
    )
    return Linked(login=login)


@router.get(CALLBACK_PATH, response_class=HTMLResponse)
async def callback(
    github: GitHub,
    request: Request,
    code: Annotated[str, Query(max_length=200)] = "",
    state: Annotated[str, Query(max_length=400)] = "",
) -> HTMLResponse:
    """GitHub sends the browser here; the `state` says whose link it is."""
    try:
        if not code:
            raise InvalidInput("GitHub sent no code: the link was cancelled.")
        login = await github.complete(state, code, _callback(request))
    except AppError as error:
        return _page("GitHub was not linked", error.message, status=error.status)
    return _page("GitHub is linked", f"Linked as {login}. You can close this tab.")


@router.delete("/github/link", status_code=204)
async def unlink(user: CurrentUser, github: GitHub) -> Response:
    await github.unlink(user)
    return Response(status_code=204)


@router.get("/github/repositories")
async def repositories(
    user: CurrentUser,
    github: GitHub,
    search: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Repositories:
    """The linked account's repositories (30 a page), or those matching `search`."""
    found = await github.repositories(user, search, page)
    return Repositories(
        repositories=[RepositoryView(**asdict(r)) for r in found.repositories],
        page=found.page,
        has_next=found.has_next,
    )


@router.get("/github/repositories/{owner}/{name}/branches")
async def branches(
    owner: Ident,
    name: Ident,
    user: CurrentUser,
    github: GitHub,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Branches:
    found, has_next = await github.branches(user, f"{owner}/{name}", page)
    return Branches(branches=[BranchView(**asdict(b)) for b in found], page=page, has_next=has_next)


@router.post(
    "/workspace/clone-git",
    status_code=201,
    responses={201: {"content": {"text/event-stream": {}}}},
)
async def clone(
    body: CloneRequest, user: CurrentUser, github: GitHub, engine: Engine, request: Request
) -> Any:
    """Clone a repository into a new project. With `Accept: text/event-stream`, git's
    progress streams as `progress` frames, then `cloned` (or `error`)."""
    full_name = _full_name(body, github.web_url)
    name = body.project or full_name.split("/")[1]
    project = await engine.create_project(user, NewProject(name=name))
    destination = engine.project_dir(user, project.project_id)
    updates: asyncio.Queue[Progress] = asyncio.Queue()

    async def run() -> Cloned:
        branch = await github.clone(
            user,
            project.project_id,
            full_name,
            body.branch,
            destination,
            updates.put_nowait,
            body.new_branch,
        )
        return Cloned(project=project, repository=full_name, branch=branch)

    if "text/event-stream" not in request.headers.get("accept", ""):
        return await run()
    return StreamingResponse(
        _progress(asyncio.ensure_future(run()), updates),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _progress(
    job: asyncio.Future[Cloned], updates: asyncio.Queue[Progress]
) -> AsyncIterator[bytes]:
    try:
        while not job.done():
            getter = asyncio.ensure_future(updates.get())
            waiting: set[asyncio.Future[Any]] = {job, getter}
            await asyncio.wait(waiting, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield frames.sse_note({"type": "progress", **asdict(getter.result())})
            else:
                getter.cancel()
                yield frames.KEEPALIVE
        while not updates.empty():
            yield frames.sse_note({"type": "progress", **asdict(updates.get_nowait())})
        try:
            cloned = job.result()
        except AppError as error:
            yield frames.sse_note({"type": "error", "code": error.code, "message": error.message})
            return
        yield frames.sse_note({"type": "cloned", **cloned.model_dump(mode="json")})
    finally:
        job.cancel()


def _full_name(body: CloneRequest, web_url: str) -> str:
    if body.repository:
        return repository_name(body.repository.strip())
    url = (body.git_url or "").strip().removesuffix(".git")
    found = re.match(re.escape(web_url) + r"/([^/]+/[^/]+)$", url)
    if found is None:
        raise InvalidInput(f"Give `repository` as owner/name, or a `git_url` on {web_url}.")
    return repository_name(found[1])


def _callback(request: Request) -> str:
    """This backend's callback URL, as the browser reaches it (register it at GitHub)."""
    return str(request.base_url).rstrip("/") + CALLBACK_PATH


def _page(title: str, message: str, status: int = 200) -> HTMLResponse:
    body = (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p id='message'>{html.escape(message)}</p>"
    )
    return HTMLResponse(body, status_code=status)
