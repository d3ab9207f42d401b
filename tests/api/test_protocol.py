"""The API's promises to clients, the seed's among them: shapes, close versus delete, one
behaviour on REST and `/ws`, honest `/ping` times."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import websockets

from app.db.models import Approval
from tests.api.conftest import Api


def test_delete_closes_like_the_seed_and_deleting_for_good_is_explicit(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        http.post(f"/sessions/{session_id}/messages", json={"message": "echo keep me"})
        assert http.delete(f"/sessions/{session_id}").status_code == 204
        listed = http.get("/sessions/available").json()["sessions"]
        assert [s["session_id"] for s in listed] == [session_id], "closed, still listed"
        assert listed[0]["live"] is False
        resumed = http.post("/sessions", json={"resume_session_id": session_id})
        assert resumed.status_code == 201 and resumed.json()["live"] is True
        history = http.get(f"/sessions/{session_id}/history").json()
        assert [m["content"] for m in history["messages"] if m["type"] == "text"] == [
            "echo keep me",
            "You said: keep me",
        ]
        assert http.post(f"/sessions/{session_id}/delete").status_code == 204
        assert http.get("/sessions/available").json()["total"] == 0
        assert http.get(f"/sessions/{session_id}").status_code == 404


def test_history_and_listing_speak_the_seeds_shapes(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={"permission_mode": "bypassPermissions"}).json()[
            "session_id"
        ]
        http.post(f"/sessions/{session_id}/messages", json={"message": "run bash echo shaped"})
        http.patch(f"/sessions/{session_id}", json={"title": "Renamed"})
        history = http.get(f"/sessions/{session_id}/history").json()
        listing = http.get("/sessions/available").json()["sessions"][0]
    prompt, tool_use, tool_result, answer = history["messages"]
    assert prompt | {"type": "text", "role": "user", "content": "run bash echo shaped"} == prompt
    assert tool_use["tool_name"] == "Bash" and tool_use["tool_input"]["command"] == "echo shaped"
    assert tool_result["tool_use_id"] == tool_use["tool_use_id"]
    assert tool_result["content"] == "shaped"
    assert answer["role"] == "assistant" and answer["content"] == "Output: shaped"
    # The turn's footer survives a reload: it comes with the turn's last message.
    assert answer["turn"]["status"] == "done" and answer["turn"]["cost_usd"] > 0
    assert history["metadata"]["session_id"] == session_id
    assert history["message_count"] == 4
    assert listing["title"] == listing["preview"] == "Renamed"
    assert listing["first_message"] == "run bash echo shaped", "the first prompt, not the title"
    assert listing["message_count"] == 4
    assert listing["cwd"] == "/workspace/default" and listing["project"] == "default"


def test_ws_and_rest_are_one_api(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        http.post(f"/sessions/{session_id}/messages", json={"message": "echo over rest"})
        http.delete(f"/sessions/{session_id}")
        rest_history = http.get(f"/sessions/{session_id}/history").json()
    ws_url = api.url.replace("http", "ws") + "/ws"

    async def talk() -> dict[str, Any]:
        async with websockets.connect(ws_url, subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
            replies: dict[int, Any] = {}
            events: list[dict[str, Any]] = []

            async def call(request_id: int, **body: Any) -> Any:
                await ws.send(json.dumps({"id": request_id, **body}))
                while request_id not in replies:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if message.get("op") == "event":
                        events.append(message["event"])
                    else:
                        replies[message["id"]] = message
                return replies[request_id]

            resumed = await call(1, op="create", resume_session_id=session_id)
            history = await call(2, op="history", session_id=session_id)
            sent = await call(
                3,
                op="send",
                session_id=session_id,
                message="echo over ws",
                model="claude-haiku-4-5",
            )
            while not any(e["type"] == "turn_end" for e in events):
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message.get("op") == "event":
                    events.append(message["event"])
            status = await call(4, op="status", session_id=session_id)
            return {
                "resumed": resumed,
                "history": history,
                "sent": sent,
                "status": status,
                "events": events,
            }

    got = asyncio.run(talk())
    assert got["resumed"]["ok"] and got["resumed"]["result"]["session_id"] == session_id
    assert got["resumed"]["result"]["live"] is True, "create with resume_session_id resumes"
    assert got["history"]["result"] == rest_history, "history is the same on both"
    assert got["sent"]["result"]["seq"] == next(
        e["seq"] for e in got["events"] if e["type"] == "start"
    )
    assert got["status"]["result"]["model"] == "claude-haiku-4-5", "send's model is used"
    texts = [e["content"] for e in got["events"] if e["type"] == "text"]
    assert texts == ["You said: over ws"]


def test_ping_reports_when_busy_last_changed(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http, api.client() as anonymous:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        first = anonymous.get("/ping").json()
        time.sleep(1.1)
        assert anonymous.get("/ping").json() == first, "polling changes nothing"
        with http.stream(
            "POST", f"/sessions/{session_id}/messages/stream", json={"message": "long story"}
        ) as response:
            for line in response.iter_lines():
                if '"text_delta"' in line:
                    break
            busy = anonymous.get("/ping").json()
            http.post(f"/sessions/{session_id}/interrupt")
    assert busy["status"] == "HealthyBusy"
    assert busy["time_of_last_update"] > first["time_of_last_update"]


def test_answering_a_request_nobody_holds_loses_only_that_one(api: Api) -> None:
    token = api.sign_up("ann@example.com")
    with api.client(token) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        user_id = http.get("/auth/me").json()["user_id"]
        # A request the engine does not hold (as if another instance's agent had asked it).
        stray = api.services.store.add_approval(
            Approval(session_id=session_id, user_id=user_id, tool_name="Bash")
        )
        frames: list[dict[str, Any]] = []
        with http.stream(
            "POST", f"/sessions/{session_id}/messages/stream", json={"message": "write kept.txt"}
        ) as response:
            lines = response.iter_lines()
            for line in lines:
                if '"permission"' in line:
                    request_id = json.loads(line[6:])["permission"]["request_id"]
                    break
            lost = http.post(
                f"/sessions/{session_id}/permissions/respond",
                json={"request_id": stray.id, "allowed": True},
            )
            assert lost.status_code == 409 and "lost" in lost.json()["detail"]
            pending = http.get(f"/sessions/{session_id}/permissions").json()["pending"]
            assert [p["request_id"] for p in pending] == [request_id], "the live one waits on"
            allowed = http.post(
                f"/sessions/{session_id}/permissions/respond",
                json={"request_id": request_id, "allowed": True},
            )
            assert allowed.status_code == 200
            frames = [json.loads(line[6:]) for line in lines if line.startswith("data:")]
    assert any(f["type"] == "text" and "File created" in f["content"] for f in frames)
