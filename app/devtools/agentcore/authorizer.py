"""AgentCore's customJWTAuthorizer: which bearer tokens the runtime lets through.

Like the real one it reads the issuer and key set from an OpenID discovery document and checks
the RS256 signature, expiry and issuer. Cognito access tokens name their app client in
`client_id` and ID tokens in `aud`, so a token passes when either is an allowed client.
Error messages never contain the token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import anyio.to_thread
import httpx
import jwt

logger = logging.getLogger(__name__)

_DISCOVERY_TIMEOUT_S = 10


class AuthError(Exception):
    """The token was refused: the caller gets 401."""


class AuthorizerUnavailable(Exception):
    """The discovery document or key set could not be read: no token can be checked."""


class JwtAuthorizer:
    """Verifies tokens against one identity provider; the discovery document is read once."""

    def __init__(self, discovery_url: str, allowed_clients: Iterable[str]) -> None:
        self._discovery_url = discovery_url
        self._allowed = frozenset(allowed_clients)
        self._issuer = ""
        self._keys: jwt.PyJWKClient | None = None

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or AuthError saying why it is refused."""
        keys = await self._key_client()
        try:
            # PyJWKClient fetches the key set with urllib (blocking), hence the thread.
            signing_key = await anyio.to_thread.run_sync(keys.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthorizerUnavailable(f"key set unreachable: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"no signing key for the token: {exc}") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256"],
                issuer=self._issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        if not _clients(claims) & self._allowed:
            raise AuthError("the token's client is not an allowed client")
        return claims

    async def _key_client(self) -> jwt.PyJWKClient:
        if self._keys is not None:
            return self._keys
        try:
            async with httpx.AsyncClient(timeout=_DISCOVERY_TIMEOUT_S) as client:
                response = await client.get(self._discovery_url)
                response.raise_for_status()
                document = response.json()
            issuer, jwks_uri = str(document["issuer"]), str(document["jwks_uri"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise AuthorizerUnavailable(
                f"cannot read the discovery document {self._discovery_url}: {exc!r}"
            ) from exc
        logger.info("JWT authorizer: issuer %s, keys from %s", issuer, jwks_uri)
        self._issuer, self._keys = issuer, jwt.PyJWKClient(jwks_uri)
        return self._keys


def _clients(claims: dict[str, Any]) -> set[str]:
    """The app clients a token was issued to: Cognito's `client_id`, or the `aud` claim."""
    audience = claims.get("aud")
    found = set(audience) if isinstance(audience, list) else {audience}
    found.add(claims.get("client_id"))
    return {c for c in found if isinstance(c, str)}
