"""With S3_USER_ROLE_ARN, a user's sync uses credentials from AssumeRole with a session policy
that allows only that user's prefix: never the app's own keys.

moto serves STS and S3 (it accepts assumed-role keys, which SeaweedFS would not know); a
recording proxy in front of it sees every request the sync makes, from boto3 and from the sync's
own client alike,
and which access key signed it."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.workspace.bucket import BucketConfig, KeyRing
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync
from tests.s3 import forward

APP_KEY = "AKIAAPPITSELF0000000"
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


class Recorder(BaseHTTPRequestHandler):
    """Forwards to moto; notes each request's path, signing key and (for STS) its form."""

    upstream = ""
    seen: list[tuple[str, str, dict[str, list[str]]]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        key = _CREDENTIAL.search(self.headers.get("authorization", ""))
        form = parse_qs(body.decode(errors="replace")) if b"Action=" in body else {}
        Recorder.seen.append((self.path, key.group(1) if key else "", form))
        forward(self, self.upstream, body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    Recorder.upstream, Recorder.seen = f"http://{host}:{port}", []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", APP_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "app-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", url)
    try:
        yield url
    finally:
        proxy.shutdown()
        moto.stop()


def test_each_users_sync_runs_on_keys_scoped_to_their_prefix(aws: str, tmp_path: Path) -> None:
    admin = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    admin.create_bucket(Bucket="workspaces")
    admin.put_bucket_versioning(Bucket="workspaces", VersioningConfiguration={"Status": "Enabled"})
    role = boto3.client("iam", endpoint_url=aws, region_name="us-east-1").create_role(
        RoleName="agent-web-users", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    Recorder.seen.clear()
    config = BucketConfig(
        bucket="workspaces", endpoint_url=aws, region="us-east-1", user_role_arn=role
    )
    sync = WorkspaceSync(SyncConfig(config, state_dir=tmp_path / "state"), KeyRing(config))
    scope = Scope("u-alice", "alice", "projects/demo", tmp_path / "alice")
    scope.root.mkdir()
    (scope.root / "main.py").write_text("print('alice')\n")

    asyncio.run(sync.backup_now(scope))

    [assume] = [form for path, _, form in Recorder.seen if form.get("Action") == ["AssumeRole"]]
    policy = json.loads(assume["Policy"][0])
    resources = [statement["Resource"] for statement in policy["Statement"]]
    assert resources == ["arn:aws:s3:::workspaces/user_data/alice/*", "arn:aws:s3:::workspaces"]
    listing = policy["Statement"][1]["Condition"]["StringLike"]["s3:prefix"]
    assert listing == ["user_data/alice/*"]
    assert assume["RoleArn"] == [role]

    s3_requests = [(path, key) for path, key, form in Recorder.seen if not form]
    assert any("main.py" in path for path, _ in s3_requests), "the file went through"
    assert any(".agent-web" in path for path, _ in s3_requests), "and the manifest"
    keys = {key for _, key in s3_requests}
    assert APP_KEY not in keys, "never the app's own keys"
    assert len(keys) == 1 and keys.pop().startswith("ASIA"), "one assumed-role key"
