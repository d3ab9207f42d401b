"""The API in Cognito mode, against moto's Cognito over HTTP: real tokens work, forged ones
get 401 on a protected route, and the allowed e-mail domains hold on the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.auth.cognito import CognitoClient, CognitoConfig
from app.devtools.model_server import ModelServer
from app.errors import AppError
from tests.api.conftest import Api, serve_api, settings_env
from tests.auth.conftest import PASSWORD


@pytest.fixture
def cognito_api(
    tmp_path: Path, model_server: ModelServer, cognito_config: CognitoConfig
) -> Iterator[Api]:
    env = settings_env(
        tmp_path,
        model_server,
        AUTH_MODE="cognito",
        COGNITO_REGION=cognito_config.region,
        COGNITO_USER_POOL_ID=cognito_config.user_pool_id,
        COGNITO_CLIENT_ID=cognito_config.client_id,
        COGNITO_JWKS_URL=cognito_config.effective_jwks_url,
        COGNITO_ENDPOINT_URL=cognito_config.endpoint_url or "",
        ALLOWED_EMAIL_DOMAINS="example.com",
    )
    with serve_api(env) as api:
        yield api


def signed_in(config: CognitoConfig, email: str) -> Any:
    client = CognitoClient(config)
    client.sign_up(email, PASSWORD)
    client.confirm_sign_up(email, "123456")  # moto accepts any code
    return client.sign_in(email, PASSWORD)


def test_cognito_tokens_reach_the_api_and_refresh(
    cognito_api: Api, cognito_config: CognitoConfig
) -> None:
    tokens = signed_in(cognito_config, f"ann-{time.time_ns()}@example.com")
    with cognito_api.client(tokens.access_token) as http:
        session = http.post("/sessions", json={})
        assert session.status_code == 201, session.text
        me = http.get("/auth/me").json()
        assert me["auth_mode"] == "cognito" and me["email"].endswith("@example.com")
        assert (
            http.post(
                "/auth/local/token", json={"email": "a@example.com", "password": "x"}
            ).status_code
            == 404
        )
    refreshed = CognitoClient(cognito_config).refresh(tokens.refresh_token)
    with cognito_api.client(refreshed.access_token) as http:
        assert http.get("/sessions/available").json()["total"] == 1


def test_forged_cognito_tokens_get_401(cognito_api: Api, cognito_config: CognitoConfig) -> None:
    tokens = signed_in(cognito_config, f"bob-{time.time_ns()}@example.com")
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    header = jwt.get_unverified_header(tokens.access_token)
    public_pem = _jwks_public_pem(cognito_config)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = {
        "alg none": jwt.encode(claims, key=None, algorithm="none", headers={"kid": header["kid"]}),
        "HS256 with the public key": _hs256(claims, public_pem, header["kid"]),
        "unknown kid": jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "made-up"}),
        "stranger's key, known kid": jwt.encode(
            claims, stranger, algorithm="RS256", headers={"kid": header["kid"]}
        ),
        "expired": jwt.encode(
            {**claims, "exp": int(time.time()) - 3600},
            stranger,
            algorithm="RS256",
            headers={"kid": header["kid"]},
        ),
        "id token as access token": tokens.id_token,
        "tampered payload": _tamper(tokens.access_token, sub="someone-else"),
    }
    with cognito_api.client() as http:
        for name, token in forged.items():
            response = http.get("/sessions", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, name
        assert (
            http.get(
                "/sessions", headers={"Authorization": f"Bearer {tokens.access_token}"}
            ).status_code
            == 200
        )


def test_tokens_of_a_foreign_domain_are_refused(
    cognito_api: Api, cognito_config: CognitoConfig
) -> None:
    open_config = CognitoConfig(**{**cognito_config.__dict__, "allowed_email_domains": ()})
    tokens = signed_in(open_config, f"eve-{time.time_ns()}@elsewhere.org")
    with cognito_api.client(tokens.access_token) as http:
        assert http.get("/sessions").status_code == 403


def _jwks_public_pem(config: CognitoConfig) -> bytes:
    import httpx

    key = httpx.get(config.effective_jwks_url).json()["keys"][0]
    public = jwt.algorithms.RSAAlgorithm.from_jwk(key)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )  # type: ignore[union-attr]


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def _tamper(token: str, **changes: str) -> str:
    import json

    head, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims.update(changes)
    return f"{head}.{jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()}.{signature}"


def test_cognito_sign_out_revokes_the_access_and_refresh_tokens(
    cognito_api: Api, cognito_config: CognitoConfig
) -> None:
    tokens = signed_in(cognito_config, f"leaver-{time.time_ns()}@example.com")
    with cognito_api.client(tokens.access_token) as http:
        assert http.get("/auth/me").status_code == 200
        assert http.post("/auth/signout").status_code == 204
        refused = http.get("/auth/me")
    assert refused.status_code == 401 and "signed out" in refused.json()["detail"]
    with pytest.raises(AppError):  # GlobalSignOut: Cognito refuses the refresh token too
        CognitoClient(cognito_config).refresh(tokens.refresh_token)
