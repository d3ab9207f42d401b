"""Signing out ends an access token on the server at once: on HTTP, on a new `/ws`, and on a
`/ws` that is already open; an expiring token closes its socket when it expires."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jwt
import websockets

from app.auth.local import ISSUER
from tests.api.conftest import Api


def tokens(api: Api, email: str) -> dict[str, str]:
    api.sign_up(email)
    with api.client() as http:
        answer = http.post(
            "/auth/local/token", json={"email": email, "password": "correct horse battery"}
        )
    return dict(answer.json())


async def closed_code(ws: websockets.ClientConnection, within: float) -> int | None:
    """The close code the server sends within `within` seconds (None if it stays open)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None


async def test_sign_out_ends_the_token_on_every_channel(api: Api) -> None:
    pair = tokens(api, "ann@example.com")
    access, refresh = pair["access_token"], pair["refresh_token"]
    ws_url = api.url.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url, subprotocols=["bearer", access]) as open_socket:  # type: ignore[list-item]
        await open_socket.send(json.dumps({"id": 1, "op": "status", "session_id": "x"}))
        assert json.loads(await open_socket.recv())["error"]["status"] == 404  # it works

        with api.client(access) as http:
            assert http.get("/auth/me").status_code == 200
            signed_out = http.post("/auth/signout", json={"refresh_token": refresh})
            assert signed_out.status_code == 204
            refused = http.get("/auth/me")
        assert refused.status_code == 401
        assert "signed out" in refused.json()["detail"]
        assert await closed_code(open_socket, within=2) == 4401, "the open socket is closed"

    try:
        async with websockets.connect(ws_url, subprotocols=["bearer", access]) as ws:  # type: ignore[list-item]
            await ws.recv()
        raise AssertionError("a new socket with the revoked token was accepted")
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4401
    with api.client() as http:
        assert http.post("/auth/local/refresh", json={"refresh_token": refresh}).status_code == 401
        # The revocation is in the database, for every instance of the app.
    assert api.services.store.is_revoked(
        "jti:" + jwt.decode(access, options={"verify_signature": False})["jti"]
    )


async def test_signing_out_one_token_leaves_the_others(api: Api) -> None:
    first = tokens(api, "bob@example.com")
    with api.client() as http:
        again = http.post(
            "/auth/local/token",
            json={"email": "bob@example.com", "password": "correct horse battery"},
        ).json()
    with api.client(first["access_token"]) as http:
        assert http.post("/auth/signout").status_code == 204
    with api.client(again["access_token"]) as http:
        assert http.get("/auth/me").status_code == 200, "another device stays signed in"


async def test_an_expiring_token_closes_its_socket(api: Api, tmp_path: Path) -> None:
    api.sign_up("cid@example.com")
    user = api.services.store.find_user("cid@example.com")
    assert user is not None
    key = (tmp_path / "secret.key").read_text().strip()
    now = int(time.time())
    short = jwt.encode(
        {
            "sub": user.id,
            "iss": ISSUER,
            "aud": ISSUER,
            "token_use": "access",
            "iat": now,
            "exp": now + 2,
            "jti": "short-lived",
        },
        key,
        algorithm="HS256",
    )
    ws_url = api.url.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url, subprotocols=["bearer", short]) as ws:  # type: ignore[list-item]
        started = time.monotonic()
        assert await closed_code(ws, within=6) == 4401
    assert time.monotonic() - started < 5
