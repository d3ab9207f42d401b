"""The sync's own S3 client (`app.workspace.transfer`): its signatures are S3's, it rides out
a server that asks it to slow down or drops connections, it never reads through a link an
agent planted, and a key gone from S3 costs that file, not the restore."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

from app.workspace.bucket import BucketConfig
from app.workspace.snapshot import index, listed, read_snapshot
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync
from app.workspace.transfer import Endpoint, Signer
from tests.s3 import S3Server, forward
from tests.workspace.machines import FixedKeys, Machine


@pytest.mark.parametrize("token", [None, "session-token"])
def test_signatures_are_the_ones_botocore_makes(token: str | None) -> None:
    endpoint = Endpoint.of("work", "https://s3.eu-west-1.amazonaws.com", "eu-west-1", False)
    key = "user_data/u1/projects/demo/sp ace/é+x (1).txt"
    headers = {
        "content-length": "5",
        "x-amz-checksum-sha256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
    }
    theirs = AWSRequest("PUT", f"https://{endpoint.host}{endpoint.path(key)}", headers=headers)
    theirs.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret", token), "s3", "eu-west-1").add_auth(theirs)
    when = datetime.strptime(theirs.context["timestamp"] + "+0000", "%Y%m%dT%H%M%SZ%z")

    ours = Signer("AKIDEXAMPLE", "secret", token, "eu-west-1").sign(
        "PUT", endpoint.path(key), endpoint.host_header, headers, when
    )

    assert endpoint.host == "work.s3.eu-west-1.amazonaws.com"
    assert ours["authorization"] == theirs.headers["Authorization"]


class Unreliable(BaseHTTPRequestHandler):
    """In front of moto: answers each object's first request with 503 SlowDown and drops
    some connections without a word (HTTP/1.0: one request a connection)."""

    upstream = ""
    seen: set[tuple[str, str]] = set()
    lock = threading.Lock()
    faults = 0

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        first = "/.agent-web/" not in self.path and "?" not in self.path
        with Unreliable.lock:
            first = first and (self.command, self.path) not in Unreliable.seen
            Unreliable.seen.add((self.command, self.path))
            drop = random.random() < 0.1
            if first or drop:
                Unreliable.faults += 1
        if drop:
            return  # the connection closes with no answer
        if first:
            answer = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
            self.send_response(503)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        forward(self, self.upstream, body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def unreliable() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    Unreliable.upstream, Unreliable.seen, Unreliable.faults = f"http://{host}:{port}", set(), 0
    boto3.client(
        "s3",
        endpoint_url=Unreliable.upstream,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="flaky")
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Unreliable)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}"
    finally:
        proxy.shutdown()
        moto.stop()


def _flaky_machine(root: Path, endpoint: str) -> tuple[WorkspaceSync, Scope]:
    config = SyncConfig(
        BucketConfig(bucket="flaky", endpoint_url=endpoint, region="us-east-1"),
        state_dir=root / "state",
    )
    sync = WorkspaceSync(config, FixedKeys(config.bucket))
    return sync, Scope("u1", "u1", "projects/demo", root / "project")


async def test_slow_downs_and_dropped_connections_are_retried(
    tmp_path: Path, unreliable: str
) -> None:
    sync, scope = _flaky_machine(tmp_path / "a", unreliable)
    for n in range(20):
        (scope.root / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (scope.root / f"d{n % 3}/f{n}.txt").write_bytes(os.urandom(100 + n * 50))
    await sync.backup_now(scope)
    restorer, target = _flaky_machine(tmp_path / "b", unreliable)
    await restorer.ensure_restored(target)

    assert Unreliable.faults >= 40, "every object refused once, up and down"
    for path in scope.root.rglob("*.txt"):
        assert (target.root / path.relative_to(scope.root)).read_bytes() == path.read_bytes()
    [progress] = restorer.progress("u1")
    assert progress.files_done == 20 and progress.error == "" and progress.warning == ""


async def test_an_upload_never_reads_through_a_link_or_waits_on_a_pipe(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """What an agent can do between a backup's listing and its upload: swap a folder for a
    link to somewhere else, or a file for a FIFO. Neither is read."""
    bucket = s3_server.new_bucket()
    machine = Machine(tmp_path / "a", s3_server, bucket)
    outside = tmp_path / "someone-elses"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    machine.write("ok.txt", "mine\n")
    os.symlink(outside, machine.root / "src")
    os.symlink(outside / "secret.txt", machine.root / "notes.txt")
    os.mkfifo(machine.root / "build.log")
    sent = await machine.sync._bucket(machine.scope)
    names = ("src/secret.txt", "notes.txt", "build.log", "ok.txt")

    await asyncio.wait_for(
        sent.upload(machine.root, iter([(n, machine.scope.prefix + n) for n in names]), _none),
        timeout=30,
    )

    listing = s3_server.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    keys = [item["Key"] for item in listing.get("Contents", [])]
    assert keys == [machine.scope.prefix + "ok.txt"]


def test_the_manifest_never_hashes_through_a_link(tmp_path: Path) -> None:
    """The same swap, seen by the index that hashes files for the manifest: a folder listed
    as a folder and a link by the time it is read yields no entry (not the hash of a file
    outside); a file gone since the listing is left out."""
    root, outside = tmp_path / "project", tmp_path / "someone-elses"
    for folder in (root, outside):
        folder.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    (root / "ok.txt").write_text("mine\n")
    os.symlink(outside, root / "src")
    snapshot = tmp_path / "snapshot.jsonl"

    index(root, listed(root, ["gone.txt", "ok.txt", "src/secret.txt"]), tmp_path / "c", snapshot)

    assert [path for path, _ in read_snapshot(snapshot)] == ["ok.txt"]


async def test_a_file_gone_from_s3_costs_that_file_and_says_so(
    machines: tuple[Machine, Machine], s3_server: S3Server, bucket: str
) -> None:
    a, b = machines
    a.write("kept.txt", "kept\n")
    a.write("lost.txt", "lost\n")
    await a.sync.backup_now(a.scope)
    s3_server.client().delete_object(Bucket=bucket, Key=a.scope.prefix + "lost.txt")  # type: ignore[attr-defined]

    await b.sync.ensure_restored(b.scope)

    assert (b.root / "kept.txt").read_text() == "kept\n"
    assert not (b.root / "lost.txt").exists()
    [progress] = b.sync.progress("u1")
    assert progress.phase == "idle"
    assert "1 files named in the backup are missing from S3" in progress.warning


async def test_a_change_made_while_a_backup_runs_gets_a_backup_of_its_own(
    machines: tuple[Machine, Machine],
) -> None:
    """An agent's turn ends while the last turn's backup is still sending: the second
    request must not be folded into the one already past its listing."""
    a, b = machines
    for n in range(300):
        a.write(f"many/f{n}.txt", os.urandom(2000))
    await a.sync.ensure_restored(a.scope)
    updates = a.sync.updates("u1")
    a.sync.schedule_backup(a.scope)
    async for [progress] in updates:
        if progress.phase == "backing_up" and progress.files_total:
            break  # listed, now sending
    a.write("late.txt", "written during the backup\n")
    a.sync.schedule_backup(a.scope)

    await a.sync.flush(timeout=60)

    await b.sync.ensure_restored(b.scope)
    assert (b.root / "late.txt").read_text() == "written during the backup\n"
    assert b.files() == a.files()


def _none(_files: int, _size: int) -> None:
    pass
