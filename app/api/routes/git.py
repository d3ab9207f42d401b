"""A project's git repository from the page or any client: status, diff, log, commit (all or
chosen files), discard, branches, push to GitHub and pull requests (on the seed's paths where
it had them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.agent.schemas import Ident, Text
from app.api.deps import CurrentUser, Engine
from app.api.routes.github import GitHub
from app.errors import InvalidInput

router = APIRouter(tags=["git"])


ProjectId = Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
# A path as git lists it, relative to the project; checked (inside it, no option) before git runs.
ChangedPath = Annotated[str, Field(min_length=1, max_length=1000)]
MAX_PATHS = 1000


class FileChangeView(BaseModel):
    path: str
    staged: str
    unstaged: str
    origin: str = Field("", description="a rename's old path")


class StatusView(BaseModel):
    branch: str
    files: list[FileChangeView]


class CommitView(BaseModel):
    sha: str
    author: str
    date: int
    subject: str


class Log(BaseModel):
    commits: list[CommitView]


class Diff(BaseModel):
    path: str
    diff: str


class CommitRequest(BaseModel):
    project_id: Ident
    message: Text = Field(..., min_length=1, max_length=10_000)
    paths: list[ChangedPath] | None = Field(
        None,
        max_length=MAX_PATHS,
        description="commit only these changed files, as they are on disk (anything else, even "
        "if staged, stays uncommitted); default: stage and commit every change",
    )


class Committed(BaseModel):
    sha: str


class DiscardRequest(BaseModel):
    project_id: Ident
    paths: list[ChangedPath] | None = Field(
        None, max_length=MAX_PATHS, description="changed files, as the status lists them"
    )
    all: bool = Field(False, description="every change instead of `paths`")


class Discarded(BaseModel):
    paths: list[str]


class BranchRequest(BaseModel):
    project_id: Ident
    name: Text = Field(..., min_length=1, max_length=200)
    create: bool = False


class PushRequest(BaseModel):
    project_id: Ident
    branch: Text | None = Field(None, max_length=200, description="default: the current one")


class Pushed(BaseModel):
    repository: str
    branch: str


class PullRequestRequest(BaseModel):
    project_id: Ident
    title: Text = Field(..., min_length=1, max_length=256)
    body: Text = Field("", max_length=60_000)
    head: Text | None = Field(None, max_length=200, description="default: the current branch")
    base: Text | None = Field(None, max_length=200, description="default: the default branch")


class PullRequestView(BaseModel):
    number: int
    html_url: str
    title: str


@router.get("/git/status")
async def status(
    project_id: ProjectId, user: CurrentUser, engine: Engine, github: GitHub
) -> StatusView:
    found = await github.repos.status(await engine.project_place(user, project_id))
    return StatusView(branch=found.branch, files=[FileChangeView(**asdict(f)) for f in found.files])


@router.get("/git/log")
async def log(
    project_id: ProjectId,
    user: CurrentUser,
    engine: Engine,
    github: GitHub,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Log:
    commits = await github.repos.log(await engine.project_place(user, project_id), limit)
    return Log(commits=[CommitView(**asdict(c)) for c in commits])


@router.get("/git/diff")
async def diff(
    project_id: ProjectId,
    path: Annotated[str, Query(min_length=1, max_length=1000)],
    user: CurrentUser,
    engine: Engine,
    github: GitHub,
) -> Diff:
    return Diff(
        path=path, diff=await github.repos.diff(await engine.project_place(user, project_id), path)
    )


@router.post("/git/commit", status_code=201)
async def commit(
    body: CommitRequest, user: CurrentUser, engine: Engine, github: GitHub
) -> Committed:
    """Commit every change, or only the chosen paths, as the user (their GitHub login when
    linked)."""
    name, email = await github.author(user)
    where = await engine.project_place(user, body.project_id)
    sha = await github.repos.commit(where, body.message, name, email, paths=body.paths)
    await engine.project_changed(where)
    return Committed(sha=sha)


@router.post("/git/discard")
async def discard(
    body: DiscardRequest, user: CurrentUser, engine: Engine, github: GitHub
) -> Discarded:
    """Throw away changes, with no undo: a tracked file goes back to the last commit (staged
    and unstaged changes alike), a new file is deleted. Name the paths, or send `all`."""
    if (body.paths is None) == (not body.all):
        raise InvalidInput('Name the files to discard in "paths", or send "all": true (not both).')
    where = await engine.project_place(user, body.project_id)
    discarded = await github.repos.discard(where, None if body.all else body.paths)
    await engine.project_changed(where)
    return Discarded(paths=discarded)


@router.post("/git/branch", status_code=204)
async def branch(body: BranchRequest, user: CurrentUser, engine: Engine, github: GitHub) -> None:
    """Switch to a branch, or create it from the current one."""
    await github.repos.switch(
        await engine.project_place(user, body.project_id), body.name, create=body.create
    )


@router.post("/git/push")
async def push(body: PushRequest, user: CurrentUser, engine: Engine, github: GitHub) -> Pushed:
    """Send a branch to the GitHub repository the project was cloned from."""
    repository, branch = await github.push(
        await engine.project_place(user, body.project_id), body.branch
    )
    return Pushed(repository=repository, branch=branch)


class Pulled(BaseModel):
    result: str


@router.post("/git/pull")
async def pull(body: PushRequest, user: CurrentUser, engine: Engine, github: GitHub) -> Pulled:
    """Bring GitHub's commits on a branch (default: the current one) into the project."""
    return Pulled(
        result=await github.pull(await engine.project_place(user, body.project_id), body.branch)
    )


@router.post("/github/pulls", status_code=201)
async def pull_request(
    body: PullRequestRequest, user: CurrentUser, engine: Engine, github: GitHub
) -> PullRequestView:
    made = await github.open_pull(
        await engine.project_place(user, body.project_id),
        title=body.title,
        body=body.body,
        head=body.head,
        base=body.base,
    )
    return PullRequestView(**asdict(made))
