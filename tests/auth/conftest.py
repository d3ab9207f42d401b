"""A real Cognito stand-in over HTTP: moto's server on a free local port, one user pool per session.

The pool lives in us-east-1 on purpose. Cognito's public operations (SignUp, InitiateAuth,
GlobalSignOut, ...) are unsigned, so moto cannot read a region from the request and falls back to
us-east-1; most of them search every region, but GlobalSignOut only looks there.
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from app.auth.cognito import CognitoConfig

REGION = "us-east-1"
ALLOWED_DOMAIN = "example.com"
PASSWORD = "Correct-Horse-9"  # meets moto's default policy: upper, lower, digit, symbol


@pytest.fixture(scope="session")
def cognito_admin(moto_url: str) -> Any:
    """Admin calls (create pool, list users) are signed: dummy keys passed explicitly, so the
    process environment is neither needed nor changed."""
    return boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _create_pool(admin: Any, moto_url: str, **pool_args: Any) -> CognitoConfig:
    pool_id = admin.create_user_pool(PoolName=f"test-{uuid.uuid4().hex[:8]}", **pool_args)[
        "UserPool"
    ]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ReadAttributes=["email", "email_verified"],  # moto puts only these into ID tokens
    )["UserPoolClient"]["ClientId"]
    return CognitoConfig(
        region=REGION,
        user_pool_id=pool_id,
        client_id=client_id,
        jwks_url=f"{moto_url}/{pool_id}/.well-known/jwks.json",
        endpoint_url=moto_url,
        allowed_email_domains=(ALLOWED_DOMAIN,),
    )


@pytest.fixture(scope="session")
def cognito_config(cognito_admin: Any, moto_url: str) -> CognitoConfig:
    """The usual AWS set-up: users sign in with their e-mail (an e-mail username attribute)."""
    return _create_pool(
        cognito_admin,
        moto_url,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
    )


@pytest.fixture(scope="session")
def username_pool_config(cognito_admin: Any, moto_url: str) -> CognitoConfig:
    """A pool with plain usernames, where the app uses the e-mail as the username."""
    return _create_pool(cognito_admin, moto_url, AutoVerifiedAttributes=["email"])
