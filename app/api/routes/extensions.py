"""The user's skills and plugins (app/agent/extensions.py): the library (list, install from a
project folder or a git URL, remove) and which ones each project's agents get. Changes apply
to agents started afterwards."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from app.agent.extensions import ExtensionInstall, ExtensionView
from app.agent.schemas import Ident
from app.api.deps import CurrentUser, Engine

router = APIRouter(tags=["extensions"])

Id = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class EnabledExtensions(BaseModel):
    extension_ids: list[Ident] = Field(
        default_factory=list,
        max_length=100,
        description="ids from GET /extensions; agents of the project get exactly these",
    )


@router.get("/extensions")
async def list_extensions(user: CurrentUser, engine: Engine) -> list[ExtensionView]:
    return await asyncio.to_thread(engine.library().of_user, user)


@router.post("/extensions", status_code=201)
async def install_extension(
    body: ExtensionInstall, user: CurrentUser, engine: Engine
) -> ExtensionView:
    """Copy a skill (a folder with SKILL.md) or a plugin (a folder with
    .claude-plugin/plugin.json) into your library: from a folder of one of your projects, or
    from a git URL the app clones through your agents' egress allowlist."""
    return await engine.install_extension(user, body)


@router.delete("/extensions/{extension_id}", status_code=204)
async def delete_extension(extension_id: Id, user: CurrentUser, engine: Engine) -> Response:
    await engine.delete_extension(user, extension_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/extensions")
async def project_extensions(
    project_id: Id, user: CurrentUser, engine: Engine
) -> EnabledExtensions:
    ids = await asyncio.to_thread(engine.library().enabled, user, project_id)
    return EnabledExtensions(extension_ids=ids)


@router.put("/projects/{project_id}/extensions")
async def enable_extensions(
    project_id: Id, body: EnabledExtensions, user: CurrentUser, engine: Engine
) -> EnabledExtensions:
    library = engine.library()
    ids = await asyncio.to_thread(library.set_enabled, user, project_id, body.extension_ids)
    return EnabledExtensions(extension_ids=ids)
