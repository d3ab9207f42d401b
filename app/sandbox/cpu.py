"""The agents' share of the CPU: one control group holds every agent and terminal of this app
process (a child group per app user, so users share it equally), weighted like a single
process at AGENT_NICENESS.

Why `nice` alone is not enough: with the kernel's autogroups (on by default on most
distributions) every process session - each jail's bubblewrap `--new-session`, anything an
agent starts with `setsid` - competes as a group of its own, as heavy as the whole app
whatever its niceness. Fifty agents then leave the app a fifty-first of the CPU, and an agent
can always start more sessions. Processes in a control group other than the root one are not
autogrouped, and nothing in a jail can leave its group (no /sys in there), so the weight holds.

cgroup v1 (a `cpu` hierarchy) and v2 (a unified hierarchy with the `cpu` controller) both work
when the app may write there (root, or a delegated group). Elsewhere `open` says why not, and
agents keep their niceness only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PREFIX = "agent-web-"
APP_LEAF = "agent-web-app"  # v2: where the app's own processes move, so the group may split


@dataclass(frozen=True)
class Mount:
    point: Path
    root: str  # the hierarchy's path shown at `point` (not "/" inside some containers)
    version: int


@dataclass(frozen=True)
class CpuGroups:
    root: Path  # the group every agent of this app process is under
    version: int

    @classmethod
    def open(cls, niceness: int) -> CpuGroups:
        """Make this app process's agents' group; OSError (saying why) where it cannot be."""
        mount, own = _own_cpu_group()
        base = mount.point / own.removeprefix(mount.root).lstrip("/")
        _remove_stale(base)
        if mount.version == 2:
            _enable_cpu(base)
        root = base / f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        root.mkdir()
        try:
            if mount.version == 1:
                _set(root / "cpu.shares", str(max(2, nice_weight(niceness))))
            else:
                _set(root / "cpu.weight", str(max(1, round(nice_weight(niceness) * 100 / 1024))))
                _set(root / "cgroup.subtree_control", "+cpu")
        except OSError:
            _remove(root)
            raise
        return cls(root=root, version=mount.version)

    def procs_for(self, user_id: str) -> Path:
        """The file a launch script writes its pid to, to put what it runs in the user's group
        (made on first use; users' groups weigh the same, so each gets an equal part)."""
        group = self.root / f"u-{hashlib.sha256(user_id.encode()).hexdigest()[:16]}"
        group.mkdir(exist_ok=True)
        return group / "cgroup.procs"

    def close(self) -> None:
        """Remove the groups (those still holding a process stay until it ends)."""
        _remove(self.root)


def nice_weight(niceness: int) -> int:
    """The scheduler's weight of one process at `niceness` (1024 at 0, each step 1.25x)."""
    return round(1024 / 1.25**niceness)


def _own_cpu_group() -> tuple[Mount, str]:
    """The mounted hierarchy that has the cpu controller, and this process's group in it."""
    v1: Mount | None = None
    v2: Mount | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        parts, kind = fields.split(), tail.split()
        if kind[0] == "cgroup" and "cpu" in kind[2].split(","):
            v1 = Mount(Path(_unescape(parts[4])), parts[3], 1)
        elif kind[0] == "cgroup2" and v2 is None:
            v2 = Mount(Path(_unescape(parts[4])), parts[3], 2)
    groups = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        groups[controllers] = path
    if v1 is not None:
        own = next((p for c, p in groups.items() if "cpu" in c.split(",")), None)
        if own is not None:
            return v1, own
    if v2 is not None and "" in groups and _has_cpu(v2.point):
        return v2, groups[""]
    raise OSError(errno.ENOENT, "no cgroup hierarchy with the cpu controller is mounted")


def _has_cpu(group: Path) -> bool:
    return "cpu" in (group / "cgroup.controllers").read_text().split()


def _enable_cpu(base: Path) -> None:
    """v2: let `base`'s children have CPU weights. A group with processes of its own may not
    (the kernel's "no internal processes" rule), so those move to a leaf of their own first:
    the app's, and in a container whatever else runs beside it."""
    control = base / "cgroup.subtree_control"
    if "cpu" in control.read_text().split():
        return
    try:
        _set(control, "+cpu")
        return
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise
    leaf = base / APP_LEAF
    leaf.mkdir(exist_ok=True)
    for pid in (base / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            _set(leaf / "cgroup.procs", pid)
    _set(control, "+cpu")


def _remove_stale(base: Path) -> None:
    """Groups left by app processes that are gone (killed, so they could not clean up)."""
    for group in base.glob(f"{PREFIX}[0-9]*"):
        pid = int(group.name.removeprefix(PREFIX).split("-")[0])
        if not Path(f"/proc/{pid}").exists():
            _remove(group)


def _remove(group: Path) -> None:
    for child in group.iterdir() if group.is_dir() else ():
        if child.is_dir():
            with contextlib.suppress(OSError):
                child.rmdir()
    with contextlib.suppress(OSError):
        group.rmdir()


def _set(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)


def _unescape(field: str) -> str:
    """mountinfo escapes spaces and a few other characters as octal."""
    return field.encode().decode("unicode_escape")
