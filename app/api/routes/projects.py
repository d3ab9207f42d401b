"""A user's projects: folders their sessions work in."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser
from app.db.models import Project
from app.errors import InvalidInput
from app.services import services

router = APIRouter(prefix="/projects", tags=["projects"])
_NAME = re.compile(r"^[\w][\w .-]{0,99}$")


class NewProject(BaseModel):
    name: str = Field(..., min_length=1, max_length=100)


def _view(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "name": project.name,
        "created_at": project.created_at.isoformat(),
    }


@router.get("")
async def list_projects(user: CurrentUser) -> dict[str, Any]:
    rows = await asyncio.to_thread(lambda: services().store.list_projects(user_id=user))
    return {"projects": [_view(p) for p in rows]}


@router.post("", status_code=201)
async def create_project(body: NewProject, user: CurrentUser) -> dict[str, Any]:
    name = body.name.strip()
    if not _NAME.match(name):
        raise InvalidInput("A project name is letters, digits, spaces, '.', '-' and '_' (1-100).")
    row = await asyncio.to_thread(lambda: services().store.ensure_project(user_id=user, name=name))
    return _view(row)
