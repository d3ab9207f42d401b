"""Sign-in and authorisation: every route refuses strangers and other users' objects."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import websockets

from app.api.main import create_api
from tests.api.conftest import Api

TURN = "5f0c6a2e-8d1b-4c3a-9e7f-1a2b3c4d5e6f"  # a turn id of the right shape
BODIES: dict[str, dict[str, Any]] = {
    "/sessions/{session_id}/messages/stream": {"message": "echo hi"},
    "/sessions/{session_id}/messages": {"message": "echo hi"},
    "/sessions/{session_id}/permissions/respond": {"request_id": "r", "allowed": True},
    "/sessions/{session_id}/permission_mode": {"mode": "plan"},
    "/sessions/{session_id}/model": {"model": "claude-haiku-4-5"},
    "/sessions/{session_id}": {"title": "stolen"},
    "/sessions/{session_id}/rewind": {"at": TURN},
}
QUERIES: dict[str, dict[str, Any]] = {"/sessions/{session_id}/rewind-preview": {"at": TURN}}
OPEN = {
    "/ping",
    "/health",
    "/auth/local/signup",
    "/auth/local/token",
    "/auth/local/refresh",
    "/auth/local/signout",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/oauth/github/callback",  # a browser navigation: its signed state says whose (test_github)
}


def session_routes() -> list[tuple[str, str]]:
    spec = create_api().openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if "{session_id}" in path
    ]


def test_every_session_route_hides_other_users_sessions(api: Api) -> None:
    ann, bob = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
    with api.client(ann) as http:
        session_id = http.post("/sessions", json={"title": "ann's secret"}).json()["session_id"]
        assert (
            http.post(f"/sessions/{session_id}/messages", json={"message": "echo mine"}).status_code
            == 200
        )
    routes = session_routes()
    assert len(routes) >= 14
    with api.client(bob) as http:
        for method, path in routes:
            response = http.request(
                method,
                path.format(session_id=session_id),
                json=BODIES.get(path),
                params=QUERIES.get(path),
            )
            assert response.status_code == 404, (method, path, response.status_code)
            assert "ann" not in response.text
            via = http.post(
                "/invocations",
                json={
                    "path": path,
                    "method": method,
                    "path_params": {"session_id": session_id},
                    "query_params": QUERIES.get(path, {}),
                    "payload": BODIES.get(path),
                },
            )
            assert via.status_code == 404, ("invocations", method, path)
        assert http.get("/sessions").json()["sessions"] == []
        assert http.get("/sessions/available").json()["total"] == 0
        assert http.get("/projects").json()["projects"] == []
        assert http.post("/sessions", json={"resume_session_id": session_id}).status_code == 404
    with api.client(ann) as http:
        row = http.get(f"/sessions/{session_id}").json()
        assert row["title"] == "mine" or row["title"] == "ann's secret"
        assert row["turns"] == 1, "nothing bob did reached ann's session"


def test_websocket_ops_on_another_users_session_fail(api: Api) -> None:
    ann, bob = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
    with api.client(ann) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]

    async def try_all() -> list[dict[str, Any]]:
        url = api.url.replace("http", "ws") + "/ws"
        replies = []
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {bob}"}
        ) as ws:
            for op in ("subscribe", "send", "status", "history", "interrupt", "set_mode", "answer"):
                await ws.send(
                    json.dumps(
                        {
                            "id": op,
                            "op": op,
                            "session_id": session_id,
                            "message": "x",
                            "mode": "plan",
                            "request_id": "r",
                            "allowed": True,
                        }
                    )
                )
                replies.append(json.loads(await ws.recv()))
        return replies

    for reply in asyncio.run(try_all()):
        assert reply["ok"] is False and reply["error"]["status"] == 404, reply


def test_every_protected_route_needs_a_token(api: Api) -> None:
    spec = create_api().openapi()
    with api.client() as http:
        for path, item in spec["paths"].items():
            if path in OPEN:
                continue
            for method in item:
                response = http.request(method.upper(), path.replace("{session_id}", "x"), json={})
                assert response.status_code == 401, (method, path)


def test_forged_local_tokens_are_refused(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    forged = {
        "alg none": jwt.encode(claims, key=None, algorithm="none"),
        "wrong key": jwt.encode(claims, "x" * 48, algorithm="HS256"),
        "expired": jwt.encode(
            {**claims, "exp": int(time.time()) - 10}, "x" * 48, algorithm="HS256"
        ),
        "tampered": _tamper(token, sub="someone-else"),
        "wrong issuer": jwt.encode(
            {**claims, "iss": "evil"}, "x" * 48, algorithm="HS256", headers=header
        ),
        "garbage": "not-a-token",
    }
    with api.client() as http:
        for name, bad in forged.items():
            response = http.get("/sessions", headers={"Authorization": f"Bearer {bad}"})
            assert response.status_code == 401, name
        assert (
            http.get("/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )


def test_sign_up_sign_in_refresh_and_sign_out(api: Api) -> None:
    with api.client() as http:
        assert (
            http.post(
                "/auth/local/signup", json={"email": "not-an-email", "password": "long enough pw"}
            ).status_code
            == 400
        )
        short = http.post(
            "/auth/local/signup", json={"email": "ann@example.com", "password": "short"}
        )
        assert short.status_code == 400 and "10 characters" in short.json()["detail"]
        assert (
            http.post(
                "/auth/local/signup",
                json={"email": "Ann@Example.com", "password": "long enough pw"},
            ).status_code
            == 201
        )
        again = http.post(
            "/auth/local/signup", json={"email": "ann@example.com", "password": "long enough pw"}
        )
        assert again.status_code == 409
        wrong = http.post(
            "/auth/local/token", json={"email": "ann@example.com", "password": "wrong password"}
        )
        assert wrong.status_code == 401 and wrong.json()["detail"] == "Wrong e-mail or password."
        tokens = http.post(
            "/auth/local/token", json={"email": "ANN@example.com", "password": "long enough pw"}
        ).json()
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600

        renewed = http.post("/auth/local/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert renewed.status_code == 200
        reused = http.post("/auth/local/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 401, "a refresh token works once"
        new_refresh = renewed.json()["refresh_token"]
        assert (
            http.post("/auth/local/signout", json={"refresh_token": new_refresh}).status_code == 204
        )
        assert (
            http.post("/auth/local/refresh", json={"refresh_token": new_refresh}).status_code == 401
        )
        me = http.get(
            "/auth/me", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"}
        )
        assert me.json()["email"] == "ann@example.com"


def test_failed_sign_ins_are_slowed_then_refused(api: Api) -> None:
    throttle = api.services.auth.local.throttle  # type: ignore[union-attr]
    throttle.base_delay_s = 0.05
    with api.client() as http:
        http.post(
            "/auth/local/signup", json={"email": "ann@example.com", "password": "long enough pw"}
        )
        timings = []
        for _ in range(throttle.max_failures):
            started = time.monotonic()
            assert (
                http.post(
                    "/auth/local/token", json={"email": "ann@example.com", "password": "bad"}
                ).status_code
                == 401
            )
            timings.append(time.monotonic() - started)
        assert timings[-1] > timings[0] * 4, "each failure waits longer"
        locked = http.post(
            "/auth/local/token", json={"email": "ann@example.com", "password": "long enough pw"}
        )
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.json()["detail"]


def _tamper(token: str, **changes: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims.update(changes)
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{head}.{body}.{signature}"
