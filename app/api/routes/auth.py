"""Sign-in for programs and the UI: local accounts (sign up, token, refresh), sign-out in
both modes, and who the token belongs to."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from app.agent.schemas import Text
from app.api.deps import AuthDep, BearerToken, CurrentUser, StoreDep
from app.auth.local import LocalAuth, TokenPair
from app.errors import NotFound

router = APIRouter(prefix="/auth", tags=["auth"])


class Credentials(BaseModel):
    email: Text = Field(..., min_length=3, max_length=320)
    password: Text = Field(..., min_length=1, max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: Text = Field(..., min_length=1, max_length=200)


class SignOutBody(BaseModel):
    refresh_token: Text | None = Field(default=None, min_length=1, max_length=200)


class Tokens(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class SignedUp(BaseModel):
    user_id: str
    email: str


class Me(BaseModel):
    user_id: str
    email: str
    auth_mode: str


def local_accounts(auth: AuthDep) -> LocalAuth:
    if auth.local is None:
        raise NotFound("Local accounts are off here (AUTH_MODE=cognito): sign in with Cognito.")
    return auth.local


Local = Annotated[LocalAuth, Depends(local_accounts)]


def _tokens(pair: TokenPair) -> Tokens:
    return Tokens(
        access_token=pair.access_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
    )


@router.post("/local/signup", status_code=201)
async def sign_up(body: Credentials, local: Local) -> SignedUp:
    user = await asyncio.to_thread(local.sign_up, body.email, body.password)
    return SignedUp(user_id=user.id, email=user.email)


@router.post("/local/token")
async def token(body: Credentials, request: Request, local: Local) -> Tokens:
    client = request.client.host if request.client else ""
    return _tokens(await local.sign_in(body.email, body.password, client=client))


@router.post("/local/refresh")
async def refresh(body: RefreshBody, local: Local) -> Tokens:
    return _tokens(await asyncio.to_thread(local.refresh, body.refresh_token))


@router.post("/signout", status_code=204)
async def sign_out(token: BearerToken, auth: AuthDep, body: SignOutBody | None = None) -> Response:
    """End this sign-in in either mode: the access token is refused from now on (HTTP, /ws and
    the web app), with the refresh token (local) or all of the user's (Cognito)."""
    await auth.sign_out(token, body.refresh_token if body else None)
    return Response(status_code=204)


@router.post("/local/signout", status_code=204)
async def local_sign_out(
    body: RefreshBody, request: Request, local: Local, auth: AuthDep
) -> Response:
    """The refresh token stops working; with `Authorization: Bearer`, the access token too."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        await auth.sign_out(header[7:].strip(), body.refresh_token)
    else:
        await asyncio.to_thread(local.sign_out, body.refresh_token)
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser, store: StoreDep, auth: AuthDep) -> Me:
    row = await asyncio.to_thread(store.get_user, user)
    return Me(user_id=row.id, email=row.email, auth_mode=auth.mode)
