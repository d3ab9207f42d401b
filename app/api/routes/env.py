"""A project's environment variables for its agents: names listed, values only ever written
(masked on the page, never sent back), sealed at rest, handed to the sandbox alone (see
app/agent/project_env.py). Changes apply to agents started afterwards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from app.agent.project_env import check_name
from app.api.deps import CurrentUser, Engine

router = APIRouter(prefix="/projects/{project_id}/env", tags=["env"])

ProjectId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Name = Annotated[str, Path(min_length=1, max_length=100, description="e.g. `OPENAI_API_KEY`")]


class EnvNameView(BaseModel):
    name: str
    updated_at: str = Field(description="ISO 8601, when the value was last set")


class EnvNames(BaseModel):
    variables: list[EnvNameView] = Field(description="names only: values are never returned")


class EnvValue(BaseModel):
    value: str = Field(description="at most 32 KB, no NUL; write-only")


@router.get("")
async def list_env(project_id: ProjectId, user: CurrentUser, engine: Engine) -> EnvNames:
    names = await engine.project_env.list(user, project_id)
    return EnvNames(
        variables=[EnvNameView(name=n.name, updated_at=n.updated_at.isoformat()) for n in names]
    )


@router.put("/{name}", status_code=204)
async def set_env(
    project_id: ProjectId, name: Name, body: EnvValue, user: CurrentUser, engine: Engine
) -> Response:
    """Set or replace a variable; agents started from now on get it."""
    await engine.project_env.set(user, project_id, check_name(name), body.value)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204)
async def delete_env(
    project_id: ProjectId, name: Name, user: CurrentUser, engine: Engine
) -> Response:
    await engine.project_env.delete(user, project_id, name)
    return Response(status_code=204)
