"""Health endpoints: AgentCore's `/ping` and `/health`, both without sign-in."""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import ServicesDep

router = APIRouter(tags=["system"])


class Ping(BaseModel):
    status: Literal["Healthy", "HealthyBusy"]
    time_of_last_update: int


@router.get("/ping")
async def ping(services: ServicesDep) -> Ping:
    """`HealthyBusy` while any agent turn runs, so AgentCore does not reclaim the session;
    `time_of_last_update` is when that last changed."""
    engine = services.engine
    return Ping(
        status="HealthyBusy" if engine.busy_count() > 0 else "Healthy",
        time_of_last_update=engine.busy_changed_at(),
    )


@router.get("/health")
async def health(services: ServicesDep) -> dict[str, Any]:
    """Up, and whether agents can start here (the sandbox's state, with what to fix)."""
    sandbox = services.sandbox
    return {
        "status": "ok" if not sandbox.problem else "degraded",
        "timestamp": int(time.time()),
        "active_sessions": services.engine.pool.count(),
        "sandbox": {
            "enabled": sandbox.config.enabled,
            "ready": not sandbox.problem,
            "problem": sandbox.problem,
            "warning": sandbox.warning,
        },
    }
