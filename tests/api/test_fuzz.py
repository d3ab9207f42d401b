"""Property-based fuzzing of every operation, on SQLite (and PostgreSQL): never a 5xx.

Every route of the OpenAPI description through schemathesis, and every `/ws` operation with
generated fields (wrong types, NUL bytes, huge numbers, other users' and made-up ids), which
must answer each message with a result or a 4xx error and keep the socket open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from app.api.ws import _OPS
from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env


@pytest.fixture(scope="module")
def fuzzed_api(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer
) -> Iterator[Api]:
    """The API on SQLite; tests/api/test_fuzz_postgres.py runs the same tests on PostgreSQL (a
    module of its own, so the two fuzzes can run on two test workers at once)."""
    with serve_api(settings_env(Path(tmp_path_factory.mktemp("fuzz")), model_server)) as api:
        yield api


@pytest.fixture(scope="module")
def tokens(fuzzed_api: Api) -> dict[str, str]:
    """One user per fuzz, signed in up front (the route fuzz's failed sign-ins get this
    client throttled, as they should)."""
    return {name: fuzzed_api.sign_up(f"{name}@example.com") for name in ("routes", "ws")}


def test_no_operation_answers_with_a_server_error(fuzzed_api: Api, tokens: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_api.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {tokens['routes']}"}
    checked = []
    operations = [result.ok() for result in schema.get_all_operations()]
    # Signing out ends the token every other operation uses: it goes last.
    for operation in sorted(operations, key=lambda op: "signout" in op.label):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        fuzz()
        checked.append(operation.label)
    assert len(checked) >= 25, checked


WILD = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.sampled_from("\x00\\/.:%-_aZ09\u2028"), max_size=300),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def test_no_ws_operation_answers_with_a_server_error(
    fuzzed_api: Api, tokens: dict[str, str]
) -> None:
    fuzz_token = tokens["ws"]
    with fuzzed_api.client(fuzz_token) as http:
        http.post("/sessions/close_all")  # the route fuzz may have used the user's agents up
        created = http.post("/sessions", json={})
        assert created.status_code == 201, created.text
        real = created.json()["session_id"]
    url = fuzzed_api.url.replace("http", "ws") + "/ws"
    fields = ("session_id", "message", "after", "before", "limit", "offset", "search", "mode")
    fields += ("model", "request_id", "allowed", "title", "project_id", "resume_session_id")
    message = st.fixed_dictionaries(
        {"op": st.sampled_from(sorted(_OPS))},
        optional={
            name: st.one_of(WILD, st.just(real)) if name.endswith("_id") else WILD
            for name in fields
        },
    )
    with connect(url, subprotocols=["bearer", fuzz_token], open_timeout=10) as ws:  # type: ignore[list-item]
        counter = iter(range(1, 1_000_000))

        @given(body=message)
        @settings(
            max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(body: dict[str, Any]) -> None:
            request_id = next(counter)
            ws.send(json.dumps({**body, "id": request_id}, allow_nan=True))
            reply = _reply_to(ws, request_id)
            if not reply["ok"]:
                assert 400 <= reply["error"]["status"] < 500, (body, reply)

        fuzz()


def _reply_to(ws: ClientConnection, request_id: int) -> dict[str, Any]:
    """The reply to one request (events of subscribed sessions may come in between)."""
    while True:
        message = json.loads(ws.recv(timeout=60))
        if message.get("id") == request_id:
            return dict(message)
