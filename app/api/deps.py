"""Request dependencies: the signed-in user (from a verified token only) and the engine."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.agent.engine import AgentEngine
from app.errors import InvalidInput, Unauthorized
from app.services import services

RUNTIME_SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
_RUNTIME_SESSION = re.compile(r"^[\w@./:-]{33,256}$")
_bearer = HTTPBearer(
    auto_error=False, description="An access token from /auth/local/token or Cognito"
)


async def user_for_token(token: str, runtime_session_id: str | None = None) -> str:
    """The user id for a bearer token, with the AgentCore session id bound to that user."""
    user_id = await services().auth.user_id_for(token)
    if runtime_session_id is not None:
        if not _RUNTIME_SESSION.match(runtime_session_id):
            raise InvalidInput(
                f"{RUNTIME_SESSION_HEADER} must be 33-256 characters of [A-Za-z0-9_@./:-]."
            )
        await asyncio.to_thread(services().store.bind_runtime_session, runtime_session_id, user_id)
    return user_id


async def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    runtime_session_id: Annotated[str | None, Header(alias=RUNTIME_SESSION_HEADER)] = None,
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Sign in first: send Authorization: Bearer <token>.")
    return await user_for_token(credentials.credentials, runtime_session_id)


def current_engine() -> AgentEngine:
    return services().engine


CurrentUser = Annotated[str, Depends(current_user)]
Engine = Annotated[AgentEngine, Depends(current_engine)]
