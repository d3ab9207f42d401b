"""Health endpoints: AgentCore's `/ping` and a minimal `/health`, both without sign-in."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from app.services import services

router = APIRouter(tags=["system"])
_last_change = {"busy": False, "at": int(time.time())}


@router.get("/ping")
async def ping() -> dict[str, Any]:
    """`HealthyBusy` while any agent turn runs, so AgentCore does not reclaim the session."""
    busy = services().engine.busy_count() > 0
    if busy != _last_change["busy"]:
        _last_change.update(busy=busy, at=int(time.time()))
    return {
        "status": "HealthyBusy" if busy else "Healthy",
        "time_of_last_update": _last_change["at"],
    }


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "timestamp": int(time.time())}
