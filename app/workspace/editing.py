"""A project's files for the page's tree and editor: list, read, save, upload, make folders,
rename and delete.

The project folder is the agent's to shape: it may hold links to anywhere (`/etc`, another
user's folder, the app's own data), and the app often runs as root. So no link is ever
followed with the app's privileges:

- reads go through `files.open_beneath`, one name at a time without following links (a link
  is listed as a link and never entered or read);
- every write runs in the user's jail (`Sandbox.command`, as the agent itself would run it),
  where a small script again walks one name at a time without following links: even a link
  the agent swapped in at the last moment can only lead where the agent itself could write.

A save writes a temporary file in the same folder and renames it over the old one, so a failed
save leaves the old file intact; it only replaces the file the user opened (by its SHA-256), so
an edit the agent made meanwhile is not overwritten unless the user says so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from app.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from app.sandbox.service import Sandbox
from app.workspace import files
from app.workspace.place import ProjectPlace

MAX_PATH_CHARS = 1000
MAX_ENTRIES = 2000
MAX_SCANNED = 100_000  # names read from one folder at most (then sorted, then cut to 2,000)
MAX_EDIT = 2 * 1024 * 1024
MAX_DOWNLOAD = 50 * 1024 * 1024
MAX_UPLOAD = 20 * 1024 * 1024
MAX_PREVIEW = 2 * 1024 * 1024
# Images the page shows (as a data URL over its socket: /files/raw is not reachable on
# AgentCore); an <img> runs no script, SVG included.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
JAIL_TIMEOUT_S = 300.0
CHUNK = 1024 * 1024
CHANGED = (
    "The file changed since you opened it (the agent may have edited it): reload it or save anyway."
)
HIDDEN = {".git"}
# Shown in the browser only as plain text; these could run scripts if rendered.
_ACTIVE = {"text/html", "text/xml", "text/javascript", "application/xhtml+xml", "image/svg+xml"}
_TEXT_APPLICATIONS = {
    "application/json",
    "application/toml",
    "application/x-sh",
    "application/x-yaml",
}
_JAIL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}

Kind = Literal["file", "folder", "link", "other"]


class TooLarge(AppError):
    """The file or upload is above the size this operation takes."""

    status = 413
    code = "too_large"


class NotText(AppError):
    """The editor takes UTF-8 text; this file is something else (download it instead)."""

    status = 415
    code = "not_text"


class StorageFull(AppError):
    """The disk (or the user's quota) is full: nothing was written."""

    status = 507
    code = "storage_full"


class FileOperationFailed(AppError):
    """The jailed helper could not run at all (the sandbox is broken)."""

    status = 502
    code = "file_operation_failed"


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    kind: Kind
    size: int | None  # files only
    mtime: float | None
    hidden: bool  # `.git`: listed, but the page keeps it folded away
    target: str | None  # where a link points (never followed)


@dataclass(frozen=True)
class Listing:
    path: str
    entries: list[Entry]
    truncated: bool


@dataclass(frozen=True)
class TextFile:
    path: str
    content: str
    version: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Saved:
    path: str
    version: str
    size: int


@dataclass
class Download:
    name: str
    size: int
    media_type: str
    attachment: bool
    stream: BinaryIO

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes (at most the size it had when opened, and at most 50 MB)."""
        left = min(self.size, MAX_DOWNLOAD)
        with self.stream:
            while left > 0:
                chunk = self.stream.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def close(self) -> None:
        self.stream.close()


def parts_of(path: str, *, root_ok: bool = False) -> list[str]:
    """The names of a relative path inside the project; InvalidInput for anything else."""
    if "\x00" in path:
        raise InvalidInput("A path cannot contain a NUL character.")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidInput(f"Paths are at most {MAX_PATH_CHARS} characters.")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("A path must be valid UTF-8 text.") from None
    if path.startswith("/"):
        raise InvalidInput("Give a path relative to the project, such as src/app.py.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidInput("A path cannot go up with '..': it stays inside the project.")
    if any(len(part.encode()) > files.MAX_NAME for part in parts):
        raise InvalidInput(f"A name in a path is at most {files.MAX_NAME} bytes.")
    if not parts and not root_ok:
        raise InvalidInput("Give a path inside the project, such as src/app.py.")
    return parts


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ProjectFiles:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    # --- reads (in the app, never through a link) -----------------------------------------

    async def listing(self, place: ProjectPlace, path: str) -> Listing:
        parts = parts_of(path, root_ok=True)
        return await asyncio.to_thread(_list, place.project, parts)

    async def text(self, place: ProjectPlace, path: str) -> TextFile:
        parts = parts_of(path)
        return await asyncio.to_thread(_read_text, place.project, parts)

    async def image(self, place: ProjectPlace, path: str) -> str:
        """An image of the project as a data URL, for the page to show."""
        parts = parts_of(path)
        return await asyncio.to_thread(_read_image, place.project, parts)

    async def download(self, place: ProjectPlace, path: str) -> Download:
        parts = parts_of(path)
        return await asyncio.to_thread(_open_download, place.project, parts)

    # --- writes (in the user's jail) ------------------------------------------------------

    async def save(
        self, place: ProjectPlace, path: str, content: str, version: str | None, *, force: bool
    ) -> Saved:
        """Write `content` if the file still has `version` (None: a new file), or anyway."""
        parts = parts_of(path)
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("The text is not valid Unicode (a lone surrogate).") from None
        if len(data) > MAX_EDIT:
            raise TooLarge(f"The editor saves files up to {MAX_EDIT // 2**20} MB of text.")
        mode = "force" if force else ("create" if version is None else "replace")
        await self._jail(
            place, {"op": "write", "path": parts, "mode": mode, "version": version}, data
        )
        return Saved("/".join(parts), version_of(data), len(data))

    async def upload(
        self, place: ProjectPlace, path: str, data: bytes, *, overwrite: bool
    ) -> Saved:
        parts = parts_of(path)
        if len(data) > MAX_UPLOAD:
            raise TooLarge(f"Uploads are at most {MAX_UPLOAD // 2**20} MB.")
        mode = "force" if overwrite else "create"
        await self._jail(place, {"op": "write", "path": parts, "mode": mode, "version": None}, data)
        return Saved("/".join(parts), version_of(data), len(data))

    async def make_folder(self, place: ProjectPlace, path: str) -> str:
        parts = parts_of(path)
        await self._jail(place, {"op": "mkdir", "path": parts})
        return "/".join(parts)

    async def rename(self, place: ProjectPlace, path: str, to: str) -> str:
        parts, target = parts_of(path), parts_of(to)
        if target == parts:
            raise InvalidInput("That is its name already.")
        if target[: len(parts)] == parts:
            raise InvalidInput("A folder cannot be moved into itself.")
        await self._jail(place, {"op": "rename", "path": parts, "to": target})
        return "/".join(target)

    async def delete(self, place: ProjectPlace, path: str) -> None:
        """Delete a file, a link (not what it points to) or a folder with all it holds."""
        await self._jail(place, {"op": "delete", "path": parts_of(path)})

    async def _jail(self, place: ProjectPlace, request: dict[str, Any], data: bytes = b"") -> None:
        async with self.sandbox.command(
            user_id=place.user_id,
            project=place.project,
            project_name=place.project_name,
            home=place.home,
            argv=["/usr/bin/python3", "-I", "-S", "-X", "utf8", "-c", _SCRIPT, json.dumps(request)],
        ) as jailed:
            process = await asyncio.create_subprocess_exec(
                *jailed.argv,
                cwd=jailed.cwd,
                env={**_JAIL_ENV, "HOME": jailed.home},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(process.communicate(data), JAIL_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                raise FileOperationFailed(
                    "The file operation took too long and was stopped."
                ) from None
        try:
            answer = json.loads(out)
        except ValueError:
            said = " ".join(err.decode(errors="replace").strip().splitlines()[-2:])[:300]
            raise FileOperationFailed(
                f"The file operation could not run in the sandbox: {said or 'no reason given'}."
            ) from None
        if not answer.get("ok"):
            raise _refusal(answer)


def _refusal(answer: dict[str, Any]) -> AppError:
    """The jailed script's refusal, in words."""
    name = str(answer.get("name") or "the path")
    kind = answer.get("kind")
    if kind == "missing":
        return NotFound(f"No such file or folder: {name}.")
    if kind == "link":
        return InvalidInput(
            f"{name} is a link: the app never writes through links (they could lead anywhere)."
        )
    if kind == "notfolder":
        return InvalidInput(f"{name} is a file, not a folder.")
    if kind == "folder":
        return InvalidInput(f"{name} is a folder, not a file.")
    if kind == "special":
        return InvalidInput(f"{name} is not a regular file.")
    if kind == "exists":
        return Conflict(f"{name} already exists: choose another name.")
    if kind == "changed":
        return Conflict(CHANGED)
    if kind == "gone":
        return Conflict(
            "The file was deleted since you opened it (the agent may have removed it): "
            "save anyway to create it again."
        )
    code, message = str(answer.get("errno") or ""), str(answer.get("message") or "failed")
    if code in ("EACCES", "EPERM", "EROFS"):
        return Forbidden(f"The project's sandbox may not change that ({message}).")
    if code in ("ENOSPC", "EDQUOT"):
        return StorageFull(f"The disk is full: nothing was written ({message}).")
    if code in ("ENOTEMPTY", "EEXIST", "EBUSY"):
        return Conflict(f"That cannot be done now ({message}).")
    return InvalidInput(f"That cannot be done: {message}.")


# --- reads -------------------------------------------------------------------------------


def _list(root: Path, parts: list[str]) -> Listing:
    fd = files.open_beneath(root, parts, folder=True)
    try:
        found: list[tuple[str, Kind]] = []
        truncated = False
        with os.scandir(fd) as scan:
            for item in scan:
                if len(found) >= MAX_SCANNED:
                    truncated = True
                    break
                found.append((item.name, _kind(item)))
        found.sort(key=lambda e: (e[1] != "folder", e[0].lower(), e[0]))
        truncated = truncated or len(found) > MAX_ENTRIES
        entries = [
            e for e in (_entry(fd, parts, name, kind) for name, kind in found[:MAX_ENTRIES]) if e
        ]
    finally:
        os.close(fd)
    return Listing("/".join(parts), entries, truncated)


def _kind(item: os.DirEntry[str]) -> Kind:
    try:
        if item.is_symlink():
            return "link"
        if item.is_dir(follow_symlinks=False):
            return "folder"
        if item.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        pass
    return "other"


def _entry(fd: int, parts: list[str], name: str, kind: Kind) -> Entry | None:
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        target = _shown(os.readlink(name, dir_fd=fd)) if kind == "link" else None
    except OSError:
        return None  # gone meanwhile
    shown = _shown(name)
    return Entry(
        name=shown,
        path="/".join([*parts, shown]),
        kind=kind,
        size=info.st_size if kind == "file" else None,
        mtime=info.st_mtime,
        hidden=name in HIDDEN,
        target=target,
    )


def _shown(name: str) -> str:
    """A name as JSON can carry it (names that are not UTF-8 get replacement characters)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _open_file(root: Path, parts: list[str]) -> tuple[int, os.stat_result]:
    """A regular file's descriptor and its metadata; links, folders and the rest refused."""
    fd = files.open_beneath(root, parts)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidInput(f"{'/'.join(parts)} is a folder, not a file.")
        raise NotFound(f"{'/'.join(parts)} is not a regular file.")
    return fd, info


def _read_text(root: Path, parts: list[str]) -> TextFile:
    fd, info = _open_file(root, parts)
    with os.fdopen(fd, "rb") as stream:
        if info.st_size > MAX_EDIT:
            raise TooLarge(_too_large_to_edit(info.st_size))
        data = stream.read(MAX_EDIT + 1)
    if len(data) > MAX_EDIT:
        raise TooLarge(_too_large_to_edit(len(data)))
    if b"\x00" in data:
        raise NotText("This file is binary, not text: the editor cannot open it (download it).")
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotText(
            "This file is not UTF-8 text: the editor cannot open it (download it)."
        ) from None
    return TextFile("/".join(parts), content, version_of(data), len(data), info.st_mtime)


def is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_TYPES


def _read_image(root: Path, parts: list[str]) -> str:
    media_type = IMAGE_TYPES.get(Path(parts[-1]).suffix.lower())
    if media_type is None:
        raise NotText(f"{parts[-1]} is not an image the page shows.")
    fd, info = _open_file(root, parts)
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(MAX_PREVIEW + 1)
    if len(data) > MAX_PREVIEW:
        raise TooLarge(
            f"The image is {info.st_size:,} bytes: the page shows images up to "
            f"{MAX_PREVIEW // 2**20} MB (download it instead)."
        )
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _too_large_to_edit(size: int) -> str:
    return (
        f"The file is {size:,} bytes: the editor opens files up to "
        f"{MAX_EDIT // 2**20} MB (download it instead)."
    )


def _open_download(root: Path, parts: list[str]) -> Download:
    fd, info = _open_file(root, parts)
    if info.st_size > MAX_DOWNLOAD:
        os.close(fd)
        raise TooLarge(
            f"The file is {info.st_size / 2**20:.0f} MB: downloads are at most "
            f"{MAX_DOWNLOAD // 2**20} MB."
        )
    try:
        head = os.pread(fd, 8192, 0)
    except OSError:
        head = b""
    media_type, attachment = _media(parts[-1], head)
    return Download(parts[-1], info.st_size, media_type, attachment, os.fdopen(fd, "rb"))


def _media(name: str, head: bytes) -> tuple[str, bool]:
    """The file's content type, and whether it is sent as an attachment (all but text)."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    text = b"\x00" not in head and _utf8_prefix(head)
    if guessed is None:
        guessed = "text/plain" if text else "application/octet-stream"
    is_text = guessed.startswith("text/") or guessed in _TEXT_APPLICATIONS
    if is_text and text:
        guessed += "; charset=utf-8"
    return guessed, not is_text or guessed.split(";")[0] in _ACTIVE


def _utf8_prefix(head: bytes) -> bool:
    """`head` is UTF-8, but for a character cut at its end."""
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


# --- writes: the script that runs in the user's jail --------------------------------------

# Run as `python3 -I -S -X utf8 -c _SCRIPT '<request as JSON>'` with the project as its
# working folder; the bytes to write come on stdin. It answers one JSON object on stdout.
# Every path is walked one name at a time from the project without following links; a link
# on the way is refused, and a link as the last name is itself renamed or deleted, never
# what it points to.
_SCRIPT = r"""
import errno, hashlib, json, os, secrets, stat, sys

THROUGH = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    def __init__(self, kind, name):
        super().__init__(kind)
        self.kind, self.name = kind, name


def look(fd, name):
    try:
        return os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return None


def step(fd, name, create):
    for attempt in (0, 1):
        try:
            return os.open(name, THROUGH, dir_fd=fd)
        except OSError:
            info = look(fd, name)
            if info is None and create and attempt == 0:
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                continue
            if info is None:
                raise Refused("missing", name)
            if stat.S_ISLNK(info.st_mode):
                raise Refused("link", name)
            if not stat.S_ISDIR(info.st_mode):
                raise Refused("notfolder", name)
            raise
    raise Refused("missing", name)


def parent(parts, create=False):
    fd = os.open(".", THROUGH)
    for name in parts[:-1]:
        try:
            inner = step(fd, name, create)
        finally:
            os.close(fd)
        fd = inner
    return fd


def digest(fd, name):
    info = look(fd, name)
    if info is None:
        return None, None
    if stat.S_ISLNK(info.st_mode):
        raise Refused("link", name)
    if stat.S_ISDIR(info.st_mode):
        raise Refused("folder", name)
    if not stat.S_ISREG(info.st_mode):
        raise Refused("special", name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    sha = hashlib.sha256()
    with os.fdopen(os.open(name, flags, dir_fd=fd), "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest(), info


def write(request):
    data = sys.stdin.buffer.read()
    parts, mode = request["path"], request["mode"]
    name = parts[-1]
    try:
        fd = parent(parts, create=mode != "replace")
    except Refused as refused:
        if refused.kind == "missing":
            raise Refused("gone", name)
        raise
    try:
        version, info = digest(fd, name)
        if mode == "create" and info is not None:
            raise Refused("exists", name)
        if mode == "replace" and info is None:
            raise Refused("gone", name)
        if mode == "replace" and version != request["version"]:
            raise Refused("changed", name)
        temporary = "." + name[:200] + "." + secrets.token_hex(4) + ".tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            with os.fdopen(os.open(temporary, flags, 0o666, dir_fd=fd), "wb") as out:
                out.write(data)
                out.flush()
                if info is not None:
                    os.fchmod(out.fileno(), stat.S_IMODE(info.st_mode))
                os.fsync(out.fileno())
            if mode == "create":
                try:
                    os.link(temporary, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    raise Refused("exists", name)
                except OSError as error:
                    if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                        raise
                    if look(fd, name) is not None:
                        raise Refused("exists", name)
                    os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
            else:
                os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        finally:
            try:
                os.unlink(temporary, dir_fd=fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)


def mkdir(request):
    parts = request["path"]
    fd = parent(parts, create=True)
    try:
        os.mkdir(parts[-1], 0o777, dir_fd=fd)
    except FileExistsError:
        raise Refused("exists", parts[-1])
    finally:
        os.close(fd)


def rename(request):
    parts, target = request["path"], request["to"]
    source = parent(parts)
    try:
        if look(source, parts[-1]) is None:
            raise Refused("missing", parts[-1])
        into = parent(target, create=True)
        try:
            if look(into, target[-1]) is not None:
                raise Refused("exists", target[-1])
            os.rename(parts[-1], target[-1], src_dir_fd=source, dst_dir_fd=into)
        finally:
            os.close(into)
    finally:
        os.close(source)


def remove_tree(fd, name):
    inner = os.open(name, THROUGH, dir_fd=fd)
    try:
        with os.scandir(inner) as scan:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in scan]
        for entry, folder in entries:
            if folder:
                remove_tree(inner, entry)
            else:
                os.unlink(entry, dir_fd=inner)
    finally:
        os.close(inner)
    os.rmdir(name, dir_fd=fd)


def delete(request):
    parts = request["path"]
    fd = parent(parts)
    try:
        info = look(fd, parts[-1])
        if info is None:
            raise Refused("missing", parts[-1])
        if stat.S_ISDIR(info.st_mode):
            remove_tree(fd, parts[-1])
        else:
            os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


try:
    request = json.loads(sys.argv[1])
    {"write": write, "mkdir": mkdir, "rename": rename, "delete": delete}[request["op"]](request)
    answer = {"ok": True}
except Refused as refused:
    answer = {"ok": False, "kind": refused.kind, "name": refused.name}
except OSError as error:
    code = errno.errorcode.get(error.errno or 0, "")
    answer = {"ok": False, "kind": "os", "errno": code, "message": error.strerror or code}
except RecursionError:
    answer = {"ok": False, "kind": "os", "errno": "", "message": "the folder is nested too deeply"}
sys.stdout.write(json.dumps(answer))
"""
