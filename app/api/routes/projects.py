"""A user's projects: folders their sessions work in."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.agent.schemas import NewProject, ProjectView
from app.api.deps import CurrentUser, Engine

router = APIRouter(prefix="/projects", tags=["projects"])


class Projects(BaseModel):
    projects: list[ProjectView]


@router.get("")
async def list_projects(user: CurrentUser, engine: Engine) -> Projects:
    return Projects(projects=await engine.projects(user))


@router.post("", status_code=201)
async def create_project(body: NewProject, user: CurrentUser, engine: Engine) -> ProjectView:
    return await engine.create_project(user, body)
