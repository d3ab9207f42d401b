"""Projects kept in S3 (a real S3 server, SeaweedFS): two machines that never share a disk."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections import Counter
from pathlib import Path

import pytest

from app.workspace.bucket import BucketConfig, StorageError
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync
from tests.s3 import S3Server
from tests.workspace.machines import FixedKeys, Machine


async def test_a_project_comes_back_whole_on_a_new_machine(
    machines: tuple[Machine, Machine],
) -> None:
    a, b = machines
    a.write("README.md", "# demo\n")
    a.write("src/app.py", "print('hi')\n")
    a.write("bin/run.sh", "#!/bin/sh\necho run\n", executable=True)
    a.write("data/blob.bin", os.urandom(200_000))
    a.write("empty.txt", b"")
    a.write("node_modules/dep/index.js", "excluded")
    (a.root / "docs").symlink_to("src")
    (a.root / "escape").symlink_to("/etc/passwd")
    await a.sync.ensure_restored(a.scope)  # nothing in S3 yet: a new project
    await a.sync.backup_now(a.scope)

    await b.sync.ensure_restored(b.scope)
    expected = {k: v for k, v in a.files().items() if not k.startswith("node_modules/")}
    del expected["escape"]  # a link pointing outside is never recreated
    assert b.files() == expected
    assert os.readlink(b.root / "docs") == "src"
    assert not (b.root / "escape").exists() and not (b.root / "escape").is_symlink()
    assert stat.S_IMODE((b.root / "bin/run.sh").stat().st_mode) & 0o111
    assert not stat.S_IMODE((b.root / "src/app.py").stat().st_mode) & 0o111
    [progress] = b.sync.progress("u1")
    assert (progress.phase, progress.files_done, progress.files_total) == ("idle", 5, 5)
    assert progress.bytes_done == progress.bytes_total > 200_000


async def test_same_size_edits_and_deletions_travel_both_ways(
    machines: tuple[Machine, Machine],
) -> None:
    a, b = machines
    a.write("config.txt", "colour=red\n")
    a.write("gone.txt", "to be deleted\n")
    a.write("kept.txt", "stays\n")
    await a.sync.backup_now(a.scope)
    await b.sync.ensure_restored(b.scope)

    a.write("config.txt", "colour=tan\n")  # the same size, another content
    (a.root / "gone.txt").unlink()
    await a.sync.backup_now(a.scope)
    b2 = Machine(b.root.parent, *_server_and_bucket(b))  # b restarts: restores again
    await b2.sync.ensure_restored(b2.scope)
    assert (b.root / "config.txt").read_text() == "colour=tan\n"
    assert not (b.root / "gone.txt").exists()

    (b.root / "kept.txt").unlink()
    await b2.sync.backup_now(b2.scope)
    a2 = Machine(a.root.parent, *_server_and_bucket(a))
    await a2.sync.ensure_restored(a2.scope)
    assert not (a.root / "kept.txt").exists()


async def test_local_work_is_never_deleted_by_a_restore(machines: tuple[Machine, Machine]) -> None:
    a, b = machines
    a.write("shared.txt", "v1\n")
    await a.sync.backup_now(a.scope)
    await b.sync.ensure_restored(b.scope)
    (a.root / "shared.txt").unlink()
    await a.sync.backup_now(a.scope)  # S3 now says: deleted

    b.write("shared.txt", "v2, edited here and not yet backed up\n")
    b.write("new.txt", "only here\n")
    b2 = Machine(b.root.parent, *_server_and_bucket(b))
    await b2.sync.ensure_restored(b2.scope)
    assert (b.root / "shared.txt").read_text().startswith("v2")
    assert (b.root / "new.txt").exists()


async def test_an_interrupted_backup_is_never_trusted(machines: tuple[Machine, Machine]) -> None:
    """A backup killed after sending some files but before its manifest: a restore gets the
    last complete snapshot, exactly."""
    a, b = machines
    for n in range(5):
        a.write(f"f{n}.txt", f"first state {n}\n")
    await a.sync.backup_now(a.scope)
    first = a.files()
    for n in range(5):
        a.write(f"f{n}.txt", f"second state, never committed {n}\n")
    bucket = await a.sync._bucket(a.scope)
    # What a kill leaves: three of the new files sent, the manifest not written.
    sent = [(f"f{n}.txt", a.scope.prefix + f"f{n}.txt") for n in range(3)]
    await bucket.upload(a.root, iter(sent), lambda *_: None)
    await b.sync.ensure_restored(b.scope)
    assert b.files() == first
    [progress] = b.sync.progress("u1")
    assert progress.warning == ""


async def test_a_backup_killed_mid_upload_leaves_the_last_snapshot_whole(
    machines: tuple[Machine, Machine], s3_server: S3Server, bucket: str
) -> None:
    """A real kill: a process backing up a change to every file is killed (SIGKILL) once some
    of them are in S3. A restore on another machine gets the last complete snapshot, exactly."""
    a, b = machines
    for n in range(1000):
        a.write(f"d{n % 8}/f{n}.txt", f"first state of {n}\n" * 20)
    await a.sync.backup_now(a.scope)
    first = a.files()
    for n in range(1000):
        a.write(f"d{n % 8}/f{n}.txt", f"second state, never committed, of {n}\n" * 20)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.workspace.backup_child",
        s3_server.endpoint,
        bucket,
        str(a.root.parent),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    async for line in child.stdout:
        if int(line) >= 50:
            break
    child.kill()
    await child.wait()
    versions: Counter[str] = Counter()
    pages = s3_server.client().get_paginator("list_object_versions")  # type: ignore[attr-defined]
    for page in pages.paginate(Bucket=bucket, Prefix=a.scope.prefix):
        versions.update(version["Key"] for version in page.get("Versions", []))
    resent = sum(1 for count in versions.values() if count > 1)
    assert 0 < resent < 1000, "killed part way through the upload"

    await b.sync.ensure_restored(b.scope)

    assert b.files() == first
    [progress] = b.sync.progress("u1")
    assert progress.warning == "" and progress.files_done == 1000


async def test_a_back_up_now_outlives_the_page_that_asked_and_shutdown_waits_for_it(
    machines: tuple[Machine, Machine],
) -> None:
    """The page that clicked "back up now" goes away (its task cancelled) and the machine
    shuts down at once: the backup still completes, so a new machine gets the files."""
    a, b = machines
    for n in range(200):
        a.write(f"data/f{n}.bin", os.urandom(20_000))
    await a.sync.ensure_restored(a.scope)
    page = asyncio.create_task(a.sync.backup_now(a.scope))
    async for progress in a.sync.updates("u1"):
        if progress and progress[0].phase == "backing_up":
            break
    page.cancel()
    await a.sync.flush(timeout=60)
    await b.sync.ensure_restored(b.scope)
    assert b.files() == a.files()
    assert len(b.files()) == 200


async def test_an_unversioned_bucket_says_what_it_could_not_restore(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket(versioned=False)
    a, b = Machine(tmp_path / "a", s3_server, bucket), Machine(tmp_path / "b", s3_server, bucket)
    a.write("f.txt", "committed\n")
    await a.sync.backup_now(a.scope)
    a.write("f.txt", "uncommitted\n")
    sent = await a.sync._bucket(a.scope)
    await sent.upload(a.root, iter([("f.txt", a.scope.prefix + "f.txt")]), lambda *_: None)
    await b.sync.ensure_restored(b.scope)
    [progress] = b.sync.progress("u1")
    assert "did not finish" in progress.warning


async def test_large_files_go_in_parts(
    machines: tuple[Machine, Machine], s3_server: S3Server
) -> None:
    a, b = machines
    a.write("big.bin", os.urandom(60 * 1024 * 1024))
    await a.sync.backup_now(a.scope)
    head = s3_server.client().head_object(  # type: ignore[attr-defined]
        Bucket=a.sync.config.bucket.bucket, Key=a.scope.prefix + "big.bin"
    )
    assert "-" in head["ETag"], "a multipart upload's ETag"
    await b.sync.ensure_restored(b.scope)
    assert b.files() == a.files()


async def test_files_put_without_a_manifest_are_adopted(
    machines: tuple[Machine, Machine], s3_server: S3Server, bucket: str
) -> None:
    """The seed's layout, written by the seed or by hand: taken as it is."""
    _, b = machines
    client = s3_server.client()
    for name, body in (("index.html", b"<h1>seed</h1>"), ("src/main.py", b"print(1)\n")):
        client.put_object(Bucket=bucket, Key=b.scope.prefix + name, Body=body)  # type: ignore[attr-defined]
    await b.sync.ensure_restored(b.scope)
    assert (b.root / "index.html").read_bytes() == b"<h1>seed</h1>"
    assert (b.root / "src/main.py").read_bytes() == b"print(1)\n"


async def test_s3_down_is_reported_and_loses_nothing(tmp_path: Path) -> None:
    config = SyncConfig(
        BucketConfig(bucket="nowhere", endpoint_url="http://127.0.0.1:9", region="us-east-1"),
        state_dir=tmp_path / "state",
    )
    sync = WorkspaceSync(config, FixedKeys(config.bucket))
    scope = Scope("u1", "u1", "projects/demo", tmp_path / "project")
    scope.root.mkdir()
    (scope.root / "work.txt").write_text("precious\n")
    with pytest.raises(StorageError, match="S3"):
        await sync.ensure_restored(scope)
    [progress] = sync.progress("u1")
    assert progress.phase == "failed" and "S3" in progress.error
    assert (scope.root / "work.txt").read_text() == "precious\n"


def _server_and_bucket(machine: Machine) -> tuple[S3Server, str]:
    endpoint = machine.sync.config.bucket.endpoint_url
    assert endpoint is not None
    return S3Server(endpoint), machine.sync.config.bucket.bucket


async def test_a_large_project_with_awkward_names_travels_whole(
    machines: tuple[Machine, Machine],
) -> None:
    """Enough files for many connections at once, with names a signed request must encode
    (quotes, line breaks, `..`, spaces, accents) and names whose sort order differs between a
    folder and its path (`a.b` < `a/b` < `a0`)."""
    a, b = machines
    for n in range(150):
        a.write(f"src/m{n % 7}/file{n}.py", f"# {n}\n" * (n % 5 + 1))
    awkward = ["notes..txt", 'say "hi".txt', "two\nlines.txt", "sp ace/é.txt", "a.b", "a/b", "a0"]
    for name in awkward:
        a.write(name, f"content of {name!r}\n")
    a.write("tools/build.sh", "#!/bin/sh\n", executable=True)
    await a.sync.backup_now(a.scope)

    await b.sync.ensure_restored(b.scope)
    assert b.files() == a.files()
    assert stat.S_IMODE((b.root / "tools/build.sh").stat().st_mode) & 0o111
    [progress] = b.sync.progress("u1")
    assert progress.files_done == progress.files_total == 158

    (a.root / "a/b").unlink()
    a.write('say "hi".txt', (a.root / 'say "hi".txt').read_bytes()[::-1])  # same size
    await a.sync.backup_now(a.scope)
    b2 = Machine(b.root.parent, *_server_and_bucket(b))
    await b2.sync.ensure_restored(b2.scope)
    assert b.files() == a.files()
