"""Can a jail be built on this machine? Checked once at start-up, so that when it cannot, no
agent starts and the page and the API say why and what to install (fail closed)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from app.sandbox.jail import BWRAP, SETPRIV, Jail, write_launcher

INSTALL = "install them with `apt-get install bubblewrap socat` (or `make system`)"
NO_USERNS = (
    "this machine does not let programs create user namespaces, which the sandbox needs: "
    "allow them (`sysctl -w kernel.unprivileged_userns_clone=1` and "
    "`sysctl -w user.max_user_namespaces=15000`; in a container, a seccomp profile that "
    "permits clone/unshare of namespaces)"
)


async def probe(run_root: Path, *, as_root: bool, bwrap: str = BWRAP) -> str | None:
    """None when a jail starts here; otherwise the reason, with the fix."""
    missing = missing_tools(as_root=as_root, bwrap=bwrap)
    if missing:
        return f"The agent sandbox needs {', '.join(missing)}: {INSTALL}."
    with tempfile.TemporaryDirectory(dir=run_root, prefix="probe-") as scratch:
        root = Path(scratch)
        for name in ("project", "home"):
            (root / name).mkdir()
        uid = 65534 if as_root else None
        if uid is not None:
            for name in ("project", "home"):
                os.chown(root / name, uid, uid)
        jail = Jail(
            run_dir=root / "run",
            project=root / "project",
            home=root / "home",
            workdir="/workspace/probe",
            cli=Path("/usr/bin/true"),
            env={"PATH": "/usr/bin:/bin"},
            uid=uid,
            bwrap=bwrap,
        )
        script = write_launcher(jail)
        door = await asyncio.start_unix_server(lambda _r, w: w.close(), path=str(jail.door))
        try:
            process = await asyncio.create_subprocess_exec(
                str(script),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
            except TimeoutError:
                process.kill()
                return "The agent sandbox did not start within 30 seconds."
        finally:
            door.close()
    if process.returncode == 0:
        return None
    return explain(stderr.decode(errors="replace").strip())


def missing_tools(*, as_root: bool, bwrap: str = BWRAP) -> list[str]:
    needed = (bwrap, SETPRIV) if as_root else (bwrap,)
    missing = [name for name in needed if not os.path.exists(name)]
    if not shutil.which("socat", path="/usr/bin:/bin"):
        missing.append("socat")
    return missing


def explain(stderr: str) -> str:
    """bubblewrap's complaint, turned into what to do about it."""
    lowered = stderr.lower()
    if "namespace" in lowered or "uid map" in lowered or "operation not permitted" in lowered:
        return f"The agent sandbox cannot start: {NO_USERNS}. (bubblewrap said: {stderr})"
    if "socat" in lowered:
        return f"The agent sandbox needs socat: {INSTALL}."
    return f"The agent sandbox cannot start: {stderr or 'bubblewrap failed'}."
