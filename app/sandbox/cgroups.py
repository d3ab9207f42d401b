"""What the agents may take of the machine: control groups for every agent and terminal of this
app process, with a child group per app user.

- **CPU:** all agents together weigh like a single process at AGENT_NICENESS, and users share
  that equally. `nice` alone is not enough: with the kernel's autogroups (on by default on most
  distributions) every process session - each jail's bubblewrap `--new-session`, anything an
  agent starts with `setsid` - competes as a group of its own, as heavy as the whole app
  whatever its niceness. Fifty agents then leave the app a fifty-first of the CPU. Processes in
  a control group other than the root one are not autogrouped.
- **Memory:** a user's agents together get at most AGENT_MEMORY_MB (swap included); beyond it
  the kernel ends the largest of *their* processes, never the app or another user's agent.
- **Processes:** a user's agents together run at most AGENT_MAX_PROCESSES tasks (threads
  count), so a fork bomb fails inside the jail instead of filling the machine's process table.

Nothing in a jail can leave its groups (no /sys in there), so the limits hold. cgroup v1 (a
hierarchy per controller) and v2 (one unified hierarchy) both work where the app may write
(root, or a delegated group); `open` makes what the machine allows and says what it could not.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "agent-web-"
APP_LEAF = "agent-web-app"  # v2: where the app's own processes move, so the group may split
CONTROLLERS = ("cpu", "memory", "pids")


@dataclass(frozen=True)
class Limits:
    niceness: int  # all agents weigh like one process at this niceness
    memory_mb: int  # per user, swap included; 0: no limit
    max_processes: int  # per user; 0: no limit


@dataclass(frozen=True)
class Mount:
    point: Path
    root: str  # the hierarchy's path shown at `point` (not "/" inside some containers)
    version: int


@dataclass(frozen=True)
class AgentGroups:
    roots: dict[str, Path]  # controller -> this app process's agents' group (v2: one for all)
    version: int
    limits: Limits
    missing: dict[str, str] = field(default_factory=dict)  # controller -> why it is not used

    @classmethod
    def open(cls, limits: Limits) -> AgentGroups:
        """Make this app process's agents' groups, with every controller the machine lets the
        app use; OSError (saying why) when there is none."""
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        roots: dict[str, Path] = {}
        missing: dict[str, str] = {}
        mounts = _mounts()
        if any(m.version == 1 for m in mounts.values()):
            for controller in CONTROLLERS:
                try:
                    roots[controller] = _open_v1(mounts, controller, name, limits)
                except OSError as error:
                    missing[controller] = str(error)
            if not roots:
                raise OSError(errno.EPERM, "; ".join(f"{c}: {w}" for c, w in missing.items()))
            return cls(roots=roots, version=1, limits=limits, missing=missing)
        root, missing = _open_v2(mounts, name, limits)
        roots = {c: root for c in CONTROLLERS if c not in missing}
        return cls(roots=roots, version=2, limits=limits, missing=missing)

    def procs_for(self, user_id: str) -> tuple[Path, ...]:
        """The files a launch script writes its pid to, to put what it runs in the user's
        groups (made, with the user's limits, on first use)."""
        controllers_of: dict[Path, list[str]] = {}  # v1: a root each; v2: one root for all
        for controller, root in self.roots.items():
            controllers_of.setdefault(root, []).append(controller)
        procs = []
        for root, controllers in controllers_of.items():
            group = root / _user_group(user_id)
            if not group.is_dir():
                group.mkdir(exist_ok=True)
                self._limit(group, controllers)
            procs.append(group / "cgroup.procs")
        return tuple(procs)

    def oom_kills(self, user_id: str) -> int:
        """How many of the user's processes the kernel has ended for going over the memory
        limit (0 where memory is not limited)."""
        if "memory" not in self.roots:
            return 0
        group = self.roots["memory"] / _user_group(user_id)
        counters = group / ("memory.oom_control" if self.version == 1 else "memory.events")
        try:
            lines = counters.read_text().splitlines()
        except OSError:
            return 0
        found = [line.split()[1] for line in lines if line.startswith("oom_kill ")]
        return int(found[0]) if found else 0

    def _limit(self, group: Path, controllers: list[str]) -> None:
        """The user's limits, in a new group of theirs that has these controllers."""
        memory = self.limits.memory_mb * 2**20
        if memory and "memory" in controllers:
            if self.version == 1:
                _set(group / "memory.limit_in_bytes", str(memory))
                swap, with_swap = group / "memory.memsw.limit_in_bytes", str(memory)  # in all
            else:
                _set(group / "memory.max", str(memory))
                swap, with_swap = group / "memory.swap.max", "0"  # on top: none
            if swap.exists():  # where swap is accounted
                _set(swap, with_swap)
        if self.limits.max_processes and "pids" in controllers:
            _set(group / "pids.max", str(self.limits.max_processes))

    def close(self) -> None:
        """Remove the groups (those still holding a process stay until it ends)."""
        for root in dict.fromkeys(self.roots.values()):
            _remove(root)


def _user_group(user_id: str) -> str:
    return f"u-{hashlib.sha256(user_id.encode()).hexdigest()[:16]}"


def nice_weight(niceness: int) -> int:
    """The scheduler's weight of one process at `niceness` (1024 at 0, each step 1.25x)."""
    return round(1024 / 1.25**niceness)


def _open_v1(mounts: dict[str, Mount], controller: str, name: str, limits: Limits) -> Path:
    mount = mounts.get(controller)
    own = _own_groups().get(controller)
    if mount is None or mount.version != 1 or own is None:
        raise OSError(errno.ENOENT, f"no cgroup v1 hierarchy with {controller} is mounted")
    base = mount.point / own.removeprefix(mount.root).lstrip("/")
    _remove_stale(base)
    root = base / name
    root.mkdir()
    try:
        if controller == "cpu":
            _set(root / "cpu.shares", str(max(2, nice_weight(limits.niceness))))
        elif controller == "memory" and (root / "memory.use_hierarchy").exists():
            with contextlib.suppress(OSError):  # on by default, and fixed, on recent kernels
                _set(root / "memory.use_hierarchy", "1")
    except OSError:
        _remove(root)
        raise
    return root


def _open_v2(mounts: dict[str, Mount], name: str, limits: Limits) -> tuple[Path, dict[str, str]]:
    mount = mounts.get("")
    own = _own_groups().get("")
    if mount is None or own is None:
        raise OSError(errno.ENOENT, "no cgroup hierarchy with the cpu controller is mounted")
    base = mount.point / own.removeprefix(mount.root).lstrip("/")
    available = set((base / "cgroup.controllers").read_text().split())
    wanted = [c for c in CONTROLLERS if c in available]
    missing = {c: "not delegated to the app's group" for c in CONTROLLERS if c not in available}
    if "cpu" not in wanted:
        raise OSError(errno.ENOENT, "no cgroup hierarchy with the cpu controller is mounted")
    _remove_stale(base)
    _enable(base, wanted)
    root = base / name
    root.mkdir()
    try:
        _set(root / "cpu.weight", str(max(1, round(nice_weight(limits.niceness) * 100 / 1024))))
        _set(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    except OSError:
        _remove(root)
        raise
    return root, missing


def _mounts() -> dict[str, Mount]:
    """controller -> the v1 hierarchy mounted with it; "" -> the v2 hierarchy."""
    found: dict[str, Mount] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        parts, kind = fields.split(), tail.split()
        if kind[0] == "cgroup":
            for controller in set(kind[2].split(",")) & set(CONTROLLERS):
                found[controller] = Mount(Path(_unescape(parts[4])), parts[3], 1)
        elif kind[0] == "cgroup2" and "" not in found:
            found[""] = Mount(Path(_unescape(parts[4])), parts[3], 2)
    return found


def _own_groups() -> dict[str, str]:
    """controller -> this process's group in that v1 hierarchy; "" -> its v2 group."""
    groups: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _enable(base: Path, controllers: list[str]) -> None:
    """v2: let `base`'s children have these controllers. A group with processes of its own may
    not (the kernel's "no internal processes" rule), so those move to a leaf of their own
    first: the app's, and in a container whatever else runs beside it."""
    control = base / "cgroup.subtree_control"
    wanted = " ".join(f"+{c}" for c in controllers)
    if set(controllers) <= set(control.read_text().split()):
        return
    try:
        _set(control, wanted)
        return
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise
    leaf = base / APP_LEAF
    leaf.mkdir(exist_ok=True)
    for pid in (base / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            _set(leaf / "cgroup.procs", pid)
    _set(control, wanted)


def _remove_stale(base: Path) -> None:
    """Groups left by app processes that are gone (killed, so they could not clean up)."""
    for group in base.glob(f"{PREFIX}[0-9]*"):
        pid = int(group.name.removeprefix(PREFIX).split("-")[0])
        if not Path(f"/proc/{pid}").exists():
            _remove(group)


def _remove(group: Path) -> None:
    """Remove the group and its children where they are empty (another app process may be
    removing the same stale group meanwhile)."""
    with contextlib.suppress(OSError):
        for child in [c for c in group.iterdir() if c.is_dir()]:
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
