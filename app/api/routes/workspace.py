"""The user's workspace: its sync with S3, "back up now" (on the seed's path), and a restart
that stops every agent and terminal and keeps the work."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.agent.schemas import Restarted, SyncStatus
from app.api.deps import CurrentUser, Engine

router = APIRouter(prefix="/workspace", tags=["workspace"])


class SyncState(BaseModel):
    folders: list[SyncStatus]


@router.get("/sync")
async def sync_state(user: CurrentUser, engine: Engine) -> SyncState:
    """Each of the user's folders on this machine: restoring, backing up, failed (and why)."""
    return SyncState(folders=await engine.sync_status(user))


@router.post("/projects/backup")
async def backup(user: CurrentUser, engine: Engine) -> SyncState:
    """Send the user's projects on this machine and their CLI home to S3 now."""
    return SyncState(folders=await engine.backup_now(user))


@router.post("/restart")
async def restart(user: CurrentUser, engine: Engine) -> Restarted:
    """Start clean: stop every agent and terminal of the user's here (conversations stay
    resumable, files stay), after sending the workspace to S3 when it is kept there."""
    return await engine.restart_workspace(user)
