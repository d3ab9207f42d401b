"""The bubblewrap jail around one agent, written as a small launch script per session.

Inside, the agent sees: system and toolchain paths read-only; its project (read-write) at
`/workspace/<name>`; its user's CLI home (read-write) at `/home/agent`; a private `/tmp`; its
own PID namespace; a network namespace with nothing but loopback, where `socat` turns
127.0.0.1:3128 into its session's door. Nothing of the app's data, checkout or environment.

When the app runs as root, the jail is built by a privileged bubblewrap (which can bind any
path), then `setpriv` drops to the user's own unprivileged uid and an inner bubblewrap puts the
agent in a user namespace that may not create further ones. Otherwise one unprivileged
bubblewrap does all of it, as the app's own (unprivileged) user.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
HOME_INSIDE = "/home/agent"
WORKSPACE_INSIDE = "/workspace"
CLI_INSIDE = "/opt/agent/bin/claude"
DOOR_INSIDE = "/run/agent/door.sock"
PLUGINS_INSIDE = "/opt/agent/plugins"  # the project's enabled skills and plugins, read-only
DOOR_PORT = 3128
SYSTEM_PATHS = ("/usr",)
TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc entries a developer's tools need (certificates, linker, time zone, tool defaults).
ETC_ENTRIES = (
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gitconfig",
    "host.conf",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "pki",
    "profile",
    "protocols",
    "python3",
    "python3.11",
    "services",
    "ssl",
    "timezone",
    "vim",
)
# Variables the SDK sets for the CLI (its version, entry point, feature switches).
SDK_VARIABLES = (
    "CLAUDE_AGENT_SDK_*|CLAUDE_CODE_ENTRYPOINT|CLAUDE_CODE_SDK_*"
    "|CLAUDE_CODE_ENABLE_SDK_FILE_CHECKPOINTING"
)
# Runs inside the jail as the agent: the door on 127.0.0.1:3128, then the CLI.
ENTRY = f"""\
command -v socat >/dev/null || {{ echo "agent-web sandbox: socat is not installed" >&2; exit 127; }}
socat TCP-LISTEN:{DOOR_PORT},bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:{DOOR_INSIDE} &
for _ in $(seq 200); do
  grep -q ':{DOOR_PORT:04X} 00000000:0000 0A' /proc/net/tcp && break; sleep 0.01
done
exec "$@"
"""


@dataclass(frozen=True)
class Jail:
    run_dir: Path  # per-session files; the door socket lives here too
    project: Path
    home: Path
    workdir: str  # the project as the agent sees it
    cli: Path
    env: Mapping[str, str]  # the agent's whole environment (paths as seen inside)
    uid: int | None = None  # the host uid to drop to (app running as root)
    readonly_paths: Sequence[Path] = ()
    plugins: Sequence[Path] = ()  # plugin folders, bound read-only at PLUGINS_INSIDE/<n>
    niceness: int = 0  # the CPU niceness the whole jail runs at (AGENT_NICENESS)
    groups: tuple[Path, ...] = ()  # the control groups it runs in (app/sandbox/cgroups.py)
    bwrap: str = BWRAP
    # The agent gets a session of its own, without a controlling terminal it could push
    # input into. A terminal's shell keeps the pseudo-terminal the app made for it alone
    # (job control and Ctrl-C need it; nothing else reads from that terminal).
    new_session: bool = True

    @property
    def door(self) -> Path:
        return self.run_dir / "door.sock"

    @property
    def script(self) -> Path:
        return self.run_dir / "launch"


def write_launcher(jail: Jail, program: Sequence[str] = (CLI_INSIDE,)) -> Path:
    """Write the session's launch script (and the files it binds in); returns its path. It
    runs `program` (the CLI, or a terminal's shell) behind the door. The CLI is told where the
    project's plugins are (`--plugin-dir`, as the SDK's `plugins` option would)."""
    jail.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = jail.uid if jail.uid is not None else os.getuid()
    gid = jail.uid if jail.uid is not None else os.getgid()
    _write(
        jail.run_dir / "passwd",
        f"root:x:0:0::/root:/usr/sbin/nologin\n"
        f"agent:x:{uid}:{gid}:Agent:{HOME_INSIDE}:/bin/bash\n"
        "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
    )
    _write(jail.run_dir / "group", f"root:x:0:\nagent:x:{gid}:\nnogroup:x:65534:\n")
    _write(jail.run_dir / "hosts", "127.0.0.1 localhost agent\n::1 localhost ip6-localhost\n")
    if tuple(program) == (CLI_INSIDE,):
        program = [CLI_INSIDE, *plugin_options(plugins_inside(jail.plugins))]
    command = [*_drop_privileges(jail), "/bin/bash", "-c", ENTRY, "agent-entry", *program]
    prefix = [jail.bwrap, *bwrap_options(jail, uid, gid)]
    _write_script(
        jail.script, jail.env, prefix, command, niceness=jail.niceness, groups=jail.groups
    )
    return jail.script


def jailed(jail: Jail, argv: Sequence[str]) -> list[str]:
    """`argv` in the user's jail, with no network at all and neither the CLI nor a door: the
    app's own commands on a project (git), which must not run with the app's privileges when
    the project is the agent's to shape (its `.git/config` and hooks included)."""
    jail.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = jail.uid if jail.uid is not None else os.getuid()
    gid = jail.uid if jail.uid is not None else os.getgid()
    _write(jail.run_dir / "passwd", f"agent:x:{uid}:{gid}:Agent:{HOME_INSIDE}:/bin/bash\n")
    _write(jail.run_dir / "group", f"agent:x:{gid}:\n")
    _write(jail.run_dir / "hosts", "127.0.0.1 localhost agent\n")
    options = bwrap_options(jail, uid, gid, with_agent=False)
    return [jail.bwrap, *options, "--", *_drop_privileges(jail), *argv]


def write_unconfined_launcher(
    run_dir: Path,
    program: Sequence[str],
    env: Mapping[str, str],
    *,
    niceness: int = 0,
    groups: tuple[Path, ...] = (),
) -> Path:
    """AGENT_SANDBOX=off: `program` (the CLI, a shell) with only the environment chosen for
    it, and no jail."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    script = run_dir / "launch"
    _write_script(script, env, [], program, niceness=niceness, groups=groups)
    return script


def bwrap_options(jail: Jail, uid: int, gid: int, *, with_agent: bool = True) -> list[str]:
    options = [
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "agent",
        "--die-with-parent",
    ]
    if jail.new_session:
        options.append("--new-session")
    if jail.uid is None:  # unprivileged: this bubblewrap makes the user namespace itself
        options += ["--unshare-user", "--uid", str(uid), "--gid", str(gid), "--disable-userns"]
    for path in SYSTEM_PATHS:
        options += ["--ro-bind", path, path]
    for path in TOP_LINKS:
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    options += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_ENTRIES:
        options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group", "hosts"):
        options += ["--ro-bind", str(jail.run_dir / name), f"/etc/{name}"]
    for extra in jail.readonly_paths:
        options += ["--ro-bind-try", str(extra), str(extra)]
    for folder in (
        "/home",
        "/opt",
        "/opt/agent",
        "/opt/agent/bin",
        "/run",
        "/run/agent",
        WORKSPACE_INSIDE,
        *([PLUGINS_INSIDE] if with_agent and jail.plugins else []),
    ):
        options += ["--perms", "0755", "--dir", folder]  # bubblewrap would make them 0700
    options += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--tmpfs", "/tmp",
        "--perms", "1777", "--tmpfs", "/var/tmp",
        "--perms", "1777", "--tmpfs", "/dev/shm",
        "--bind", str(jail.home), HOME_INSIDE,
        "--bind", str(jail.project), jail.workdir,
    ]  # fmt: skip
    if with_agent:
        options += [
            "--ro-bind",
            str(jail.cli),
            CLI_INSIDE,
            "--ro-bind",
            str(jail.door),
            DOOR_INSIDE,
        ]
        for plugin, inside in zip(jail.plugins, plugins_inside(jail.plugins), strict=True):
            options += ["--ro-bind", str(plugin), inside]
    options += ["--chdir", jail.workdir]
    return options


def plugins_inside(plugins: Sequence[Path]) -> list[str]:
    """Where the jail shows each plugin folder: numbered, so no name of the host's shows."""
    return [f"{PLUGINS_INSIDE}/{n}" for n in range(len(plugins))]


def plugin_options(paths: Sequence[str]) -> list[str]:
    """The CLI's arguments that load these plugin folders."""
    return [arg for path in paths for arg in ("--plugin-dir", path)]


def _drop_privileges(jail: Jail) -> list[str]:
    """Root builds the jail; the agent runs as the user's own uid in a user namespace of its
    own that cannot create more (fewer kernel interfaces to attack)."""
    if jail.uid is None:
        return []
    uid = str(jail.uid)
    return [
        SETPRIV,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        jail.bwrap,
        "--unshare-user",
        "--uid", uid,
        "--gid", uid,
        "--disable-userns",
        "--dev-bind", "/", "/",
        "--die-with-parent",
        "--",
    ]  # fmt: skip


def _write_script(
    path: Path,
    env: Mapping[str, str],
    prefix: Sequence[str],
    command: Sequence[str],
    *,
    niceness: int = 0,
    groups: tuple[Path, ...] = (),
) -> None:
    """A bash script that runs prefix + command + the SDK's arguments, with exactly `env` plus
    the SDK's own variables (`env -i`: nothing else of the app's environment gets through).
    At `niceness` > 0 all of it runs at that CPU niceness, which the unprivileged agent cannot
    lower again, and in the user's control `groups` (it refuses to start outside them): under
    load the app's own work (API, streaming, pages) is served first, and the user's memory and
    process limits hold."""
    assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
    argv = " ".join(shlex.quote(a) for a in [*prefix, *(["--"] if prefix else []), *command])
    nice = f"nice -n {int(niceness)} " if niceness else ""
    group = ""
    for procs in map(shlex.quote, map(str, groups)):
        refusal = f"echo 'cannot enter the control group '{procs} >&2; exit 1"
        group += f"echo $$ > {procs} || {{ {refusal}; }}\n"
    text = (
        "#!/bin/bash\n"
        "# Agent Web: starts one session's Claude Code CLI. Generated; do not edit.\n"
        "set -euo pipefail\n"
        f"{group}"
        f"agent_env=({assignments})\n"
        "for key in $(compgen -e); do\n"
        f'  case $key in {SDK_VARIABLES}) agent_env+=("$key=${{!key}}") ;; esac\n'
        "done\n"
        f'exec {nice}env -i "${{agent_env[@]}}" {argv} "$@"\n'
    )
    _write(path, text, mode=0o700)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def owner_of(path: Path) -> int:
    return path.stat().st_uid


def give_to(path: Path, uid: int) -> None:
    """Make `path` (and, if it was someone else's, everything under it) belong to `uid`."""
    if owner_of(path) == uid:
        return
    for folder, dirs, files in os.walk(path):
        os.lchown(folder, uid, uid)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            os.lchown(os.path.join(folder, name), uid, uid)
