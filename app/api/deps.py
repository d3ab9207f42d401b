"""Request dependencies: the app's services (set on the API app by its lifespan), the signed-in
user (from a verified token only) and the engine. Routes receive these, never reach for them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from app.agent.engine import AgentEngine
from app.auth.service import Auth, Identity
from app.db.store import Store
from app.errors import InvalidInput, Unauthorized
from app.services import Services

RUNTIME_SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
AGENTCORE_BEARER = "base64UrlBearerAuthorization"  # AgentCore's subprotocol for browser tokens
_RUNTIME_SESSION = re.compile(r"^[\w@./:-]{33,256}$")
_bearer = HTTPBearer(
    auto_error=False, description="An access token from /auth/local/token or Cognito"
)


def app_services(connection: HTTPConnection) -> Services:
    """The services the API app was started with (HTTP requests and websockets alike)."""
    found: Services | None = getattr(connection.app.state, "services", None)
    if found is None:
        raise RuntimeError("the API's services are not started (its lifespan starts them)")
    return found


async def identity_for_token(
    services: Services, token: str, runtime_session_id: str | None = None
) -> Identity:
    """The verified token, with the AgentCore session id bound to its user."""
    identity = await services.auth.identify(token)
    if runtime_session_id is not None:
        if not _RUNTIME_SESSION.match(runtime_session_id):
            raise InvalidInput(
                f"{RUNTIME_SESSION_HEADER} must be 33-256 characters of [A-Za-z0-9_@./:-]."
            )
        await asyncio.to_thread(
            services.store.bind_runtime_session, runtime_session_id, identity.user_id
        )
    return identity


def socket_token(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The access token a WebSocket handshake carries, and the subprotocol to accept it with.

    Programs send `Authorization: Bearer <token>` (AgentCore forwards it). Browsers cannot set
    headers on a socket: they offer `["bearer", "<token>"]`, or AgentCore's pair
    `["base64UrlBearerAuthorization.<base64url token>", "base64UrlBearerAuthorization"]`.
    """
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), _agentcore_subprotocol(headers)
    protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) == 2 and protocols[0].lower() == "bearer":
        return protocols[1], "bearer"
    for protocol in protocols:
        if protocol.startswith(AGENTCORE_BEARER + "."):
            encoded = protocol[len(AGENTCORE_BEARER) + 1 :]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return "", None
            return token, _agentcore_subprotocol(headers)
    return "", None


def _agentcore_subprotocol(headers: Mapping[str, str]) -> str | None:
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    return AGENTCORE_BEARER if AGENTCORE_BEARER in offered else None


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Sign in first: send Authorization: Bearer <token>.")
    return credentials.credentials


ServicesDep = Annotated[Services, Depends(app_services)]


async def current_user(
    services: ServicesDep,
    token: Annotated[str, Depends(bearer_token)],
    runtime_session_id: Annotated[str | None, Header(alias=RUNTIME_SESSION_HEADER)] = None,
) -> str:
    return (await identity_for_token(services, token, runtime_session_id)).user_id


def current_engine(services: ServicesDep) -> AgentEngine:
    return services.engine


def current_auth(services: ServicesDep) -> Auth:
    return services.auth


def current_store(services: ServicesDep) -> Store:
    return services.store


CurrentUser = Annotated[str, Depends(current_user)]
BearerToken = Annotated[str, Depends(bearer_token)]
Engine = Annotated[AgentEngine, Depends(current_engine)]
AuthDep = Annotated[Auth, Depends(current_auth)]
StoreDep = Annotated[Store, Depends(current_store)]
