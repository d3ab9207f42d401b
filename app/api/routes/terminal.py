"""A project's terminal over HTTP (and so through `/invocations`): open it, send keys, read its
output by offset (waiting a little for more), resize, close. The same shell the page's
Terminal panel shows (app/workspace/terminal.py), in the user's sandbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from app.agent.schemas import TerminalOutput, TerminalView
from app.api.deps import CurrentUser, Engine
from app.workspace.terminal import MAX_PENDING_INPUT

router = APIRouter(prefix="/projects/{project_id}/terminal", tags=["terminal"])

ProjectId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
MAX_READ_CHARS = 65_536
MAX_WAIT_S = 25.0  # under the gateways' idle timeouts


class Size(BaseModel):
    cols: int = Field(100, ge=2, le=1000)
    rows: int = Field(30, ge=1, le=500)


class Keys(BaseModel):
    data: str = Field(
        ...,
        min_length=1,
        max_length=MAX_PENDING_INPUT // 4,
        description="what is typed: text, `\\r` for Enter, `\\u0003` for Ctrl-C",
    )


@router.post("")
async def open_terminal(
    project_id: ProjectId, user: CurrentUser, engine: Engine, size: Size | None = None
) -> TerminalView:
    """The project's terminal: the one running, or a new shell (in the user's sandbox)."""
    size = size or Size()
    return await engine.open_terminal(user, project_id, size.cols, size.rows)


@router.get("/output")
async def output(
    project_id: ProjectId,
    user: CurrentUser,
    engine: Engine,
    since: Annotated[int, Query(ge=0, le=2**53)] = 0,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=MAX_READ_CHARS)] = MAX_READ_CHARS,
) -> TerminalOutput:
    """Output after offset `since`, waiting up to `wait` seconds when there is none yet."""
    return await engine.terminal_output(user, project_id, since, limit, wait)


@router.post("/input", status_code=204)
async def send_keys(
    project_id: ProjectId, body: Keys, user: CurrentUser, engine: Engine
) -> Response:
    await engine.terminal_input(user, project_id, body.data)
    return Response(status_code=204)


@router.post("/resize", status_code=204)
async def resize(project_id: ProjectId, body: Size, user: CurrentUser, engine: Engine) -> Response:
    await engine.terminal_resize(user, project_id, body.cols, body.rows)
    return Response(status_code=204)


@router.delete("", status_code=204)
async def close_terminal(project_id: ProjectId, user: CurrentUser, engine: Engine) -> Response:
    """End the shell and everything it started."""
    await engine.close_terminal(user, project_id)
    return Response(status_code=204)
