"""The AgentCore emulator with real parts: Cognito on moto's server, deploy/probe_app.py as the
container, real processes and sockets.

moto serves each pool's OpenID discovery document at
`<moto_url>/<pool_id>/.well-known/openid-configuration`, with `jwks_uri` pointing back at moto
(`<moto_url>/<pool_id>/.well-known/jwks.json`) and the AWS-style issuer
`https://cognito-idp.us-east-1.amazonaws.com/<pool_id>` that its tokens carry, so the emulator's
authorizer reads it exactly as it would read Cognito's. (moto signs every pool's tokens with one
built-in key, so a token from another moto pool would pass the signature check and fail on the
issuer.)

The pool lives in us-east-1: Cognito's public operations are unsigned and moto falls back to
that region for them (see tests/auth/conftest.py).
"""

from __future__ import annotations

import base64
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from app.devtools.agentcore import BEARER_PROTOCOL, AgentCoreEmulator, EmulatorSettings

REGION = "us-east-1"
PASSWORD = "Correct-Horse-9"
PROBE = Path(__file__).resolve().parents[2] / "deploy" / "probe_app.py"

StartEmulator = Callable[..., AgentCoreEmulator]


@dataclass(frozen=True)
class CognitoPool:
    """A pool with an allowed app client and another one, and a signed-in user's tokens."""

    discovery_url: str
    client_id: str
    access_token: str  # from the allowed client
    id_token: str  # from the allowed client (names it in `aud`, not `client_id`)
    other_access_token: str  # from a client the emulator does not allow


def new_session_id() -> str:
    """Unique per call, and long enough for AgentCore (33+ characters)."""
    return f"test-session-{uuid.uuid4().hex}"


def bearer_subprotocols(token: str) -> list[str]:
    """What a browser offers to pass its token through AgentCore's WebSocket endpoint."""
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return [f"{BEARER_PROTOCOL}.{encoded}", BEARER_PROTOCOL]


def _sign_in(moto_url: str, client_id: str, username: str) -> dict[str, Any]:
    public = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    result: dict[str, Any] = public.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return result


@pytest.fixture(scope="session")
def cognito(moto_url: str) -> CognitoPool:
    admin = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    pool_id = admin.create_user_pool(PoolName=f"agentcore-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    client_ids = [
        admin.create_user_pool_client(
            UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        for name in ("web", "other")
    ]
    admin.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
    admin.admin_set_user_password(
        UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True
    )
    allowed = _sign_in(moto_url, client_ids[0], "alice")
    other = _sign_in(moto_url, client_ids[1], "alice")
    return CognitoPool(
        discovery_url=f"{moto_url}/{pool_id}/.well-known/openid-configuration",
        client_id=client_ids[0],
        access_token=allowed["AccessToken"],
        id_token=allowed["IdToken"],
        other_access_token=other["AccessToken"],
    )


@pytest.fixture
def start_emulator(cognito: CognitoPool) -> Iterator[StartEmulator]:
    """Start emulators (probe container, JWT authorizer, quick health polling); settings
    overridable per call; all of them are stopped after the test."""
    started: list[AgentCoreEmulator] = []

    def start(**overrides: Any) -> AgentCoreEmulator:
        settings: dict[str, Any] = {
            "port": 0,
            "container_command": (sys.executable, str(PROBE)),
            "discovery_url": cognito.discovery_url,
            "allowed_clients": (cognito.client_id,),
            "ping_interval_s": 0.2,
            "stop_grace_s": 2,
            **overrides,
        }
        emulator = AgentCoreEmulator(EmulatorSettings(**settings))
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> AgentCoreEmulator:
    """An emulator with AgentCore's default limits."""
    return start_emulator()
