"""One entry point for "who is this token?", whichever sign-in mode is configured, and for
ending a sign-in: a signed-out access token is refused on the server until it would have
expired, on every channel (HTTP, `/ws`, the Reflex socket)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.auth.local import LocalAuth
from app.db.store import PLACEHOLDER_DOMAIN, Store
from app.errors import AppError, Forbidden, Unauthorized

if TYPE_CHECKING:
    from app.auth.cognito import CognitoClient, CognitoVerifier

SIGNED_OUT = "This sign-in has ended (signed out); sign in again."


@dataclass(frozen=True)
class Identity:
    """A verified access token: whose it is, its id, and when it stops working anyway."""

    user_id: str
    token_id: str
    expires_at: float  # unix time

    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class Auth:
    store: Store
    local: LocalAuth | None = None
    verifier: CognitoVerifier | None = None
    cognito: CognitoClient | None = None
    allowed_domains: tuple[str, ...] = ()
    # Token ids revoked by this process, and who wants to hear of the next one (open sockets).
    _revoked: dict[str, float] = field(default_factory=dict)
    _listeners: list[Callable[[str], None]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return "local" if self.local is not None else "cognito"

    async def user_id_for(self, token: str) -> str:
        """The app's user id for a bearer token; Unauthorized or Forbidden otherwise."""
        return (await self.identify(token)).user_id

    async def identify(self, token: str) -> Identity:
        """Verify the token (signature, expiry, revocation) and find its user."""
        if not token:
            raise Unauthorized("Sign in first: send Authorization: Bearer <token>.")
        if self.local is not None:
            claims = self.local.claims(token)
            user_id = str(claims["sub"])
            await asyncio.to_thread(self.store.get_user, user_id)  # deleted users lose access
        else:
            claims, user_id = await self._cognito_user(token)
        identity = Identity(user_id, _token_id(token, claims), float(claims["exp"]))
        if await self.revoked(identity.token_id):
            raise Unauthorized(SIGNED_OUT)
        return identity

    async def revoked(self, token_id: str) -> bool:
        return token_id in self._revoked or await asyncio.to_thread(self.store.is_revoked, token_id)

    def revoked_here(self, token_id: str) -> bool:
        """A cheap check for loops that run often: revoked by this process."""
        return token_id in self._revoked

    async def sign_out(self, access_token: str, refresh_token: str | None = None) -> None:
        """End this sign-in: the access token stops working now, everywhere; the refresh token
        (local) or every refresh token of the user (Cognito's GlobalSignOut) too."""
        try:
            identity: Identity | None = await self.identify(access_token)
        except AppError:
            identity = None  # already unusable: nothing left to revoke
        if identity is not None:
            expires = datetime.fromtimestamp(identity.expires_at, UTC)
            await asyncio.to_thread(
                lambda: self.store.revoke_token(
                    identity.token_id, user_id=identity.user_id, expires_at=expires
                )
            )
            self._revoked[identity.token_id] = identity.expires_at
            self._forget_expired()
            for listener in list(self._listeners):
                listener(identity.token_id)
        if self.local is not None and refresh_token:
            await asyncio.to_thread(self.local.sign_out, refresh_token)
        if self.cognito is not None and access_token:
            await asyncio.to_thread(self.cognito.sign_out, access_token)

    def on_revoke(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(token_id)` whenever this process revokes a token; returns the
        function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _forget_expired(self) -> None:
        now = time.time()
        for token_id, expires in list(self._revoked.items()):
            if expires < now:
                del self._revoked[token_id]

    async def _cognito_user(self, token: str) -> tuple[dict[str, Any], str]:
        if self.verifier is None:
            raise Unauthorized("Sign-in is not configured.")
        from app.auth.cognito import email_allowed, identity_from_claims

        claims = await asyncio.to_thread(self.verifier.verify, token, token_use="access")
        sub, email = identity_from_claims(claims)
        user = await asyncio.to_thread(self.store.ensure_external_user, sub, email)
        if not email and user.email.endswith(PLACEHOLDER_DOMAIN) and self.cognito is not None:
            # Access tokens of e-mail-as-username pools carry no address (a user who signed in
            # on the static site has only shown us one): ask Cognito once, then it is stored.
            real = await asyncio.to_thread(self.cognito.email_for, token)
            if real:
                await asyncio.to_thread(self.store.set_email, user.id, real)
                user.email = real
        if self.allowed_domains and not email_allowed(user.email, self.allowed_domains):
            raise Forbidden("This account's e-mail domain is not allowed here.")
        return claims, user.id


def _token_id(token: str, claims: dict[str, Any]) -> str:
    """The token's `jti`, or (for issuers without one) a digest of the token itself."""
    jti = claims.get("jti")
    return (
        f"jti:{jti}" if isinstance(jti, str) and jti else hashlib.sha256(token.encode()).hexdigest()
    )
