"""A bucket written by someone else (the seed, a person with access, an attacker with a
leaked key): nothing in it may make a restore write outside the folder it restores.

moto serves S3 here because it stores keys as given; SeaweedFS refuses keys with `..`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.workspace.bucket import BucketConfig, KeyRing, Keys, StorageError
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync

BUCKET = "hostile"


class MotoKeys(KeyRing):
    def for_user(self, user_key: str) -> Keys:
        return Keys("testing", "testing")


@pytest.fixture
def endpoint() -> Iterator[str]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    _client(url).create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        moto.stop()


def _client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _machine(root: Path, endpoint: str) -> tuple[WorkspaceSync, Scope]:
    config = SyncConfig(
        BucketConfig(bucket=BUCKET, endpoint_url=endpoint, region="us-east-1"),
        state_dir=root / "state",
    )
    sync = WorkspaceSync(config, MotoKeys(config.bucket))
    return sync, Scope("u1", "u1", "projects/demo", root / "project")


def _everything_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _found(name: str, *folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob(name)]


async def test_keys_that_climb_out_of_the_prefix_land_nowhere(
    tmp_path: Path, endpoint: str
) -> None:
    """Objects named `<prefix>../../...` next to a real backup of many files (a restore
    fetches the keys its manifest names, and adopts a listing only where there is none)."""
    sync, scope = _machine(tmp_path / "a", endpoint)
    for n in range(120):
        (scope.root / f"d{n % 4}").mkdir(parents=True, exist_ok=True)
        (scope.root / f"d{n % 4}/f{n}.txt").write_text(f"file {n}\n")
    await sync.backup_now(scope)
    client = _client(endpoint)
    for depth in range(1, 8):
        key = scope.prefix + "../" * depth + "planted.txt"
        client.put_object(Bucket=BUCKET, Key=key, Body=b"planted")  # type: ignore[attr-defined]

    restorer, target = _machine(tmp_path / "b", endpoint)
    await restorer.ensure_restored(target)
    assert _everything_under(target.root) == _everything_under(scope.root)
    assert _found("planted.txt", tmp_path) == [], "nothing lands outside the project"
    assert "planted.txt" not in os.listdir("/")


async def test_a_manifest_naming_paths_outside_is_refused(tmp_path: Path, endpoint: str) -> None:
    sync, scope = _machine(tmp_path / "a", endpoint)
    scope.root.mkdir(parents=True)
    (scope.root / "ok.txt").write_text("fine\n")
    await sync.backup_now(scope)
    client = _client(endpoint)
    manifest = client.get_object(Bucket=BUCKET, Key=scope.manifest_key)["Body"].read()  # type: ignore[attr-defined]
    header, *rows = manifest.decode().splitlines()
    evil = {"path": "../../../outside.txt", "size": 5, "sha256": "0" * 64}
    body = "\n".join([header, json.dumps(evil), *rows]) + "\n"
    client.put_object(Bucket=BUCKET, Key=scope.manifest_key, Body=body.encode())  # type: ignore[attr-defined]

    restorer, target = _machine(tmp_path / "b", endpoint)
    target.root.mkdir(parents=True)
    (target.root / "mine.txt").write_text("local work\n")
    with pytest.raises(StorageError, match="damaged"):
        await restorer.ensure_restored(target)
    [progress] = restorer.progress("u1")
    assert progress.phase == "failed" and "damaged" in progress.error
    assert _found("outside.txt", tmp_path) == []
    assert (target.root / "mine.txt").read_text() == "local work\n"
    assert os.listdir(target.root) == ["mine.txt"]
