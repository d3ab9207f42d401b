"""The control groups on a cgroup v2 machine, where this one (v1) cannot show them: the same
code against a stand-in of a delegated v2 group, a folder with the files the kernel would
show. It checks what the app writes there; the v1 path runs for real in
tests/sandbox/test_resources.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.sandbox import cgroups
from app.sandbox.cgroups import AgentGroups, Limits, nice_weight


@pytest.fixture
def delegated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's own v2 group, /sys/fs/cgroup/app.slice/web.service, with cpu, memory and
    pids delegated; the app's process is in it."""
    base = tmp_path / "app.slice" / "web.service"
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (base / "cgroup.subtree_control").write_text("\n")
    (base / "cgroup.procs").write_text("4242\n")
    mount = cgroups.Mount(point=tmp_path, root="/", version=2)
    monkeypatch.setattr(cgroups, "_mounts", lambda: {"": mount})
    monkeypatch.setattr(cgroups, "_own_groups", lambda: {"": "/app.slice/web.service"})
    return base


def test_a_delegated_v2_group_gets_every_limit(delegated: Path) -> None:
    groups = AgentGroups.open(Limits(niceness=10, memory_mb=512, max_processes=200))
    assert groups.version == 2 and groups.missing == {}
    [root] = set(groups.roots.values())
    assert root.parent == delegated
    assert set((delegated / "cgroup.subtree_control").read_text().split()) == {
        "+cpu",
        "+memory",
        "+pids",
    }
    assert set((root / "cgroup.subtree_control").read_text().split()) == {
        "+cpu",
        "+memory",
        "+pids",
    }
    assert int((root / "cpu.weight").read_text()) == round(nice_weight(10) * 100 / 1024)

    [procs] = groups.procs_for("user-1")  # v2: one group holds all three
    user = procs.parent
    assert user.parent == root
    assert (user / "memory.max").read_text() == str(512 * 2**20)
    assert (user / "pids.max").read_text() == "200"
    assert groups.procs_for("user-2") != (procs,), "each user has a group of their own"

    (user / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    assert groups.oom_kills("user-1") == 2 and groups.oom_kills("user-2") == 0


def test_without_memory_and_pids_the_cpu_share_still_holds(delegated: Path) -> None:
    (delegated / "cgroup.controllers").write_text("cpu io\n")
    groups = AgentGroups.open(Limits(niceness=10, memory_mb=512, max_processes=200))
    assert set(groups.roots) == {"cpu"} and set(groups.missing) == {"memory", "pids"}
    [procs] = groups.procs_for("user-1")
    assert not (procs.parent / "memory.max").exists()
    assert not (procs.parent / "pids.max").exists()
    assert groups.oom_kills("user-1") == 0


def test_no_limit_is_written_when_the_settings_lift_them(delegated: Path) -> None:
    groups = AgentGroups.open(Limits(niceness=10, memory_mb=0, max_processes=0))
    [procs] = groups.procs_for("user-1")
    assert not (procs.parent / "memory.max").exists()
    assert not (procs.parent / "pids.max").exists()
