"""Local accounts for programs and the UI: sign up, get a token, refresh, sign out."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser
from app.auth.local import LocalAuth, TokenPair
from app.errors import NotFound
from app.services import services

router = APIRouter(prefix="/auth", tags=["auth"])


class Credentials(BaseModel):
    email: str = Field(..., min_length=3, max_length=320)
    password: str = Field(..., min_length=1, max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str = Field(..., min_length=1, max_length=200)


def _local() -> LocalAuth:
    local = services().auth.local
    if local is None:
        raise NotFound("Local accounts are off here (AUTH_MODE=cognito): sign in with Cognito.")
    return local


def _tokens(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
    }


@router.post("/local/signup", status_code=201)
async def sign_up(body: Credentials) -> dict[str, str]:
    user = await asyncio.to_thread(_local().sign_up, body.email, body.password)
    return {"user_id": user.id, "email": user.email}


@router.post("/local/token")
async def token(body: Credentials, request: Request) -> dict[str, Any]:
    client = request.client.host if request.client else ""
    return _tokens(await _local().sign_in(body.email, body.password, client=client))


@router.post("/local/refresh")
async def refresh(body: RefreshBody) -> dict[str, Any]:
    return _tokens(await asyncio.to_thread(_local().refresh, body.refresh_token))


@router.post("/local/signout", status_code=204)
async def sign_out(body: RefreshBody) -> Response:
    await asyncio.to_thread(_local().sign_out, body.refresh_token)
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, str]:
    row = await asyncio.to_thread(services().store.get_user, user)
    return {"user_id": row.id, "email": row.email, "auth_mode": services().auth.mode}
