"""Skills and plugins: each user's library of Claude Code extensions, enabled per project.

An extension is copied into the app's data (`<DATA_DIR>/extensions/<user>/<id>/`), never into a
folder an agent can write: from a folder of one of the user's projects (read by `tar` in the
user's own jail, as the agent would read it: the project is the agent's to shape, and a link
it planted, even swapped in mid-copy, leads nowhere the agent could not read already), or
from a git URL cloned by the app through the sandbox's egress proxy (so the user's allowlist
decides what may be fetched). A *skill* is a folder with `SKILL.md` at its root; it is stored
wrapped as a one-skill plugin, so every extension is a plugin folder the CLI loads with
`--plugin-dir`. A *plugin* is a folder with `.claude-plugin/plugin.json`.

The sandbox binds the enabled ones read-only into the agents of that project (see
`Sandbox.plugins_for`); other users' libraries are never in a jail. Copies keep no `.git`, no
symlink that leads out of the folder, and stay under a size and file-count cap.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import secrets
import shutil
import stat
import tarfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlmodel import Session, col, delete, select

from app.agent.schemas import Ident, Text
from app.db.models import Extension, ProjectExtension
from app.db.store import Store
from app.errors import AppError, Conflict, InvalidInput, NotFound
from app.github.git import git_env, safety
from app.sandbox.service import Sandbox
from app.sandbox.usage import Usage
from app.workspace.place import ProjectPlace

logger = logging.getLogger(__name__)

Kind = Literal["skill", "plugin"]
MAX_BYTES = 20 * 1024 * 1024
MAX_FILES = 2000
MAX_EXTENSIONS = 100
CLONE_TIMEOUT_S = 120.0
READ_TIMEOUT_S = 60.0
_TAR_LIMIT = MAX_BYTES + MAX_FILES * 1536 + 1024 * 1024  # the files, their headers, slack
_JAIL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FRONT = re.compile(r"\A---\r?\n(.*?)\r?\n---\s*(?:\r?\n|\Z)", re.DOTALL)
_FIELD = re.compile(r"^(name|description):[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

PlaceOf = Callable[[str, str], Awaitable[ProjectPlace]]


class ExtensionInstall(BaseModel):
    """Where to install from: a folder of one of your projects, or a git URL (https)."""

    project_id: Ident | None = None
    path: Text | None = Field(
        None, min_length=1, max_length=1000, description="relative to the project's folder"
    )
    git_url: Text | None = Field(None, min_length=1, max_length=2000, description="https://...")


class ExtensionView(BaseModel):
    id: str
    kind: Kind
    name: str
    description: str
    source: str
    created_at: str


class Extensions:
    """The users' libraries; every call is scoped to the acting user."""

    def __init__(self, store: Store, root: Path, place: PlaceOf, sandbox: Sandbox) -> None:
        self.store = store
        self.root = root
        self.place = place  # a project of the user's, restored from S3 if need be
        self.sandbox = sandbox  # the user's jail (project folders are read in it), the proxy

    # --- the library ----------------------------------------------------------------------

    def of_user(self, user_id: str) -> list[ExtensionView]:
        with Session(self.store.engine) as db:
            rows = db.exec(
                select(Extension)
                .where(Extension.user_id == user_id)
                .order_by(col(Extension.created_at))
            ).all()
        return [_view(row) for row in rows]

    async def install(self, user_id: str, request: ExtensionInstall) -> ExtensionView:
        """Copy the extension into the user's library; InvalidInput saying what is wrong with
        the source otherwise (nothing is kept then)."""
        staging = self.root / ".staging" / secrets.token_hex(8)
        try:
            if request.git_url is not None and request.project_id is None and not request.path:
                source = check_git_url(request.git_url)
                await self._clone(user_id, source, staging / "clone")
                origin = staging / "clone"
            elif request.project_id is not None and request.path and request.git_url is None:
                place = await self.place(user_id, request.project_id)
                folder = await asyncio.to_thread(inside, place.project, request.path)
                relative = folder.relative_to(place.project.resolve()).as_posix()
                origin = staging / "folder"
                await self._read_folder(place, relative, origin)
                source = f"{place.project_name}/{relative}"
            else:
                raise InvalidInput("Give either a git_url, or a project_id and a path in it.")
            return await asyncio.to_thread(self._keep, user_id, origin, staging / "copy", source)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def delete(self, user_id: str, extension_id: str) -> None:
        row = self._own(user_id, extension_id)
        with Session(self.store.engine) as db:
            db.exec(delete(ProjectExtension).where(col(ProjectExtension.extension_id) == row.id))
            db.exec(delete(Extension).where(col(Extension.id) == row.id))
            db.commit()
        shutil.rmtree(self._folder(user_id, row.id), ignore_errors=True)
        logger.info("user %s: extension %s removed", user_id, row.id)

    # --- per project ----------------------------------------------------------------------

    def enabled(self, user_id: str, project_id: str) -> list[str]:
        self.store.get_project(user_id=user_id, project_id=project_id)  # or NotFound
        with Session(self.store.engine) as db:
            rows = db.exec(
                select(ProjectExtension).where(
                    ProjectExtension.user_id == user_id, ProjectExtension.project_id == project_id
                )
            ).all()
        return [row.extension_id for row in rows]

    def set_enabled(self, user_id: str, project_id: str, ids: Sequence[str]) -> list[str]:
        """Exactly `ids` (each in the user's library) enabled in the project; agents started
        from now on get them."""
        self.store.get_project(user_id=user_id, project_id=project_id)
        wanted = list(dict.fromkeys(ids))
        for extension_id in wanted:
            self._own(user_id, extension_id)
        with Session(self.store.engine) as db:
            db.exec(
                delete(ProjectExtension).where(
                    col(ProjectExtension.user_id) == user_id,
                    col(ProjectExtension.project_id) == project_id,
                )
            )
            for extension_id in wanted:
                db.add(
                    ProjectExtension(
                        user_id=user_id, project_id=project_id, extension_id=extension_id
                    )
                )
            db.commit()
        return wanted

    def folders_for(self, user_id: str, project: Path) -> list[Path]:
        """The plugin folders of the extensions enabled in the project at `project` (a folder
        `<projects>/<user>/<project id>`), for the sandbox to bind read-only."""
        if project.parent.name != user_id or not _ID.match(project.name):
            return []
        with Session(self.store.engine) as db:
            rows = db.exec(
                select(ProjectExtension).where(
                    ProjectExtension.user_id == user_id, ProjectExtension.project_id == project.name
                )
            ).all()
        folders = [self._folder(user_id, row.extension_id) for row in rows]
        return [folder for folder in folders if folder.is_dir()]

    # --- helpers --------------------------------------------------------------------------

    def _own(self, user_id: str, extension_id: str) -> Extension:
        with Session(self.store.engine) as db:
            row = db.exec(
                select(Extension).where(Extension.id == extension_id, Extension.user_id == user_id)
            ).first()
        if row is None:
            raise NotFound("No such extension.")
        return row

    def _folder(self, user_id: str, extension_id: str) -> Path:
        return self.root / user_id / extension_id

    def _keep(self, user_id: str, origin: Path, copy: Path, source: str) -> ExtensionView:
        copy_tree(origin, copy)
        kind, name, description = describe(copy)
        mine = self.of_user(user_id)
        if any(e.name == name for e in mine):
            raise Conflict(f"You already have an extension named {name!r}: remove it first.")
        if len(mine) >= MAX_EXTENSIONS:
            raise InvalidInput(f"A library holds at most {MAX_EXTENSIONS} extensions.")
        row = Extension(
            user_id=user_id, kind=kind, name=name, description=description, source=source
        )
        folder = self._folder(user_id, row.id)
        folder.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if kind == "skill":
            wrap_skill(copy, folder, name, description)
        else:
            copy.rename(folder)
        with Session(self.store.engine) as db:
            db.add(row)
            db.commit()
            db.refresh(row)
        logger.info("user %s: %s %s installed as %s", user_id, kind, name, row.id)
        return _view(row)

    async def _read_folder(self, place: ProjectPlace, relative: str, destination: Path) -> None:
        """The project's folder `relative` as the user's jail sees it, into `destination`
        (links kept as links, then only those that stay inside are copied by `copy_tree`)."""
        async with self.sandbox.command(
            user_id=place.user_id,
            project=place.project,
            project_name=place.project_name,
            home=place.home,
            argv=["tar", "-c", "-f", "-", "--exclude=.git", "-C", relative, "."],
        ) as jailed:
            process = await asyncio.create_subprocess_exec(
                *jailed.argv,
                cwd=jailed.cwd,
                env={**_JAIL_ENV, "HOME": jailed.home},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(_capped(process), READ_TIMEOUT_S)
            except TimeoutError:
                raise InvalidInput("Reading the folder took too long.") from None
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        if process.returncode != 0:
            said = " ".join(err.decode(errors="replace").split())[-300:]
            raise InvalidInput(f"The folder could not be read: {said or 'no reason given'}.")
        await asyncio.to_thread(_unpack, out, destination)

    async def _clone(self, user_id: str, url: str, destination: Path) -> None:
        """`git clone --depth 1` through a door of the user's own, so the egress allowlist
        (the app's and the user's hosts) applies as it would to their agent."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        door_id = f"extension-{secrets.token_hex(8)}"
        door = await self.sandbox.gateway.open(door_id, user_id, None, _no_model_use)
        env = git_env(None) | {"GIT_LFS_SKIP_SMUDGE": "1"}
        if "GIT_SSL_CAINFO" in os.environ:  # an operator's own certificate authority
            env["GIT_SSL_CAINFO"] = os.environ["GIT_SSL_CAINFO"]
        command = [
            "git", *safety(url), "-c", f"http.proxy=http://127.0.0.1:{door.port}",
            "-c", "core.symlinks=false", "clone", "--quiet", "--depth", "1",
            "--no-recurse-submodules", "--", url, str(destination),
        ]  # fmt: skip
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(process.communicate(), CLONE_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise InvalidInput(
                    f"The clone took longer than {CLONE_TIMEOUT_S:.0f} seconds."
                ) from None
        finally:
            await self.sandbox.gateway.close(door_id)
        if process.returncode != 0:
            raise CloneFailed(_clone_failure(url, err.decode(errors="replace")))


async def _capped(process: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """What `process` prints, refused past the size cap (a tar of the extension)."""
    assert process.stdout is not None and process.stderr is not None
    out = bytearray()
    while chunk := await process.stdout.read(1 << 16):
        out += chunk
        if len(out) > _TAR_LIMIT:
            raise InvalidInput(
                f"An extension is at most {MAX_FILES} files and {MAX_BYTES // 2**20} MB."
            )
    err = await process.stderr.read()
    await process.wait()
    return bytes(out), err


def _unpack(archive: bytes, destination: Path) -> None:
    """Extract a tar the jail made: regular files, folders and links only, nothing outside
    `destination` (a member that would be is left out), no special bits."""

    def safe(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError:
            return None

    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        if len(tar.getmembers()) > MAX_FILES * 2:
            raise InvalidInput(f"An extension is at most {MAX_FILES} files.")
        tar.extractall(destination, filter=safe)


class CloneFailed(AppError):
    """git could not fetch the extension (refused by the allowlist, not found, not git)."""

    status = 422
    code = "clone_failed"


def _clone_failure(url: str, said: str) -> str:
    """git's complaint in a sentence; the proxy's refusal said as what it is."""
    if "CONNECT tunnel failed, response 403" in said:
        parts = urlsplit(url)
        return (
            f"The clone failed: {parts.hostname}:{parts.port or 443} is not on your agents' "
            "egress allowlist (AGENT_ALLOWED_HOSTS)."
        )
    said = " ".join(said.split())[-300:].removeprefix("fatal: ")
    return f"The clone failed: {said or 'git gave no reason'}."


def check_git_url(url: str) -> str:
    """An https URL with a host and no credentials in it (they would be kept as the source)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput("That is not a URL git can clone.") from None
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput("A git URL is https://host/path (the app clones over HTTPS only).")
    if parts.username or parts.password or any(c in url for c in "\0\r\n \t"):
        raise InvalidInput("A git URL carries no user name, password or spaces.")
    return url


def inside(project: Path, relative: str) -> Path:
    """The folder `relative` names in `project`; InvalidInput when it leads out of the project
    (`..`, an absolute path, a symlink pointing elsewhere) or is not a folder."""
    if "\0" in relative or relative.startswith(("/", "\\")):
        raise InvalidInput("The path is relative to the project's folder.")
    root = project.resolve()
    try:
        target = (root / relative).resolve()
        if target != root and root not in target.parents:
            raise InvalidInput("The path leads out of the project.")
        if not target.is_dir():
            raise InvalidInput(f"No folder {relative[:200]!r} in the project.")
    except OSError as error:  # a name too long, a loop of links
        raise InvalidInput(f"That path cannot be read: {error.strerror}.") from None
    return target


def copy_tree(origin: Path, copy: Path) -> None:
    """Copy `origin` as plain files (readable by every agent, writable by none of them):
    no `.git`, no symlink leading out of `origin`, within MAX_FILES and MAX_BYTES."""
    root = origin.resolve()
    files = size = 0
    copy.mkdir(mode=0o755, parents=True)
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d != ".git" and not (here / d).is_symlink()]
        target_dir = copy / here.relative_to(root)
        target_dir.mkdir(mode=0o755, exist_ok=True)
        for name in names:
            source = here / name
            real = source.resolve()
            if (real != root and root not in real.parents) or not real.is_file():
                continue  # a symlink out of the folder (or to nothing): not followed
            files += 1
            size += real.stat().st_size
            if files > MAX_FILES or size > MAX_BYTES:
                raise InvalidInput(
                    f"An extension is at most {MAX_FILES} files and {MAX_BYTES // 2**20} MB."
                )
            shutil.copyfile(real, target_dir / name, follow_symlinks=True)
            executable = real.stat().st_mode & stat.S_IXUSR
            (target_dir / name).chmod(0o755 if executable else 0o644)


def describe(folder: Path) -> tuple[Kind, str, str]:
    """What the folder is (a plugin, or a skill) with its name and description."""
    manifest = folder / ".claude-plugin" / "plugin.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(".claude-plugin/plugin.json is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidInput(".claude-plugin/plugin.json is not a JSON object.")
        return "plugin", _name(data.get("name")), str(data.get("description") or "")[:500]
    skill = folder / "SKILL.md"
    if skill.is_file():
        try:
            front = _FRONT.match(skill.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput("SKILL.md is not UTF-8 text.") from None
        fields = dict(_FIELD.findall(front.group(1))) if front else {}
        description = fields.get("description", "").strip("'\"")
        if not description:
            raise InvalidInput("SKILL.md starts with front matter giving a description.")
        return "skill", _name(fields.get("name", "").strip("'\"")), description[:500]
    raise InvalidInput(
        "Neither a skill (SKILL.md at its root) nor a plugin (.claude-plugin/plugin.json)."
    )


def wrap_skill(skill: Path, folder: Path, name: str, description: str) -> None:
    """The skill as a one-skill plugin (`<name>:<name>` to the CLI), the shape `--plugin-dir`
    loads."""
    (folder / ".claude-plugin").mkdir(mode=0o755, parents=True)
    manifest = {"name": name, "description": description}
    (folder / ".claude-plugin" / "plugin.json").write_text(json.dumps(manifest))
    (folder / ".claude-plugin" / "plugin.json").chmod(0o644)
    (folder / "skills").mkdir(mode=0o755)
    skill.rename(folder / "skills" / name)


def _name(value: object) -> str:
    name = str(value or "").strip()
    if not NAME.match(name):
        raise InvalidInput(
            "An extension's name is 1-64 lower-case letters, digits, '-' and '_' "
            f"(got {name[:64]!r})."
        )
    return name


def _view(row: Extension) -> ExtensionView:
    kind: Kind = "plugin" if row.kind == "plugin" else "skill"
    return ExtensionView(
        id=row.id,
        kind=kind,
        name=row.name,
        description=row.description,
        source=row.source,
        created_at=row.created_at.isoformat(),
    )


async def _no_model_use(session_id: str, user_id: str, usage: Usage) -> None:
    """A clone's door relays no model request (git has no token for it)."""
