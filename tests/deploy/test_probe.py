"""`probe`: a runtime of its own behind the same authorizer, called once with a Cognito user's
access token; `probe --down` takes it away (and `down` would too)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from deploy import probe
from tests.deploy.conftest import REGION, Stack

PASSWORD = "Probe-Password-123"


class _Runtime(BaseHTTPRequestHandler):
    """Stands in for AgentCore's data plane in front of the probe container."""

    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.seen.append({"path": self.path, "headers": headers, "body": body})
        answer = json.dumps({"path": "/invocations", "headers": sorted(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def data_plane() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Runtime", (_Runtime,), {"seen": seen}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_probe_calls_its_runtime_with_a_users_token(
    stack: Stack, data_plane: tuple[str, list[dict[str, Any]]]
) -> None:
    outputs = stack.up()
    cognito, pool = stack.clients.cognito, str(outputs.cognito_user_pool_id)
    cognito.admin_create_user(
        UserPoolId=pool, Username="probe@example.com", MessageAction="SUPPRESS"
    )
    cognito.admin_set_user_password(
        UserPoolId=pool, Username="probe@example.com", Password=PASSWORD, Permanent=True
    )
    endpoint, seen = data_plane
    ctx = stack.context(PROBE_USERNAME="probe@example.com", PROBE_PASSWORD=PASSWORD)
    probe_image = stack.image.replace(":app-", ":probe-")

    answer = probe.up(ctx, probe_image, endpoint=endpoint)

    assert answer["path"] == "/invocations"
    (request,) = seen
    assert request["path"].endswith("/invocations?qualifier=DEFAULT")
    headers = request["headers"]
    assert headers["authorization"].startswith("Bearer ey")
    assert len(headers[probe.SESSION_HEADER.lower()]) >= 33
    assert headers[probe.CUSTOM_HEADER.lower()] == "probe"
    assert json.loads(request["body"]) == {"probe": "invocations"}
    found = probe.runtime.find(ctx, f"{stack.prefix}_probe")
    assert found is not None
    config = stack.clients.runtimes.get_agent_runtime(agentRuntimeId=found["agentRuntimeId"])
    assert config["authorizerConfiguration"]["customJWTAuthorizer"]["allowedClients"] == [
        outputs.cognito_client_id
    ]
    assert config["roleArn"].endswith(f":role/{stack.prefix}-probe-{REGION}")

    probe.down(ctx)

    assert probe.runtime.find(ctx, f"{stack.prefix}_probe") is None
    assert probe.iam.find(ctx, f"{stack.prefix}-probe-{REGION}") is None


def test_probe_without_a_user_says_how(stack: Stack) -> None:
    stack.up()
    ctx = stack.context()

    assert probe.up(ctx, stack.image.replace(":app-", ":probe-")) == {}

    shown = ctx.report.out.getvalue()  # type: ignore[attr-defined]
    assert "no PROBE_USERNAME/PROBE_PASSWORD" in shown
    assert "aws cognito-idp admin-create-user" in shown
    stack.down()
    assert probe.runtime.find(stack.context(), f"{stack.prefix}_probe") is None


def test_probe_needs_a_cognito_pool(stack: Stack) -> None:
    with pytest.raises(probe.DeployError, match="run `up` first"):
        probe.up(stack.context(), stack.image)
