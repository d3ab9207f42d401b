"""Cognito sign-in against moto's Cognito over real HTTP, plus tokens forged to be refused.

Confirming a sign-up: moto's ConfirmSignUp ignores the code (any string confirms the user), so the
happy path passes a dummy code. Wrong and expired codes, which moto cannot produce, and
ResendConfirmationCode, which moto does not implement, are checked with botocore's Stubber: it
validates our parameters against the real Cognito API model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import jwt
import pytest
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from app.auth.cognito import (
    EXPIRED_TOKEN,
    INVALID_TOKEN,
    SESSION_ENDED,
    AuthUnavailable,
    CognitoClient,
    CognitoConfig,
    CognitoVerifier,
    Tokens,
    UserNotConfirmed,
    email_allowed,
    fetch_json,
    identity_from_claims,
)
from app.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from tests.auth.conftest import ALLOWED_DOMAIN, PASSWORD, REGION

LOCAL_KID = "local-test-key"
MOTO_KID = "dummy"  # the one key moto signs every pool's tokens with


# --- helpers ---------------------------------------------------------------------------------


class CountingFetch:
    """Wraps a JWKS fetch to count the calls; thread-safe like the verifier using it."""

    def __init__(self, inner: Callable[[str], dict[str, Any]]) -> None:
        self.inner = inner
        self.urls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, url: str) -> dict[str, Any]:
        with self._lock:
            self.urls.append(url)
        return self.inner(url)

    @property
    def count(self) -> int:
        return len(self.urls)


class FakeClock:
    """Monotonic time the test moves by hand, to cross the JWKS refresh window without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@{ALLOWED_DOMAIN}"


def sign_up_and_in(client: CognitoClient) -> tuple[str, Tokens]:
    email = new_email()
    client.sign_up(email, PASSWORD)
    client.confirm_sign_up(email, "000000")  # moto accepts any code
    return email, client.sign_in(email, PASSWORD)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS built by hand, for forgeries pyjwt refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def payload_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def claims_for(
    config: CognitoConfig, token_use: str = "access", /, **changes: Any
) -> dict[str, Any]:
    """Claims shaped like Cognito's; a change of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": config.issuer,
        "sub": str(uuid.uuid4()),
        "token_use": token_use,
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        ("client_id" if token_use == "access" else "aud"): config.client_id,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign_rsa(
    claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str = LOCAL_KID, alg: str = "RS256"
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def jwks_for(key: rsa.RSAPrivateKey, kid: str = LOCAL_KID) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="RS256", use="sig")
    return {"keys": [jwk]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def stubbed_client(config: CognitoConfig) -> tuple[CognitoClient, Stubber]:
    boto_client = boto3.client(
        "cognito-idp",
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return CognitoClient(config, boto_client=boto_client), Stubber(boto_client)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_key() -> rsa.RSAPrivateKey:
    """A key whose public half we hand the verifier, so tests control every claim."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def client(cognito_config: CognitoConfig) -> CognitoClient:
    return CognitoClient(cognito_config)


@pytest.fixture
def tokens(client: CognitoClient) -> Tokens:
    return sign_up_and_in(client)[1]


@pytest.fixture
def moto_fetch() -> CountingFetch:
    return CountingFetch(fetch_json)


@pytest.fixture
def verifier(cognito_config: CognitoConfig, moto_fetch: CountingFetch) -> CognitoVerifier:
    return CognitoVerifier(cognito_config, fetch=moto_fetch)


@pytest.fixture
def local_verifier(cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey) -> CognitoVerifier:
    return CognitoVerifier(cognito_config, fetch=lambda url: jwks_for(local_key))


@pytest.fixture
def app_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything our module logs, at every level."""
    caplog.set_level(logging.DEBUG, logger="app.auth.cognito")
    yield caplog


# --- happy paths over HTTP -------------------------------------------------------------------


def test_sign_up_confirm_sign_in_and_verify_both_tokens(
    client: CognitoClient, cognito_config: CognitoConfig
) -> None:
    email, tokens = sign_up_and_in(client)
    verifier = CognitoVerifier(cognito_config)  # the default fetch: httpx against moto's JWKS

    access = verifier.verify(tokens.access_token, token_use="access")
    id_claims = verifier.verify(tokens.id_token, token_use="id")

    assert access["token_use"] == "access"
    assert access["client_id"] == cognito_config.client_id
    assert id_claims["aud"] == cognito_config.client_id
    assert access["sub"] == id_claims["sub"]
    assert identity_from_claims(id_claims) == (id_claims["sub"], email)
    assert tokens.refresh_token
    assert tokens.expires_in > 0


def test_email_is_normalized_so_case_does_not_split_accounts(client: CognitoClient) -> None:
    email = new_email()
    client.sign_up(f"  {email.upper()} ", PASSWORD)
    client.confirm_sign_up(email.title(), "000000")

    tokens = client.sign_in(email.upper(), PASSWORD)

    assert payload_of(tokens.id_token)["email"] == email


def test_refresh_returns_new_access_token_and_keeps_refresh_token(
    client: CognitoClient, tokens: Tokens, verifier: CognitoVerifier
) -> None:
    refreshed = client.refresh(tokens.refresh_token)

    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.access_token != tokens.access_token
    claims = verifier.verify(refreshed.access_token)
    assert claims["sub"] == payload_of(tokens.access_token)["sub"]
    verifier.verify(refreshed.id_token, token_use="id")


def test_sign_out_revokes_refresh_and_is_idempotent(client: CognitoClient, tokens: Tokens) -> None:
    client.sign_out(tokens.access_token)

    with pytest.raises(Unauthorized, match=SESSION_ENDED):
        client.refresh(tokens.refresh_token)
    client.sign_out(tokens.access_token)  # Cognito now says NotAuthorized: nothing left to do


def test_identity_from_access_token_depends_on_pool_layout(
    client: CognitoClient, username_pool_config: CognitoConfig, tokens: Tokens
) -> None:
    """E-mail username attribute: access tokens carry no e-mail. Username = e-mail: they do."""
    assert identity_from_claims(payload_of(tokens.access_token))[1] is None

    email, plain = sign_up_and_in(CognitoClient(username_pool_config))
    verifier = CognitoVerifier(username_pool_config)
    access = verifier.verify(plain.access_token)
    assert identity_from_claims(access) == (access["sub"], email)
    assert identity_from_claims(verifier.verify(plain.id_token, token_use="id"))[1] == email


# --- Cognito errors as the app's errors ------------------------------------------------------


def test_wrong_password_and_unknown_user_get_the_same_answer(client: CognitoClient) -> None:
    email, _ = sign_up_and_in(client)

    with pytest.raises(Unauthorized, match="Wrong e-mail or password") as wrong:
        client.sign_in(email, PASSWORD + "x")
    with pytest.raises(Unauthorized) as unknown:
        client.sign_in(new_email(), PASSWORD)

    assert unknown.value.message == wrong.value.message


def test_sign_in_before_confirming_asks_for_the_code(client: CognitoClient) -> None:
    email = new_email()
    client.sign_up(email, PASSWORD)

    with pytest.raises(UserNotConfirmed, match="Confirm your e-mail first") as caught:
        client.sign_in(email, PASSWORD)

    assert isinstance(caught.value, Conflict)
    assert caught.value.code == "user_not_confirmed"


def test_sign_up_twice_is_a_conflict(client: CognitoClient) -> None:
    email = new_email()
    client.sign_up(email, PASSWORD)

    with pytest.raises(Conflict, match="already exists"):
        client.sign_up(email, PASSWORD)


def test_weak_password_is_invalid_input_with_reason(client: CognitoClient) -> None:
    with pytest.raises(InvalidInput, match=r"Choose a stronger password: .*policy"):
        client.sign_up(new_email(), "weak")


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "two words@example.com", "@example.com"]
)
def test_malformed_email_is_refused_before_calling_aws(client: CognitoClient, email: str) -> None:
    with pytest.raises(InvalidInput, match="valid e-mail"):
        client.sign_up(email, PASSWORD)


def test_unsupported_challenge_is_a_clear_conflict(
    client: CognitoClient, cognito_admin: Any, cognito_config: CognitoConfig
) -> None:
    """An admin-created user must set a new password first (NEW_PASSWORD_REQUIRED)."""
    email = new_email()
    cognito_admin.admin_create_user(
        UserPoolId=cognito_config.user_pool_id,
        Username=email,
        TemporaryPassword=PASSWORD,
        MessageAction="SUPPRESS",
    )

    with pytest.raises(Conflict, match="does not support"):
        client.sign_in(email, PASSWORD)


@pytest.mark.parametrize(
    ("error_code", "cognito_message", "expected"),
    [
        ("CodeMismatchException", "Invalid verification code provided", "code is not right"),
        ("ExpiredCodeException", "Invalid code provided, please request", "code has expired"),
    ],
)
def test_bad_confirmation_code_is_invalid_input(
    cognito_config: CognitoConfig, error_code: str, cognito_message: str, expected: str
) -> None:
    client, stubber = stubbed_client(cognito_config)
    email = new_email()
    stubber.add_client_error(
        "confirm_sign_up",
        service_error_code=error_code,
        service_message=cognito_message,
        expected_params={
            "ClientId": cognito_config.client_id,
            "Username": email,
            "ConfirmationCode": "123456",
        },
    )
    with stubber, pytest.raises(InvalidInput, match=expected):
        client.confirm_sign_up(email, " 123456 ")


def test_real_cognito_password_reason_is_shown(cognito_config: CognitoConfig) -> None:
    client, stubber = stubbed_client(cognito_config)
    stubber.add_client_error(
        "sign_up",
        service_error_code="InvalidPasswordException",
        service_message="Password did not conform with policy: Password not long enough",
    )
    with stubber, pytest.raises(InvalidInput) as caught:
        client.sign_up(new_email(), "Sh0rt!")

    assert caught.value.message == "Choose a stronger password: Password not long enough."


def test_resend_confirmation_code(cognito_config: CognitoConfig) -> None:
    client, stubber = stubbed_client(cognito_config)
    email = new_email()
    stubber.add_response(
        "resend_confirmation_code",
        {"CodeDeliveryDetails": {"DeliveryMedium": "EMAIL"}},
        {"ClientId": cognito_config.client_id, "Username": email},
    )
    stubber.add_client_error(
        "resend_confirmation_code",
        service_error_code="InvalidParameterException",
        service_message="User is already confirmed.",
    )
    with stubber:
        client.resend_confirmation_code(email)
        with pytest.raises(Conflict, match="already confirmed"):
            client.resend_confirmation_code(email)


def test_unexpected_cognito_error_reveals_no_internals(cognito_config: CognitoConfig) -> None:
    client, stubber = stubbed_client(cognito_config)
    stubber.add_client_error(
        "initiate_auth",
        service_error_code="InternalErrorException",
        service_message="stack frame 0x7f secret-internal-detail",
        http_status_code=500,
    )
    with stubber, pytest.raises(AuthUnavailable) as caught:
        client.sign_in(new_email(), PASSWORD)

    assert "secret-internal-detail" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_unreachable_cognito_is_unavailable(cognito_config: CognitoConfig) -> None:
    boto_client = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=BotoConfig(connect_timeout=1, retries={"max_attempts": 1}),
    )
    with pytest.raises(AuthUnavailable, match="not available"):
        CognitoClient(cognito_config, boto_client=boto_client).sign_in(new_email(), PASSWORD)


# --- allowed e-mail domains ------------------------------------------------------------------


def test_sign_up_with_foreign_domain_is_forbidden_and_creates_nothing(
    client: CognitoClient, cognito_admin: Any, cognito_config: CognitoConfig
) -> None:
    local_part = f"user-{uuid.uuid4().hex[:12]}"
    client.sign_up(f"{local_part}@{ALLOWED_DOMAIN}", PASSWORD)

    with pytest.raises(Forbidden, match="domain is not allowed"):
        client.sign_up(f"{local_part}@elsewhere.org", PASSWORD)

    users = cognito_admin.list_users(UserPoolId=cognito_config.user_pool_id)["Users"]
    emails = {a["Value"] for u in users for a in u["Attributes"] if a["Name"] == "email"}
    assert f"{local_part}@{ALLOWED_DOMAIN}" in emails  # the listing does show sign-ups
    assert f"{local_part}@elsewhere.org" not in emails


@pytest.mark.parametrize(
    ("email", "domains", "allowed"),
    [
        ("a@example.com", ("example.com",), True),
        ("A@EXAMPLE.COM", ("Example.com",), True),
        ("a@example.com", (), True),
        ("a@sub.example.com", ("example.com",), False),
        ("a@example.com.evil.org", ("example.com",), False),
        ("a@notexample.com", ("example.com",), False),
        ('"a@example.com"@evil.org', ("example.com",), False),
        ("a@\u212aexample.com", ("kexample.com",), False),  # Kelvin sign lower-cases to "k"
        ("not-an-address", (), False),
    ],
)
def test_email_allowed(email: str, domains: tuple[str, ...], allowed: bool) -> None:
    assert email_allowed(email, domains) is allowed


# --- forged and wrong tokens -----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_verify_rejects_alg_none(
    verifier: CognitoVerifier, moto_fetch: CountingFetch, tokens: Tokens, alg: str
) -> None:
    forged = compact(
        {"alg": alg, "typ": "JWT", "kid": MOTO_KID},
        payload_of(tokens.access_token),
        lambda _: b"",
    )
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(forged)
    assert moto_fetch.count == 0  # refused on the header alone


@pytest.mark.parametrize(
    "pem_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
def test_verify_rejects_hs256_signed_with_public_key(
    verifier: CognitoVerifier,
    cognito_config: CognitoConfig,
    tokens: Tokens,
    pem_format: serialization.PublicFormat,
) -> None:
    """The classic key-confusion attack: the attacker knows the public key, so uses it as secret."""
    jwk = fetch_json(cognito_config.effective_jwks_url)["keys"][0]
    public_key = RSAAlgorithm.from_jwk(jwk)
    assert isinstance(public_key, rsa.RSAPublicKey)
    pem = public_key.public_bytes(serialization.Encoding.PEM, pem_format)
    forged = compact(
        {"alg": "HS256", "typ": "JWT", "kid": MOTO_KID},
        payload_of(tokens.access_token),
        lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
    )
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(forged)


@pytest.mark.parametrize("alg", ["RS512", "PS256", "RS384"])
def test_verify_rejects_other_algorithms_even_with_a_good_key(
    local_verifier: CognitoVerifier,
    cognito_config: CognitoConfig,
    local_key: rsa.RSAPrivateKey,
    alg: str,
) -> None:
    token = sign_rsa(claims_for(cognito_config), local_key, alg=alg)
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        local_verifier.verify(token)


def test_verify_rejects_unknown_kid_and_refreshes_jwks_at_most_once_per_window(
    cognito_config: CognitoConfig, moto_fetch: CountingFetch, tokens: Tokens
) -> None:
    clock = FakeClock()
    verifier = CognitoVerifier(
        cognito_config, fetch=moto_fetch, min_refresh_interval_s=60, clock=clock
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forged() -> str:
        return sign_rsa(claims_for(cognito_config), stranger, kid=uuid.uuid4().hex)

    verifier.verify(tokens.access_token)
    assert moto_fetch.count == 1
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(forged())
    assert moto_fetch.count == 1  # keys were fetched moments ago: no refresh yet

    clock.now += 61
    for _ in range(5):
        with pytest.raises(Unauthorized, match=INVALID_TOKEN):
            verifier.verify(forged())
    assert moto_fetch.count == 2  # one refresh for the first unknown kid, none for the rest

    clock.now += 61
    with pytest.raises(Unauthorized):
        verifier.verify(forged())
    assert moto_fetch.count == 3  # the window passed again: one more refresh

    verifier.verify(tokens.access_token)  # the real key survived the refreshes
    assert moto_fetch.count == 3


def test_verify_rejects_expired(
    local_verifier: CognitoVerifier, cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey
) -> None:
    now = int(time.time())
    token = sign_rsa(claims_for(cognito_config, iat=now - 7200, exp=now - 3600), local_key)
    with pytest.raises(Unauthorized, match=EXPIRED_TOKEN):
        local_verifier.verify(token)


@pytest.mark.parametrize("missing", ["exp", "iss", "sub", "token_use", "iat"])
def test_verify_rejects_missing_required_claim(
    local_verifier: CognitoVerifier,
    cognito_config: CognitoConfig,
    local_key: rsa.RSAPrivateKey,
    missing: str,
) -> None:
    token = sign_rsa(claims_for(cognito_config, **{missing: None}), local_key)
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        local_verifier.verify(token)


def test_verify_accepts_a_token_it_should(
    local_verifier: CognitoVerifier, cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey
) -> None:
    """Control for the forgeries below: the same recipe with nothing wrong passes."""
    claims = claims_for(cognito_config)
    assert local_verifier.verify(sign_rsa(claims, local_key))["sub"] == claims["sub"]


def test_verify_rejects_wrong_issuer(
    local_verifier: CognitoVerifier, cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey
) -> None:
    other_pool = f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_SomeoneElse"
    token = sign_rsa(claims_for(cognito_config, iss=other_pool), local_key)
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        local_verifier.verify(token)


@pytest.mark.parametrize("token_use", ["access", "id"])
def test_verify_rejects_wrong_client_id(
    local_verifier: CognitoVerifier,
    cognito_config: CognitoConfig,
    local_key: rsa.RSAPrivateKey,
    token_use: Any,
) -> None:
    client_claim = "client_id" if token_use == "access" else "aud"
    claims = claims_for(cognito_config, token_use, **{client_claim: "another-client"})
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        local_verifier.verify(sign_rsa(claims, local_key), token_use=token_use)


def test_verify_rejects_id_token_as_access_token_and_vice_versa(
    verifier: CognitoVerifier, tokens: Tokens
) -> None:
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(tokens.id_token, token_use="access")
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(tokens.access_token, token_use="id")


@pytest.mark.parametrize("change", [{"sub": "someone-else"}, {"exp": 4102444800}])
def test_verify_rejects_tampered_payload(
    verifier: CognitoVerifier, tokens: Tokens, change: dict[str, Any]
) -> None:
    header, _, signature = tokens.access_token.split(".")
    claims = {**payload_of(tokens.access_token), **change}
    tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"

    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(tampered)


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "a.b", "x" * 20_000, "..", "e30.e30.e30"])
def test_verify_rejects_junk(verifier: CognitoVerifier, junk: str) -> None:
    with pytest.raises(Unauthorized, match=INVALID_TOKEN):
        verifier.verify(junk)


# --- JWKS fetching and caching ---------------------------------------------------------------


def test_jwks_is_fetched_once_for_twenty_tokens(
    client: CognitoClient, verifier: CognitoVerifier, moto_fetch: CountingFetch
) -> None:
    _, first = sign_up_and_in(client)
    sessions = [first] + [client.refresh(first.refresh_token) for _ in range(9)]

    for session in sessions:
        verifier.verify(session.access_token)
        verifier.verify(session.id_token, token_use="id")

    assert moto_fetch.count == 1
    assert moto_fetch.urls == [verifier.config.effective_jwks_url]


def test_concurrent_first_use_fetches_jwks_once(
    cognito_config: CognitoConfig, moto_fetch: CountingFetch, tokens: Tokens
) -> None:
    verifier = CognitoVerifier(cognito_config, fetch=moto_fetch)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: verifier.verify(tokens.access_token), range(20)))

    assert len({r["jti"] for r in results}) == 1
    assert moto_fetch.count == 1


def test_unreachable_jwks_is_unavailable_and_backs_off(
    cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey
) -> None:
    config = CognitoConfig(
        region=REGION,
        user_pool_id=cognito_config.user_pool_id,
        client_id=cognito_config.client_id,
        jwks_url=f"http://127.0.0.1:{closed_port()}/pool/.well-known/jwks.json",
    )
    fetch, clock = CountingFetch(fetch_json), FakeClock()
    verifier = CognitoVerifier(config, fetch=fetch, retry_after_failure_s=5, clock=clock)
    token = sign_rsa(claims_for(config), local_key)

    for _ in range(3):
        with pytest.raises(AuthUnavailable):
            verifier.verify(token)
    assert fetch.count == 1

    clock.now += 6
    with pytest.raises(AuthUnavailable):
        verifier.verify(token)
    assert fetch.count == 2


def test_jwks_entries_that_are_not_rs256_signing_keys_are_ignored(
    cognito_config: CognitoConfig, local_key: rsa.RSAPrivateKey
) -> None:
    good = jwks_for(local_key)["keys"][0]
    jwks = {
        "keys": [
            "junk",
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "broken", "n": "!!"},
            good,
        ]
    }
    verifier = CognitoVerifier(cognito_config, fetch=lambda url: jwks)

    verifier.verify(sign_rsa(claims_for(cognito_config), local_key))
    with pytest.raises(Unauthorized):
        verifier.verify(sign_rsa(claims_for(cognito_config), local_key, kid="enc"))


# --- small pieces ----------------------------------------------------------------------------


def test_config_defaults_and_normalization() -> None:
    config = CognitoConfig(
        region="eu-west-1",
        user_pool_id="eu-west-1_Abc",
        client_id="client",
        allowed_email_domains=(" @Example.COM ", ""),
    )
    assert config.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc"
    assert config.effective_jwks_url == f"{config.issuer}/.well-known/jwks.json"
    assert config.allowed_email_domains == ("example.com",)
    with pytest.raises(ValueError, match="client_id"):
        CognitoConfig(region="eu-west-1", user_pool_id="p", client_id=" ")


def test_identity_from_claims_edge_cases() -> None:
    assert identity_from_claims({"sub": "s", "email": "A@B.com"}) == ("s", "a@b.com")
    assert identity_from_claims({"sub": "s", "email": "a@b.com", "email_verified": False}) == (
        "s",
        None,
    )
    assert identity_from_claims({"sub": "s", "username": "not-an-email"}) == ("s", None)
    with pytest.raises(Unauthorized):
        identity_from_claims({"email": "a@b.com"})


def test_tokens_repr_hides_tokens() -> None:
    tokens = Tokens(
        access_token="AAA-secret", id_token="III-secret", refresh_token="RRR", expires_in=1
    )
    assert "secret" not in repr(tokens)
    assert "RRR" not in repr(tokens)


def test_no_token_or_password_in_our_logs(
    app_logs: pytest.LogCaptureFixture,
    client: CognitoClient,
    verifier: CognitoVerifier,
    cognito_config: CognitoConfig,
    local_key: rsa.RSAPrivateKey,
) -> None:
    """moto echoes the access token in GlobalSignOut's error message; it must not reach our logs."""
    email, tokens = sign_up_and_in(client)
    verifier.verify(tokens.access_token)
    with pytest.raises(Unauthorized):
        verifier.verify(tokens.id_token)
    with pytest.raises(Unauthorized):
        client.sign_in(email, "Wrong-Password-1")
    client.sign_out(tokens.access_token)
    client.sign_out(tokens.access_token)  # refused by Cognito with the token in the message
    with pytest.raises(Unauthorized):
        client.refresh(tokens.refresh_token)

    logged = app_logs.text
    assert app_logs.records  # the logging did happen
    for secret in (tokens.access_token, tokens.id_token, tokens.refresh_token, "Wrong-Password-1"):
        assert secret not in logged
        assert secret.split(".")[-1] not in logged
