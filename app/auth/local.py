"""Local accounts: sign-up, sign-in, refresh and sign-out with tokens signed by a per-install key.

Access tokens are short-lived HS256 JWTs; refresh tokens are random strings kept only as hashes,
each usable once (every refresh returns a new one), so a stolen one stops working once used.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt

from app.auth.passwords import hash_password, verify_password
from app.auth.throttle import SignInThrottle
from app.db.models import RefreshToken, User, utcnow
from app.db.store import Store
from app.errors import InvalidInput, Unauthorized

ISSUER = "agent-web"
ACCESS_TTL = timedelta(hours=1)
REFRESH_TTL = timedelta(days=30)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def install_key(data_dir: Path, configured: str | None) -> str:
    """APP_SECRET_KEY, or a random key generated once per install and kept in the data dir."""
    if configured:
        return configured
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


class LocalAuth:
    def __init__(
        self,
        store: Store,
        key: str,
        *,
        allowed_domains: tuple[str, ...] = (),
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.store = store
        self._key = key
        self.allowed_domains = allowed_domains
        self.throttle = throttle or SignInThrottle()

    def sign_up(self, email: str, password: str) -> User:
        email = check_email(email, self.allowed_domains)
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"Choose a password of at least {MIN_PASSWORD} characters.")
        if len(password) > 1024:
            raise InvalidInput("That password is too long.")
        return self.store.add_local_user(email, hash_password(password))

    async def sign_in(self, email: str, password: str, *, client: str = "") -> TokenPair:
        email = email.strip().lower()
        keys = (f"email:{email}", f"client:{client}")
        self.throttle.check(*keys)
        user = self.store.find_user(email)
        if (
            user is None
            or not user.password_hash
            or not verify_password(password, user.password_hash)
        ):
            await self.throttle.failed(*keys)
            raise Unauthorized("Wrong e-mail or password.")
        self.throttle.succeeded(f"email:{email}")
        return self._issue(user.id)

    def refresh(self, refresh_token: str) -> TokenPair:
        user_id = self.store.use_refresh_token(_digest(refresh_token))
        if user_id is None:
            raise Unauthorized("Your sign-in has expired; sign in again.")
        return self._issue(user_id)

    def sign_out(self, refresh_token: str) -> None:
        self.store.use_refresh_token(_digest(refresh_token))

    def claims(self, access_token: str) -> dict[str, Any]:
        """The claims of a valid access token (signature, issuer, expiry); Unauthorized
        otherwise. Revocation is the caller's check (`Auth.identify`)."""
        try:
            claims = jwt.decode(
                access_token,
                self._key,
                algorithms=["HS256"],
                issuer=ISSUER,
                audience=ISSUER,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("Token expired.") from error
        except jwt.PyJWTError as error:
            raise Unauthorized("Invalid token.") from error
        if claims.get("token_use") != "access":
            raise Unauthorized("Invalid token.")
        return dict(claims)

    def _issue(self, user_id: str) -> TokenPair:
        now = utcnow()
        access = jwt.encode(
            {
                "sub": user_id,
                "iss": ISSUER,
                "aud": ISSUER,
                "token_use": "access",
                "iat": now,
                "exp": now + ACCESS_TTL,
                "jti": secrets.token_hex(8),
            },
            self._key,
            algorithm="HS256",
        )
        refresh = secrets.token_urlsafe(32)
        self.store.add_refresh_token(
            RefreshToken(id=_digest(refresh), user_id=user_id, expires_at=now + REFRESH_TTL)
        )
        return TokenPair(access, refresh, int(ACCESS_TTL.total_seconds()))


def check_email(email: str, allowed_domains: tuple[str, ...]) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput("Enter a valid e-mail address.")
    if allowed_domains and email.rsplit("@", 1)[1] not in allowed_domains:
        raise InvalidInput("Sign-up is limited to e-mail addresses of this organisation.")
    return email


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
