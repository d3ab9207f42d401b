"""The session API over real HTTP: REST + SSE, /invocations and /ws, each with an approval."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.api.conftest import Api, sse_events


def stream_turn(
    http: httpx.Client, path: str, body: dict[str, Any], on_permission: Any
) -> list[dict[str, Any]]:
    """POST a message, answer permission frames with `on_permission`, collect frames to `done`."""
    frames = []
    with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in sse_events(response):
            frames.append(frame)
            if frame["type"] == "permission":
                threading.Thread(target=on_permission, args=(frame["permission"],)).start()
            if frame["type"] == "done":
                break
    return frames


def test_rest_conversation_with_an_approval(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        created = http.post("/sessions", json={"user_id": "ignored"}).json()
        assert created["status"] == "connected"
        session_id = created["session_id"]

        def allow(permission: dict[str, Any]) -> None:
            with api.client(token) as other:
                answer = {
                    "request_id": permission["request_id"],
                    "allowed": True,
                    "apply_suggestions": False,
                }
                response = other.post(f"/sessions/{session_id}/permissions/respond", json=answer)
                assert response.status_code == 200, response.text

        frames = stream_turn(
            http, f"/sessions/{session_id}/messages/stream", {"message": "write rest.txt"}, allow
        )
        types = [f["type"] for f in frames]
        assert types[0] == "start" and types[-1] == "done"
        for seed_type in ("tool_use", "permission", "user_message", "text", "result"):
            assert seed_type in types
        assert "text_delta" in types, "token deltas as an extra frame type"
        seqs = [f["seq"] for f in frames if f["type"] != "done"]
        assert seqs == sorted(seqs)
        assert frames[-2]["type"] == "turn_end" and frames[-2]["status"] == "done"
        tool_use = next(f for f in frames if f["type"] == "tool_use")
        assert tool_use["tool_name"] == "Write" and tool_use["tool_input"]["file_path"].endswith(
            "rest.txt"
        )
        result = next(f for f in frames if f["type"] == "result")
        assert result["cost_usd"] > 0 and result["session_id"] == session_id

        project = api.services.engine.project_dir(_user_id(http), created["project_id"])
        assert (project / "rest.txt").read_text() == "scripted content\n"

        status = http.get(f"/sessions/{session_id}/status").json()
        assert status["status"] == "idle" and status["pending_permission"] is None
        history = http.get(f"/sessions/{session_id}/history", params={"limit": 2}).json()
        assert history["messages"][-1]["text"].startswith("Write result:")
        assert history["has_more"] is True
        older = http.get(
            f"/sessions/{session_id}/history", params={"before": history["before"], "limit": 50}
        ).json()
        assert older["messages"][0]["text"] == "write rest.txt"
        available = http.get("/sessions/available").json()
        assert available["total"] == 1 and available["sessions"][0]["session_id"] == session_id


def test_dropped_stream_resumes_with_last_event_id(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        first: list[dict[str, Any]] = []
        with http.stream(
            "POST", f"/sessions/{session_id}/messages/stream", json={"message": "long story"}
        ) as response:
            for frame in sse_events(response):
                first.append(frame)
                if sum(1 for f in first if f["type"] == "text_delta") == 20:
                    break  # the connection drops mid-answer
        last_id = first[-1]["seq"]
        rest: list[dict[str, Any]] = []
        with http.stream(
            "POST",
            f"/sessions/{session_id}/messages/stream",
            json={"message": "long story"},
            headers={"Last-Event-ID": str(last_id)},
        ) as response:
            for frame in sse_events(response):
                rest.append(frame)
                if frame["type"] == "done":
                    break
        seqs = [f["seq"] for f in first + rest if f["type"] != "done"]
        assert len(seqs) == len(set(seqs)), "nothing twice"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "nothing missing"
        deltas = [f for f in first + rest if f["type"] == "text_delta"]
        assert len(deltas) == 400
        final = next(f for f in rest if f["type"] == "text")
        assert "".join(d["content"] for d in deltas) == final["content"]
        assert sum(1 for f in first + rest if f["type"] == "start") == 1, (
            "the message was not sent twice"
        )


def test_invocations_dispatch_to_the_same_routes(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:

        def invoke(path: str, method: str = "POST", **kw: Any) -> httpx.Response:
            return http.post("/invocations", json={"path": path, "method": method, **kw})

        created = invoke("/sessions", payload={}).json()
        session_id = created["session_id"]
        params = {"session_id": session_id}

        def deny(permission: dict[str, Any]) -> None:
            with api.client(token) as other:
                other.post(
                    "/invocations",
                    json={
                        "path": "/sessions/{session_id}/permissions/respond",
                        "method": "POST",
                        "path_params": params,
                        "payload": {
                            "request_id": permission["request_id"],
                            "allowed": False,
                            "message": "no thanks",
                        },
                    },
                )

        frames = stream_turn(
            http,
            "/invocations",
            {
                "path": "/sessions/{session_id}/messages/stream",
                "method": "POST",
                "path_params": params,
                "payload": {"message": "write via-invocations.txt"},
            },
            deny,
        )
        assert frames[-1]["type"] == "done"
        assert "no thanks" in next(f for f in frames if f["type"] == "text")["content"]
        status = invoke("/sessions/{session_id}/status", "GET", path_params=params)
        assert status.status_code == 200 and status.json()["session_id"] == session_id
        page = invoke("/sessions/available", "GET", query_params={"limit": 1}).json()
        assert page["limit"] == 1 and page["total"] == 1
        unknown = invoke("/nope", "GET")
        assert unknown.status_code == 404 and unknown.json()["detail"] == "Unknown path or method"
        assert invoke("/sessions/{session_id}/status", "PUT", path_params=params).status_code == 404
        assert invoke("/invocations", "POST").status_code == 404
        assert invoke("/sessions/{session_id}/status", "GET").status_code == 400, (
            "missing path param"
        )
    with api.client() as anonymous:
        response = anonymous.post("/invocations", json={"path": "/sessions", "method": "GET"})
        assert response.status_code == 401


def test_websocket_conversation_with_an_approval(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    ws_url = api.url.replace("http", "ws") + "/ws"

    async def conversation() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"id": 1, "op": "create"}))
            created = json.loads(await ws.recv())
            assert created["ok"], created
            session_id = created["result"]["session_id"]
            await ws.send(
                json.dumps(
                    {"id": 2, "op": "send", "session_id": session_id, "message": "write ws.txt"}
                )
            )
            events: list[dict[str, Any]] = []
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message.get("op") != "event":
                    assert message["ok"], message
                    continue
                event = message["event"]
                events.append(event)
                if event["type"] == "permission":
                    await ws.send(
                        json.dumps(
                            {
                                "id": 3,
                                "op": "answer",
                                "session_id": session_id,
                                "request_id": event["permission"]["request_id"],
                                "allowed": True,
                            }
                        )
                    )
                if event["type"] == "result":
                    return events

    events = asyncio.run(conversation())
    types = [e["type"] for e in events]
    assert types.index("permission") < types.index("result")
    assert "Write result" in next(e for e in events if e["type"] == "text")["content"]
    assert list(Path(api.services.settings.projects_dir).rglob("ws.txt"))


def test_websocket_refuses_missing_or_bad_tokens(api: Api) -> None:
    ws_url = api.url.replace("http", "ws") + "/ws"

    async def attempt(**kwargs: Any) -> int | None:
        try:
            async with websockets.connect(ws_url, **kwargs) as ws:
                await ws.recv()
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None

    assert asyncio.run(attempt()) == 4401
    assert asyncio.run(attempt(subprotocols=["bearer", "not.a.token"])) == 4401


def test_ping_reports_busy_while_a_turn_runs(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http, api.client() as anonymous:
        assert anonymous.get("/ping").json()["status"] == "Healthy"
        assert anonymous.get("/health").json()["status"] == "ok"
        session_id = http.post("/sessions", json={}).json()["session_id"]
        with http.stream(
            "POST", f"/sessions/{session_id}/messages/stream", json={"message": "long story"}
        ) as response:
            for frame in sse_events(response):
                if frame["type"] == "text_delta":
                    break
            ping = anonymous.get("/ping").json()
            assert ping["status"] == "HealthyBusy" and isinstance(ping["time_of_last_update"], int)
            assert http.post(f"/sessions/{session_id}/interrupt").status_code == 200


def test_bad_input_gets_clear_errors(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        assert (
            http.post(f"/sessions/{session_id}/permission_mode", json={"mode": "yolo"}).status_code
            == 422
        )
        empty = http.post(f"/sessions/{session_id}/messages", json={"message": "   "})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]
        unknown = http.post(
            f"/sessions/{session_id}/permissions/respond", json={"request_id": "x", "allowed": True}
        )
        assert unknown.status_code == 404
        idle = http.post(f"/sessions/{session_id}/interrupt")
        assert idle.status_code == 409 and "Nothing is running" in idle.json()["detail"]
        bad_id = http.post(
            f"/sessions/{session_id}/messages/stream",
            json={"message": "hi"},
            headers={"Last-Event-ID": "abc"},
        )
        assert bad_id.status_code == 400


def test_runtime_session_id_is_bound_to_its_first_user(api: Api) -> None:
    ann, bob = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
    runtime_id = "ann-sub@workspace/" + "x" * 20
    header = {"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": runtime_id}
    with api.client(ann) as http:
        assert http.get("/sessions", headers=header).status_code == 200
        assert http.get("/sessions", headers=header).status_code == 200
        short = http.get(
            "/sessions", headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "short"}
        )
        assert short.status_code == 400
    with api.client(bob) as http:
        assert http.get("/sessions", headers=header).status_code == 403


def _user_id(http: httpx.Client) -> str:
    return str(http.get("/auth/me").json()["user_id"])
