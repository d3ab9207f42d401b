"""Read-only views of a project folder, never reaching outside it."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from app.errors import InvalidInput, NotFound

MAX_READ = 200_000
MAX_PATH = 4096
MAX_NAME = 255


def safe_path(root: Path, relative: str) -> Path:
    """`relative` resolved inside `root`; InvalidInput for anything that escapes it."""
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise InvalidInput("Give a path inside the project.")
    if len(relative) > MAX_PATH or any(len(part) > MAX_NAME for part in relative.split("/")):
        raise InvalidInput(f"Paths are at most {MAX_PATH} characters, {MAX_NAME} per name.")
    if root.is_symlink():
        raise InvalidInput("The project folder is not a folder any more.")
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise InvalidInput("That path is outside the project.")
    return resolved


def open_inside(root: Path, path: Path) -> BinaryIO:
    """Open `path` for reading only if the file it really is lies inside `root`.

    Agents write freely under their folders, symlinks included: a link pointing at another
    user's file must not make the app read it for them. The check is made on the opened file
    itself (no window for a swap between check and open), and a final symlink is refused.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise NotFound("No such file.") from error
    real = Path(os.readlink(f"/proc/self/fd/{fd}"))
    if not real.is_relative_to(root.resolve()):
        os.close(fd)
        raise InvalidInput("That file is outside its folder.")
    return os.fdopen(fd, "rb")


def open_beneath(root: Path, parts: Sequence[str], *, folder: bool = False) -> int:
    """A read-only descriptor for `root/parts...`, reached one name at a time from `root`
    without following any link: a link anywhere on the way (the last name included) is
    NotFound, never entered. Non-blocking, so a FIFO put in a file's place cannot hang the
    app; the caller checks what it got (fstat) and closes it.
    """
    if root.is_symlink():
        raise InvalidInput("The project folder is not a folder any more.")
    through = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    last = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(root, through)
    except OSError as error:
        raise NotFound("No such project folder.") from error
    try:
        for i, name in enumerate(parts):
            final = i == len(parts) - 1
            flags = (last | (os.O_DIRECTORY if folder else 0)) if final else through
            try:
                inner = os.open(name, flags, dir_fd=fd)
            except OSError as error:
                raise _why_not(fd, name, error) from error
            os.close(fd)
            fd = inner
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not real.is_relative_to(root.resolve()):
            raise InvalidInput("That file is outside its folder.")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why_not(folder_fd: int, name: str, error: OSError) -> NotFound:
    try:
        mode = os.lstat(name, dir_fd=folder_fd).st_mode
    except OSError:
        return NotFound("No such file or folder.")
    if stat.S_ISLNK(mode):
        return NotFound(f"{name} is a link: links are listed, never followed.")
    if error.errno == errno.ENOTDIR:
        return NotFound(f"{name} is not a folder.")
    return NotFound(f"{name} cannot be opened ({error.strerror}).")


def read_text(root: Path, relative: str, limit: int = MAX_READ) -> str:
    path = safe_path(root, relative)
    if not path.is_file():
        raise NotFound("No such file.")
    with open_inside(root, path) as f:
        data = f.read(limit + 1)
    if b"\x00" in data[:8192]:
        return "(binary file)"
    text = data[:limit].decode("utf-8", errors="replace")
    return text + ("\n… (truncated)" if len(data) > limit else "")
