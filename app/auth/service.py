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
        from app.auth.cognito import email_allowed, identity_from_claims

        claims = await asyncio.to_thread(self.verifier.verify, token, token_use="access")
        sub, email = identity_from_claims(claims)
        user = await asyncio.to_thread(self.store.ensure_external_user, sub, email)
        if self.allowed_domains and not email_allowed(user.email, self.allowed_domains):
            # Access tokens of e-mail-as-username pools carry no address: ask Cognito once.
            if self.cognito is not None and not email:
                real = await asyncio.to_thread(self.cognito.email_for, token)
                if real:
                    await asyncio.to_thread(self.store.set_email, user.id, real)
                    user.email = real
            if not email_allowed(user.email, self.allowed_domains):
                raise Forbidden("This account's e-mail domain is not allowed here.")
        return user.id
