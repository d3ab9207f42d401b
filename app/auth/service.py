"""One entry point for "who is this token?", whichever sign-in mode is configured."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.auth.local import LocalAuth
from app.db.store import Store
from app.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from app.auth.cognito import CognitoClient, CognitoVerifier


@dataclass
class Auth:
    store: Store
    local: LocalAuth | None = None
    verifier: CognitoVerifier | None = None
    cognito: CognitoClient | None = None
    allowed_domains: tuple[str, ...] = ()

    @property
    def mode(self) -> str:
        return "local" if self.local is not None else "cognito"

    async def user_id_for(self, token: str) -> str:
        """The app's user id for a bearer token; Unauthorized or Forbidden otherwise."""
        if not token:
            raise Unauthorized("Sign in first: send Authorization: Bearer <token>.")
        if self.local is not None:
            user_id = self.local.verify(token)
            await asyncio.to_thread(self.store.get_user, user_id)  # deleted users lose access
            return user_id
        if self.verifier is None:
            raise Unauthorized("Sign-in is not configured.")
        claims = await asyncio.to_thread(self.verifier.verify, token, token_use="access")
        sub = str(claims["sub"])
        user = await asyncio.to_thread(self.store.ensure_external_user, sub, _email(claims))
        if self.allowed_domains and not _domain_ok(user.email, self.allowed_domains):
            raise Forbidden("This account's e-mail domain is not allowed here.")
        return user.id


def _email(claims: dict[str, object]) -> str | None:
    for key in ("email", "username", "cognito:username"):
        value = claims.get(key)
        if isinstance(value, str) and "@" in value:
            return value
    return None


def _domain_ok(email: str, domains: tuple[str, ...]) -> bool:
    return "@" in email and email.rsplit("@", 1)[1].lower() in domains
