"""A whole AWS account for the deploy: moto's server over HTTP (ECR, S3, IAM, Cognito, logs,
STS, AgentCore runtimes, Aurora DSQL) and stateful Stubber fakes for what moto lacks (Amplify,
AgentCore Identity, GetInferenceProfile, Cognito managed login styles); a local HTTP server
receives the site's zip where Amplify's upload URL would.

Each test deploys under its own prefix (moto's state is shared by the whole test run, the
auth tests' pools included, so it is never reset).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from deploy import plan
from deploy.aws import Clients
from deploy.config import load_settings
from deploy.context import Context
from deploy.outputs import Outputs
from deploy.report import Report
from tests.deploy import fakes

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
READ_ONLY = ("Get", "List", "Describe", "Head")


@dataclass(frozen=True)
class Call:
    service: str
    name: str
    params: dict[str, Any]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _dsql_in_the_test_region()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class _Uploads(BaseHTTPRequestHandler):
    received: dict[str, bytes]

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received[self.path] = self.rfile.read(length)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class UploadServer:
    url: str
    received: dict[str, bytes]


@pytest.fixture(scope="session")
def uploads() -> Iterator[UploadServer]:
    """Where Amplify's presigned upload URL points in the tests."""
    received: dict[str, bytes] = {}
    handler = type("Uploads", (_Uploads,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield UploadServer(f"http://127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()


@dataclass
class Stack:
    """One deployment's world: settings, clients, fakes, and every API call made."""

    env: dict[str, str]
    clients: Clients
    amplify: fakes.Amplify
    identity: fakes.Identity
    branding: fakes.Branding
    site: Path
    calls: list[Call] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.env["DEPLOY_PREFIX"]

    @property
    def image(self) -> str:
        return f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{self.prefix}:app-0123456789abcdef"

    def context(self, **env: str) -> Context:
        out = io.StringIO()
        ctx = Context.open(load_settings({**self.env, **env}), self.clients, Report(out))
        ctx.sleep = lambda seconds: None
        ctx.poll_seconds = 0
        self._out = out
        return ctx

    def up(self, **env: str) -> Outputs:
        ctx = self.context(**env)
        self.calls.clear()
        try:
            return plan.up(ctx, self.image)
        finally:
            self.printed = self._out.getvalue().splitlines()

    def down(self, delete_data: bool = False, **env: str) -> None:
        ctx = self.context(**env)
        self.calls.clear()
        try:
            plan.down(ctx, delete_data)
        finally:
            self.printed = self._out.getvalue().splitlines()

    def changing_calls(self) -> list[str]:
        """Every call that is not a read, as `service:Operation`."""
        return [f"{c.service}:{c.name}" for c in self.calls if not c.name.startswith(READ_ONLY)]

    def params_of(self, name: str) -> list[dict[str, Any]]:
        return [call.params for call in self.calls if call.name == name]


@pytest.fixture
def stack(moto_endpoint: str, uploads: UploadServer, tmp_path: Path) -> Stack:
    prefix = "t" + uuid.uuid4().hex[:7]
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )

    def client(name: str) -> Any:
        return session.client(name, endpoint_url=moto_endpoint)  # type: ignore[call-overload]

    amplify = fakes.Amplify(REGION, ACCOUNT, uploads.url)
    identity = fakes.Identity(REGION, ACCOUNT)
    branding = fakes.Branding()
    clients = Clients(
        sts=client("sts"),
        ecr=client("ecr"),
        s3=client("s3"),
        iam=client("iam"),
        cognito=client("cognito-idp"),
        logs=client("logs"),
        runtimes=client("bedrock-agentcore-control"),
        identity=client("bedrock-agentcore-control"),
        amplify=client("amplify"),
        bedrock=client("bedrock"),
        dsql=client("dsql"),
    )
    fakes.FakeApi(clients.amplify, amplify.handlers())
    fakes.FakeApi(clients.identity, identity.handlers())
    fakes.FakeApi(clients.bedrock, fakes.Bedrock(REGION, ACCOUNT).handlers())
    fakes.FakeApi(clients.cognito, branding.handlers(), passthrough=True)
    site = tmp_path / "site"
    for name, body in {
        "index.html": "<html>home</html>",
        "404.html": "<html>spa</html>",
        "_next/static/app.js": "console.log(1)",
        "chat/index.html": "<html>chat</html>",
    }.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(body)
    result = Stack(
        env={
            "AWS_REGION": REGION,
            "DEPLOY_PREFIX": prefix,
            "DEPLOY_SITE_DIR": str(site),
            "DEPLOY_OUTPUTS": str(tmp_path / "outputs.json"),
            "GITHUB_CLIENT_ID": "Iv1.testclient",
            "GITHUB_CLIENT_SECRET": "github-test-secret",
        },
        clients=clients,
        amplify=amplify,
        identity=identity,
        branding=branding,
        site=site,
    )
    for each in {id(c): c for c in vars(clients).values()}.values():
        service = each.meta.service_model.service_name
        each.meta.events.register(
            "before-parameter-build.*.*",
            lambda model, params, _service=service, **kw: result.calls.append(
                Call(_service, model.name, dict(params))
            ),
        )
    clients.runtimes.meta.events.register(
        "after-call.bedrock-agentcore-control.UpdateAgentRuntime", _updated_runtimes_get_ready
    )
    return result


def _updated_runtimes_get_ready(parsed: dict[str, Any], **kwargs: Any) -> None:
    """moto leaves an updated runtime UPDATING for ever; AgentCore makes it READY again."""
    from moto.bedrockagentcorecontrol.models import bedrockagentcorecontrol_backends

    runtimes = bedrockagentcorecontrol_backends[ACCOUNT][REGION].agent_runtimes
    runtimes[parsed["agentRuntimeId"]].status = "READY"


def _dsql_in_the_test_region() -> None:
    """moto's Aurora DSQL serves only us-east-1 and us-east-2 (botocore has no endpoint list
    for it to take the regions from); AWS has it in the test region too."""
    from moto.dsql.models import AuroraDSQLBackend, dsql_backends

    account = dsql_backends[ACCOUNT]
    if REGION not in account:
        account[REGION] = AuroraDSQLBackend(REGION, ACCOUNT)
