"""Amazon Cognito sign-in: verify its JWTs locally; drive its user-pool API for the sign-in pages.

Verification uses only pyjwt and the pool's public JWKS, so checking a request costs no AWS call.
The JWKS URL is configurable apart from the issuer because a local stand-in (moto) serves the keys
at its own address while its tokens still name the real AWS issuer.

Tokens, passwords and Cognito's own error messages (which may echo a token) are never logged;
callers get short, generic messages and no stack traces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import boto3
import httpx
import jwt
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from app.errors import AppError, Conflict, Forbidden, InvalidInput, LimitReached, Unauthorized

logger = logging.getLogger(__name__)

TokenUse = Literal["access", "id"]
FetchJson = Callable[[str], dict[str, Any]]

JWKS_TIMEOUT_S = 5.0
# Far above any real Cognito token (a few KB even with many groups); refuses junk before parsing.
MAX_TOKEN_CHARS = 16_384
MAX_PASSWORD_CHARS = 256  # Cognito's own limit
MAX_CODE_CHARS = 64

INVALID_TOKEN = "Invalid token"
EXPIRED_TOKEN = "Token expired"


class AuthUnavailable(AppError):
    """Cognito or its key set could not be reached or answered oddly; not the user's fault."""

    status = 503
    code = "auth_unavailable"


class UserNotConfirmed(Conflict):
    """The account exists but its e-mail code was never entered; the UI shows the code form."""

    code = "user_not_confirmed"


UNAVAILABLE = "Sign-in is not available right now; try again in a minute."


@dataclass(frozen=True)
class CognitoConfig:
    """Where the user pool lives and which app client the tokens must be issued to.

    `allowed_email_domains` empty means any domain may sign up; entries are compared
    case-insensitively and exactly (no subdomains).
    """

    region: str
    user_pool_id: str
    client_id: str
    jwks_url: str | None = None
    endpoint_url: str | None = None
    allowed_email_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("region", "user_pool_id", "client_id"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"CognitoConfig.{name} must not be empty")
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError("CognitoConfig.jwks_url must be an http(s) URL")
        domains = tuple(d.strip().lstrip("@").lower() for d in self.allowed_email_domains)
        object.__setattr__(self, "allowed_email_domains", tuple(d for d in domains if d))

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def effective_jwks_url(self) -> str:
        """The configured JWKS URL, else the one AWS serves next to the issuer."""
        return self.jwks_url or f"{self.issuer}/.well-known/jwks.json"


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object with a short timeout, so a slow key server cannot stall requests."""
    response = httpx.get(url, timeout=JWKS_TIMEOUT_S, follow_redirects=False)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("JWKS document is not a JSON object")
    return data


def _parse_jwks(jwks: Mapping[str, Any]) -> dict[str, RSAPublicKey]:
    """RS256 signing keys by kid; anything else in the set is skipped, not trusted."""
    keys: dict[str, RSAPublicKey] = {}
    entries = jwks.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (
            not isinstance(kid, str)
            or not kid
            or entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", "RS256") != "RS256"
        ):
            continue
        try:
            key = RSAAlgorithm.from_jwk(entry)
        except (jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            logger.warning("Skipping a malformed key in the JWKS")
            continue
        keys[kid] = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return keys


class CognitoVerifier:
    """Checks Cognito access and ID tokens against the pool's published RS256 keys.

    Keys are cached. An unknown `kid` (Cognito rotated its keys) triggers one re-fetch, but the
    JWKS URL is fetched at most once per `min_refresh_interval_s` (the first load counts), so a
    flood of forged kids cannot hammer it. After a failed fetch the next try waits only
    `retry_after_failure_s`. Safe to share between threads.
    """

    def __init__(
        self,
        config: CognitoConfig,
        *,
        fetch: FetchJson | None = None,
        min_refresh_interval_s: float = 60.0,
        retry_after_failure_s: float = 5.0,
        leeway_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._fetch = fetch or fetch_json
        self._min_refresh_interval_s = min_refresh_interval_s
        self._retry_after_failure_s = min(retry_after_failure_s, min_refresh_interval_s)
        self._leeway_s = leeway_s
        self._clock = clock
        self._lock = threading.Lock()
        # Replaced as a whole, never mutated, so the fast path can read it without the lock.
        self._keys: Mapping[str, RSAPublicKey] = {}
        self._loaded = False
        self._next_fetch_at: float | None = None  # None: never fetched yet

    def verify(self, token: str, *, token_use: TokenUse = "access") -> dict[str, Any]:
        """The token's claims if Cognito issued it to our client for `token_use`; else Unauthorized.

        The header is checked before any key lookup: only RS256 is accepted, which shuts out
        `alg: none` and HS256 signed with the public key as the shared secret.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise Unauthorized(INVALID_TOKEN)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized(INVALID_TOKEN) from None
        if header.get("alg") != "RS256":
            logger.info("Token refused: algorithm not allowed")
            raise Unauthorized(INVALID_TOKEN)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized(INVALID_TOKEN)
        claims = self._decode(token, self._key_for(kid))
        self._check_audience(claims, token_use)
        return claims

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.config.issuer,
                leeway=self._leeway_s,
                # aud exists only on ID tokens; _check_audience handles both kinds explicitly.
                options={
                    "require": ["exp", "iat", "iss", "sub", "token_use"],
                    "verify_aud": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(EXPIRED_TOKEN) from None
        except jwt.InvalidTokenError as err:
            logger.info("Token refused: %s", type(err).__name__)
            raise Unauthorized(INVALID_TOKEN) from None
        return claims

    def _check_audience(self, claims: Mapping[str, Any], token_use: TokenUse) -> None:
        """Access tokens name the client in `client_id`, ID tokens in `aud` (Cognito's layout)."""
        if claims.get("token_use") != token_use:
            logger.info("Token refused: token_use is not %s", token_use)
            raise Unauthorized(INVALID_TOKEN)
        client = claims.get("client_id" if token_use == "access" else "aud")
        if client != self.config.client_id:
            logger.info("Token refused: issued to another client")
            raise Unauthorized(INVALID_TOKEN)

    def _key_for(self, kid: str) -> RSAPublicKey:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)  # another thread may have refreshed meanwhile
            if key is not None:
                return key
            now = self._clock()
            if self._next_fetch_at is not None and now < self._next_fetch_at:
                if not self._loaded:
                    raise AuthUnavailable(UNAVAILABLE)
                logger.info("Token refused: unknown key id (JWKS refresh rate-limited)")
                raise Unauthorized(INVALID_TOKEN)
            self._refresh(now)
            key = self._keys.get(kid)
        if key is None:
            logger.info("Token refused: unknown key id")
            raise Unauthorized(INVALID_TOKEN)
        return key

    def _refresh(self, now: float) -> None:
        """Fetch the JWKS (caller holds the lock); on failure keep the old keys and back off."""
        url = self.config.effective_jwks_url
        try:
            keys = _parse_jwks(self._fetch(url))
        except Exception as err:  # any fetch hook failure means "cannot verify right now"
            self._next_fetch_at = now + self._retry_after_failure_s
            logger.warning("Could not load the Cognito JWKS from %s: %s", url, type(err).__name__)
            raise AuthUnavailable(UNAVAILABLE) from None
        if not keys:
            logger.warning("The Cognito JWKS at %s holds no RS256 signing keys", url)
        self._keys = keys
        self._loaded = True
        self._next_fetch_at = now + self._min_refresh_interval_s
        logger.info("Loaded %d key(s) from the Cognito JWKS", len(keys))


def identity_from_claims(claims: Mapping[str, Any]) -> tuple[str, str | None]:
    """(Cognito `sub`, lower-cased e-mail or None) from verified claims.

    ID tokens carry `email`. Access tokens carry none, except that in a pool whose usernames are
    e-mail addresses the `username` claim is that address; it is used as a fallback. Claims that
    mark the e-mail explicitly unverified yield None.
    """
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized(INVALID_TOKEN)
    if claims.get("email_verified") in (False, "false"):
        return sub, None
    for name in ("email", "username", "cognito:username"):
        value = claims.get(name)
        if isinstance(value, str) and _split_email(value) is not None:
            return sub, value.strip().lower()
    return sub, None


def _split_email(email: str) -> tuple[str, str] | None:
    """(local part, domain) of a plausible address, else None. Not a full RFC 5322 parser."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain or "." not in domain.strip("."):
        return None
    if any(c.isspace() for c in email.strip()) or domain.startswith(".") or ".." in domain:
        return None
    return local, domain


def email_allowed(email: str, domains: tuple[str, ...] | list[str]) -> bool:
    """Whether the address's domain is one of `domains` (exact, case-insensitive); empty = any.

    Only ASCII domains can match: Unicode case folding maps look-alikes onto ASCII (the Kelvin
    sign lower-cases to "k"), which would let a foreign domain pass as an allowed one.
    """
    parts = _split_email(email)
    if parts is None:
        return False
    if not domains:
        return True
    domain = parts[1]
    if not domain.isascii():
        return False
    allowed = {d.strip().lstrip("@").lower() for d in domains}
    return domain.lower() in allowed


@dataclass(frozen=True)
class Tokens:
    """What a sign-in or refresh returns. Tokens are left out of repr so logging one leaks none."""

    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int


# Cognito error code -> (app error, message for a person). Overridden per operation below.
_ErrorRule: TypeAlias = tuple[type[AppError], str] | None
_WRONG_CREDENTIALS: _ErrorRule = (Unauthorized, "Wrong e-mail or password.")
_TOO_MANY: _ErrorRule = (LimitReached, "Too many attempts: wait a few minutes and try again.")
_ALREADY_CONFIRMED: _ErrorRule = (Conflict, "This e-mail is already confirmed: sign in.")
_BAD_CODE: _ErrorRule = (InvalidInput, "That code is not right: check the e-mail we sent.")
_ERRORS: dict[str, _ErrorRule] = {
    "NotAuthorizedException": _WRONG_CREDENTIALS,
    "UserNotFoundException": _WRONG_CREDENTIALS,  # same answer: do not reveal who has an account
    "UserNotConfirmedException": (
        UserNotConfirmed,
        "Confirm your e-mail first: enter the code we sent.",
    ),
    "UsernameExistsException": (
        Conflict,
        "An account with this e-mail already exists: sign in instead.",
    ),
    "AliasExistsException": (Conflict, "An account with this e-mail already exists."),
    "CodeMismatchException": _BAD_CODE,
    "ExpiredCodeException": (InvalidInput, "That code has expired: ask for a new one."),
    "InvalidParameterException": (InvalidInput, "Check the e-mail address and try again."),
    "PasswordResetRequiredException": (Conflict, "Reset your password before signing in."),
    "TooManyRequestsException": _TOO_MANY,
    "TooManyFailedAttemptsException": _TOO_MANY,
    "LimitExceededException": _TOO_MANY,
}
SESSION_ENDED = "Your session has ended: sign in again."
_SESSION_ENDED: _ErrorRule = (Unauthorized, SESSION_ENDED)


class CognitoClient:
    """The user-pool calls behind the sign-up, confirm, sign-in and sign-out pages.

    All calls are Cognito's public (unauthenticated) operations, so the boto client is unsigned:
    the app's own AWS credentials are neither needed nor sent. The app client must have no
    client secret. Calls block; run them in a thread from async code.
    """

    def __init__(self, config: CognitoConfig, *, boto_client: Any | None = None) -> None:
        self.config = config
        self._boto = boto_client or boto3.client(
            "cognito-idp",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            config=BotoConfig(
                signature_version=UNSIGNED,
                connect_timeout=5,
                read_timeout=10,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def sign_up(self, email: str, password: str) -> None:
        """Create an unconfirmed account (username = e-mail); Cognito e-mails a code."""
        email = _normalize_email(email)
        _check_password(password)
        if not email_allowed(email, self.config.allowed_email_domains):
            raise Forbidden("Sign-up with this e-mail domain is not allowed here.")
        self._call(
            "SignUp",
            lambda: self._boto.sign_up(
                ClientId=self.config.client_id,
                Username=email,
                Password=password,
                UserAttributes=[{"Name": "email", "Value": email}],
            ),
        )

    def confirm_sign_up(self, email: str, code: str) -> None:
        """Enter the e-mailed code, which verifies the address and enables sign-in."""
        email = _normalize_email(email)
        code = code.strip()
        if not code or len(code) > MAX_CODE_CHARS:
            raise InvalidInput("Enter the code from the e-mail we sent.")
        self._call(
            "ConfirmSignUp",
            lambda: self._boto.confirm_sign_up(
                ClientId=self.config.client_id, Username=email, ConfirmationCode=code
            ),
            # Cognito answers NotAuthorized when the account is already confirmed.
            {"NotAuthorizedException": _ALREADY_CONFIRMED, "UserNotFoundException": _BAD_CODE},
        )

    def resend_confirmation_code(self, email: str) -> None:
        """Send a fresh code, for when the first one expired or never arrived."""
        email = _normalize_email(email)
        self._call(
            "ResendConfirmationCode",
            lambda: self._boto.resend_confirmation_code(
                ClientId=self.config.client_id, Username=email
            ),
            {
                "InvalidParameterException": _ALREADY_CONFIRMED,
                "UserNotFoundException": (
                    InvalidInput,
                    "No sign-up is waiting for this e-mail: sign up first.",
                ),
            },
        )

    def sign_in(self, email: str, password: str) -> Tokens:
        """Password sign-in (USER_PASSWORD_AUTH); the app client must allow that flow."""
        email = _normalize_email(email)
        if not password or len(password) > MAX_PASSWORD_CHARS:
            raise Unauthorized("Wrong e-mail or password.")
        response = self._call(
            "InitiateAuth",
            lambda: self._boto.initiate_auth(
                ClientId=self.config.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": password},
            ),
        )
        return self._tokens(response, refresh_token=None)

    def refresh(self, refresh_token: str) -> Tokens:
        """New access and ID tokens; Cognito sends no new refresh token, so the old one is kept."""
        if not refresh_token or len(refresh_token) > MAX_TOKEN_CHARS:
            raise Unauthorized(SESSION_ENDED)
        response = self._call(
            "InitiateAuth",
            lambda: self._boto.initiate_auth(
                ClientId=self.config.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            ),
            {"NotAuthorizedException": _SESSION_ENDED, "UserNotFoundException": _SESSION_ENDED},
        )
        return self._tokens(response, refresh_token=refresh_token)

    def sign_out(self, access_token: str) -> None:
        """Revoke every refresh token of the user (global sign-out).

        Idempotent: a token Cognito no longer accepts means there is nothing left to revoke.
        Already issued access tokens still verify locally until they expire, so the app must
        drop its own session too.
        """
        if not access_token or len(access_token) > MAX_TOKEN_CHARS:
            return
        self._call(
            "GlobalSignOut",
            lambda: self._boto.global_sign_out(AccessToken=access_token),
            {"NotAuthorizedException": None},
        )

    def email_for(self, access_token: str) -> str | None:
        """The user's e-mail attribute (access tokens of some pools carry none)."""
        if not access_token or len(access_token) > MAX_TOKEN_CHARS:
            return None
        response = self._call(
            "GetUser",
            lambda: self._boto.get_user(AccessToken=access_token),
            {"NotAuthorizedException": None},
        )
        for attribute in (response or {}).get("UserAttributes", []):
            if attribute.get("Name") == "email":
                return str(attribute.get("Value", "")).lower() or None
        return None

    def _call(
        self,
        operation: str,
        call: Callable[[], Any],
        overrides: Mapping[str, _ErrorRule] | None = None,
    ) -> Any:
        """Run one boto call and turn its failures into the app's errors.

        Only the error code is logged: Cognito's messages can echo the token or username.
        `from None` keeps the ClientError (and its message) out of any traceback.
        """
        try:
            return call()
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", ""))
            rules = {**_ERRORS, **(overrides or {})}
            if code == "InvalidPasswordException":
                logger.info("Cognito %s refused: %s", operation, code)
                raise InvalidInput(_password_reason(str(error.get("Message", "")))) from None
            if code in rules:
                rule = rules[code]
                logger.info("Cognito %s refused: %s", operation, code)
                if rule is None:
                    return None
                error_type, message = rule
                raise error_type(message) from None
            logger.warning("Cognito %s failed: %s", operation, code or "unknown error")
            raise AuthUnavailable(UNAVAILABLE) from None
        except BotoCoreError as err:
            logger.warning("Cognito %s failed: %s", operation, type(err).__name__)
            raise AuthUnavailable(UNAVAILABLE) from None

    def _tokens(self, response: Mapping[str, Any], *, refresh_token: str | None) -> Tokens:
        result = response.get("AuthenticationResult")
        if not isinstance(result, dict):
            # A challenge (new password, MFA, ...) this app has no page for.
            logger.warning("Cognito asked for challenge %s", response.get("ChallengeName"))
            raise Conflict(
                "This account needs a sign-in step this app does not support; "
                "ask your administrator."
            )
        try:
            return Tokens(
                access_token=str(result["AccessToken"]),
                id_token=str(result["IdToken"]),
                refresh_token=str(result.get("RefreshToken") or refresh_token or ""),
                expires_in=int(result["ExpiresIn"]),
            )
        except (KeyError, TypeError, ValueError):
            logger.warning("Cognito returned an incomplete authentication result")
            raise AuthUnavailable(UNAVAILABLE) from None


def _normalize_email(email: str) -> str:
    """Trimmed and lower-cased, so "A@X.com" and "a@x.com" are one account in any pool."""
    normalized = email.strip().lower()
    if _split_email(normalized) is None or len(normalized) > 254:
        raise InvalidInput("Enter a valid e-mail address.")
    return normalized


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInput("Choose a password.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"Choose a password of at most {MAX_PASSWORD_CHARS} characters.")


def _password_reason(message: str) -> str:
    """Cognito's policy reason ("Password not long enough", ...), trimmed for display."""
    reason = message.strip().removeprefix("Password did not conform with policy:").strip()
    if not reason or len(reason) > 200:
        return "Choose a stronger password."
    return f"Choose a stronger password: {reason.rstrip('.')}."
