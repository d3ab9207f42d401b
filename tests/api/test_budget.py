"""Budgets over real HTTP: the relay refuses a user's model requests once their monthly budget
is spent (the scripted model sees none of them), and a session's own budget stops its turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env, sse_events


def send(http: httpx.Client, session_id: str, message: str) -> list[dict[str, Any]]:
    """One turn over SSE, its frames up to `done`."""
    frames = []
    path = f"/sessions/{session_id}/messages/stream"
    with http.stream("POST", path, json={"message": message}) as response:
        assert response.status_code == 200, response.read()
        for frame in sse_events(response):
            frames.append(frame)
            if frame["type"] == "done":
                break
    return frames


def turn_end(frames: list[dict[str, Any]]) -> dict[str, Any]:
    return next(f for f in frames if f["type"] == "turn_end")


def last_error(frames: list[dict[str, Any]]) -> str:
    return str([f for f in frames if f["type"] == "error"][-1]["error"])


def test_budget_monthly_spent_stops_the_next_turn_before_the_model(
    api: Api, model_server: ModelServer
) -> None:
    ann = api.sign_up("ann@example.com")
    with api.client(ann) as http:
        assert http.get("/budget").json()["monthly_budget_usd"] is None
        changed = http.put("/budget", json={"monthly_budget_usd": 0.01})
        assert changed.status_code == 200, changed.text
        assert changed.json()["monthly_budget_usd"] == 0.01
        session_id = http.post("/sessions", json={}).json()["session_id"]

        first = send(http, session_id, "echo spend a little")
        assert turn_end(first)["status"] == "done"
        spent = http.get("/budget").json()["spent_this_month_usd"]
        assert spent >= 0.01, "a scripted answer with the CLI's prompt costs over a cent"

        asked = len(model_server.requests)
        second = send(http, session_id, "echo spend more")
        assert turn_end(second)["status"] == "failed"
        assert last_error(second).startswith("Your monthly budget of $0.01 is spent ($0.0")
        assert "raise it in Settings" in last_error(second)
        told = [f["error"] for f in second if f["type"] == "error" and f["kind"] == "model"]
        assert all("$" not in text for text in told), "no dollar pairs for the page's math"
        assert len(model_server.requests) == asked, "the relay sent nothing on"
        assert http.get("/budget").json()["spent_this_month_usd"] == spent

        raised = http.put("/budget", json={"monthly_budget_usd": 100})
        assert raised.json()["monthly_budget_usd"] == 100
        third = send(http, session_id, "echo back in budget")
        assert turn_end(third)["status"] == "done"

    bob = api.sign_up("bob@example.com")
    with api.client(bob) as http:
        assert http.get("/budget").json() == {
            "monthly_budget_usd": None,
            "spent_this_month_usd": 0.0,
            "own_budget_usd": None,
            "operator_limit_usd": None,
        }


def test_budget_of_another_user_does_not_stop_mine(api: Api) -> None:
    ann, bob = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
    with api.client(ann) as http:
        http.put("/budget", json={"monthly_budget_usd": 0.0001})
        session_id = http.post("/sessions", json={}).json()["session_id"]
        send(http, session_id, "echo over budget soon")
        assert turn_end(send(http, session_id, "echo refused"))["status"] == "failed"
    with api.client(bob) as http:
        session_id = http.post("/sessions", json={}).json()["session_id"]
        frames = send(http, session_id, "echo still fine")
        assert turn_end(frames)["status"] == "done"
        assert [f for f in frames if f["type"] == "text"][-1]["content"] == "You said: still fine"


def test_budget_operator_default_applies_and_caps(
    tmp_path: Path, model_server: ModelServer
) -> None:
    env = settings_env(tmp_path, model_server, USER_MONTHLY_BUDGET_USD="5")
    with serve_api(env) as api, api.client(api.sign_up("ann@example.com")) as http:
        view = http.get("/budget").json()
        assert view["monthly_budget_usd"] == 5 and view["operator_limit_usd"] == 5
        too_much = http.put("/budget", json={"monthly_budget_usd": 6})
        assert too_much.status_code == 400 and "$5.00" in too_much.json()["detail"]
        assert http.put("/budget", json={"monthly_budget_usd": 2}).json()["monthly_budget_usd"] == 2


def test_budget_routes_need_a_user_and_a_valid_amount(api: Api) -> None:
    with api.client() as http:
        assert http.get("/budget").status_code == 401
    with api.client(api.sign_up("ann@example.com")) as http:
        assert http.put("/budget", json={"monthly_budget_usd": -1}).status_code == 422
        assert http.put("/budget", json={"monthly_budget_usd": None}).status_code == 200
    paths = httpx.get(f"{api.url}/openapi.json").json()["paths"]
    assert {"get", "put"} <= set(paths["/budget"])


def test_budget_of_a_session_stops_its_turn_with_a_clear_message(api: Api) -> None:
    with api.client(api.sign_up("ann@example.com")) as http:
        created = http.post("/sessions", json={"max_budget_usd": 0.001})
        assert created.status_code == 201, created.text
        assert created.json()["max_budget_usd"] == 0.001
        session_id = created.json()["session_id"]
        frames = send(http, session_id, "echo too dear")
        assert turn_end(frames)["status"] == "failed"
        assert last_error(frames) == "This session's budget of $0.0010 is reached."
        status = http.get(f"/sessions/{session_id}/status").json()
        assert status["status"] == "idle" and status["max_budget_usd"] == 0.001
