"""A folder as a snapshot: every file's hash, size and mode and every link's target, kept as a
file of JSON lines sorted by path, and how to bring a folder to a snapshot without ever
writing through a link.

Everything here streams: a folder is walked in path order, and snapshots are compared by
reading two or three sorted files side by side, so the memory a sync needs does not grow
with the number of files in the folder.

Hashes are SHA-256 of the content (a same-size edit is a change; modification times are never
compared with a store's). A cache keyed by each file's size, modification time (ns) and inode
means indexing an unchanged tree of thousands of files reads no file. (Not the ctime: a
restore's chmod and rename change it without changing the content.)
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

READ_SIZE = 256 * 1024  # memory per read, whatever the size of the file


class DamagedSnapshot(ValueError):
    """A snapshot file that is not what this module writes (cut short, edited, out of order)."""


@dataclass(frozen=True)
class Entry:
    """One file (`sha256`, `size`) or symbolic link (`link`) of a snapshot."""

    size: int = 0
    sha256: str = ""
    executable: bool = False
    link: str | None = None

    def same_content(self, other: Entry | None) -> bool:
        return other is not None and (self.sha256, self.link, self.executable) == (
            other.sha256,
            other.link,
            other.executable,
        )


Row = tuple[str, Entry]


@dataclass
class Totals:
    files: int = 0
    bytes: int = 0

    def add(self, entry: Entry) -> None:
        if entry.link is None:
            self.files += 1
            self.bytes += entry.size


# --- snapshot files ---------------------------------------------------------------------------


def write_rows(out: TextIO, rows: Iterable[Row]) -> Totals:
    """Write rows (already in path order) as JSON lines; returns what they hold."""
    totals = Totals()
    for path, entry in rows:
        fields: dict[str, Any] = {"path": path}
        if entry.link is not None:
            fields["link"] = entry.link
        else:
            fields["size"], fields["sha256"] = entry.size, entry.sha256
            if entry.executable:
                fields["executable"] = True
        out.write(json.dumps(fields) + "\n")
        totals.add(entry)
    return totals


def write_snapshot(path: Path, header: dict[str, Any], rows: Iterable[Row]) -> Totals:
    """A snapshot file: a header line, then the rows. Written aside and moved into place."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        totals = write_rows(out, rows)
    temporary.replace(path)
    return totals


def with_header(source: Path, header: dict[str, Any], out: Path) -> None:
    """A copy of the snapshot file `source` under another header (its rows copied as text)."""
    temporary = out.with_name(out.name + ".tmp")
    with source.open("rb") as rows, temporary.open("wb") as copy:
        rows.readline()
        copy.write(json.dumps(header).encode() + b"\n")
        shutil.copyfileobj(rows, copy, READ_SIZE)
    temporary.replace(out)


def read_header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as lines:
        try:
            header = json.loads(lines.readline())
        except ValueError as error:
            raise DamagedSnapshot(f"{path.name}: no header") from error
    if not isinstance(header, dict):
        raise DamagedSnapshot(f"{path.name}: no header")
    return header


def read_snapshot(path: Path | None) -> Iterator[Row]:
    """The rows of a snapshot file (none for None), checked as they are read: each a valid
    path, each after the one before."""
    if path is None:
        return
    with path.open(encoding="utf-8") as lines:
        lines.readline()  # the header
        yield from read_rows(lines, path.name)


def read_rows(lines: Iterable[str], name: str) -> Iterator[Row]:
    previous = ""
    for number, line in enumerate(lines, start=2):
        try:
            fields = json.loads(line)
            relative = fields.pop("path")
            entry = Entry(**fields)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise DamagedSnapshot(f"{name}, line {number}: not an entry") from error
        if not valid_path(relative) or relative <= previous:
            raise DamagedSnapshot(f"{name}, line {number}: path out of order or invalid")
        previous = relative
        yield relative, entry


def align(*streams: Iterable[Row]) -> Iterator[tuple[str, list[Entry | None]]]:
    """Read sorted snapshots side by side: every path once, with what each one holds for it."""
    readers = [iter(s) for s in streams]
    heads = [next(r, None) for r in readers]
    while True:
        present = [h[0] for h in heads if h is not None]
        if not present:
            return
        path = min(present)
        row: list[Entry | None] = []
        for n, head in enumerate(heads):
            if head is not None and head[0] == path:
                row.append(head[1])
                heads[n] = next(readers[n], None)
            else:
                row.append(None)
        yield path, row


# --- indexing a folder ------------------------------------------------------------------------


class Excludes:
    """Patterns like `node_modules/` (a folder, anywhere), `*.pyc` (a name, anywhere) or
    `build/tmp/` (a path from the root)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip()]

    def skips(self, relative: str, is_dir: bool) -> bool:
        name = relative.rsplit("/", 1)[-1]
        for pattern in self.patterns:
            folder_only = pattern.endswith("/")
            if folder_only and not is_dir:
                continue
            bare = pattern.rstrip("/")
            target = relative if "/" in bare else name
            if fnmatch.fnmatchcase(target, bare):
                return True
        return False


def walk(root: Path, excludes: Excludes) -> Iterator[tuple[str, os.stat_result]]:
    """Every file and link under `root` (never through a link), in path order: siblings are
    sorted with a folder's name read as `name/`, which puts a folder's contents exactly where
    its paths sort. Names that are not valid UTF-8 are skipped (no S3 key can carry them)."""
    if not root.is_dir() or root.is_symlink():
        return
    yield from _walk_folder(root, "", excludes)


def _walk_folder(
    root: Path, folder: str, excludes: Excludes
) -> Iterator[tuple[str, os.stat_result]]:
    try:
        with os.scandir(os.path.join(root, folder)) as found:
            children = []
            for child in found:
                relative = f"{folder}/{child.name}" if folder else child.name
                if not _utf8(relative):
                    continue
                info = child.stat(follow_symlinks=False)
                is_dir = stat.S_ISDIR(info.st_mode)
                if not excludes.skips(relative, is_dir):
                    children.append((relative + "/" if is_dir else relative, info))
    except OSError:
        return
    children.sort(key=lambda child: child[0])
    for key, info in children:
        if stat.S_ISDIR(info.st_mode):
            yield from _walk_folder(root, key[:-1], excludes)
        elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            yield key, info


def listed(root: Path, paths: Iterable[str]) -> Iterator[tuple[str, os.stat_result]]:
    """The files and links among `paths` (in path order) as they are now, for a snapshot of
    exactly what a listing named (one gone since is left out)."""
    for relative in paths:
        try:
            info = os.lstat(os.path.join(root, relative))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            yield relative, info


def index(
    root: Path, entries: Iterable[tuple[str, os.stat_result]], cache: Path, out: Path
) -> Totals:
    """Write the folder's `entries` (`walk`'s, or `listed`'s) as they are now to the snapshot
    file `out`. Links are recorded, never followed, and files are read through folders opened
    without following links (an agent may swap one in while a backup runs); one gone since
    it was listed is left out. A file whose size, mtime and inode match the hash cache is not
    read; the cache is rewritten with what was seen."""
    fresh = cache.with_name(cache.name + ".tmp")
    cache.parent.mkdir(parents=True, exist_ok=True)
    known = Cursor(_read_cache(cache))
    with fresh.open("w", encoding="utf-8") as seen, Placer(root, None) as folder:

        def rows() -> Iterator[Row]:
            for relative, info in entries:
                if stat.S_ISLNK(info.st_mode):
                    target = folder.read_link(relative)
                    if target is not None:
                        yield relative, Entry(link=target)
                    continue
                key = [info.st_size, info.st_mtime_ns, info.st_ino]
                hit = known.get(relative)
                digest = str(hit[3]) if hit is not None and hit[:3] == key else None
                if digest is None and (digest := folder.file_sha256(relative)) is None:
                    continue
                seen.write(json.dumps([relative, *key, digest]) + "\n")
                executable = bool(info.st_mode & stat.S_IXUSR)
                yield relative, Entry(size=info.st_size, sha256=digest, executable=executable)

        totals = write_snapshot(out, {}, rows())
    fresh.replace(cache)
    return totals


def remember(cache: Path, placed: Path) -> None:
    """Fold hashes known without reading the files (just placed from checked downloads; the
    `placed` file holds cache lines in path order) into the cache."""
    fresh = cache.with_name(cache.name + ".tmp")
    with fresh.open("w", encoding="utf-8") as out:
        old, new = _read_cache(cache), _read_cache(placed)
        for line in _merge_newest(old, new):
            out.write(json.dumps(line) + "\n")
    fresh.replace(cache)


def cache_line(relative: str, info: os.stat_result, digest: str) -> str:
    return json.dumps([relative, info.st_size, info.st_mtime_ns, info.st_ino, digest]) + "\n"


def _read_cache(path: Path) -> Iterator[tuple[str, list[Any]]]:
    """(path, [size, mtime_ns, inode, sha256]) in path order; a damaged cache reads as empty
    from the damage on (it only saves reading files)."""
    try:
        lines = path.open(encoding="utf-8")
    except FileNotFoundError:
        return
    with lines:
        previous = ""
        for line in lines:
            try:
                relative, *values = json.loads(line)
            except (ValueError, TypeError):
                return
            if not isinstance(relative, str) or relative <= previous or len(values) != 4:
                return
            previous = relative
            yield relative, values


def _merge_newest(
    old: Iterator[tuple[str, list[Any]]], new: Iterator[tuple[str, list[Any]]]
) -> Iterator[list[Any]]:
    old_head, new_head = next(old, None), next(new, None)
    while old_head is not None or new_head is not None:
        if new_head is None or (old_head is not None and old_head[0] < new_head[0]):
            assert old_head is not None
            yield [old_head[0], *old_head[1]]
            old_head = next(old, None)
        else:
            if old_head is not None and old_head[0] == new_head[0]:
                old_head = next(old, None)
            yield [new_head[0], *new_head[1]]
            new_head = next(new, None)


class Cursor:
    """Lookups by path, in ascending order, in a sorted stream: each line is read once."""

    def __init__(self, stream: Iterator[tuple[str, list[Any]]]) -> None:
        self._stream = stream
        self._head = next(stream, None)

    def get(self, relative: str) -> list[Any] | None:
        while self._head is not None and self._head[0] < relative:
            self._head = next(self._stream, None)
        if self._head is not None and self._head[0] == relative:
            return self._head[1]
        return None


def file_sha256(path: str | Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _sha256_of(fd)
    finally:
        os.close(fd)


def _sha256_of(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, READ_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


# --- paths and links --------------------------------------------------------------------------


def safe_link(relative: str, target: str) -> bool:
    """A link kept in a snapshot is recreated only if it points inside its own folder."""
    if os.path.isabs(target):
        return False
    resolved = os.path.normpath(os.path.join(os.path.dirname(relative), target))
    return not (resolved == ".." or resolved.startswith("../"))


def valid_path(relative: str) -> bool:
    parts = relative.split("/")
    return (
        bool(relative)
        and all(p not in ("", ".", "..") and "\x00" not in p for p in parts)
        and _utf8(relative)
    )


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class InTheWay(Exception):
    """A local folder where the snapshot has a file, or a local file or link where it has a
    folder: left as it is (it may be work not yet backed up)."""


class Placer:
    """Puts files into a folder and reads them from it, opening every folder on the way
    without following links, so nothing in the folder (an agent can make links) can redirect
    a write, or a read for a backup, outside it. A context manager: folders opened once are
    reused for the whole batch."""

    def __init__(self, root: Path, owner: tuple[int, int] | None) -> None:
        self.root = root
        self.owner = owner
        self._folders: dict[str, int] = {}

    def __enter__(self) -> Placer:
        return self

    def __exit__(self, *_exc: object) -> None:
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()

    def put(self, relative: str, source: str, entry: Entry) -> None:
        """Move `source` (a finished download) to `relative`, replacing a file or link there.
        Raises InTheWay."""
        parent, name = self._parent(relative)
        _clear(parent, name)
        os.chmod(source, 0o755 if entry.executable else 0o644)
        if self.owner is not None:
            os.chown(source, *self.owner)
        os.rename(source, name, dst_dir_fd=parent)

    def link(self, relative: str, target: str) -> None:
        parent, name = self._parent(relative)
        _clear(parent, name)
        os.symlink(target, name, dir_fd=parent)
        if self.owner is not None:
            os.chown(name, *self.owner, dir_fd=parent, follow_symlinks=False)

    def open_file(self, relative: str) -> int | None:
        """A descriptor to read the plain file at `relative`; None when there is none any more
        (gone, a link, a FIFO or device, unreadable, or a link on the way)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO never blocks
        try:
            parent, name = self._parent(relative, create=False)
            fd = os.open(name, flags, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError, PermissionError, InTheWay):
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                return None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def file_sha256(self, relative: str) -> str | None:
        """The SHA-256 of the plain file at `relative` (None: see `open_file`)."""
        fd = self.open_file(relative)
        if fd is None:
            return None
        try:
            return _sha256_of(fd)
        finally:
            os.close(fd)

    def read_link(self, relative: str) -> str | None:
        """The target of the link at `relative`; None when there is no link there any more."""
        try:
            parent, name = self._parent(relative, create=False)
            return os.readlink(name, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError, InTheWay):
            return None
        except OSError as error:
            if error.errno == errno.EINVAL:  # not a link
                return None
            raise

    def remove(self, relative: str) -> None:
        try:
            parent, name = self._parent(relative, create=False)
            _clear(parent, name)
        except (FileNotFoundError, InTheWay):
            return

    def _parent(self, relative: str, *, create: bool = True) -> tuple[int, str]:
        if not valid_path(relative):
            raise ValueError(f"not a path inside the folder: {relative!r}")
        folder, _, name = relative.rpartition("/")
        return self._folder(folder, create), name

    def _folder(self, folder: str, create: bool) -> int:
        known = self._folders.get(folder)
        if known is not None:
            return known
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        if not folder:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root, flags)
        else:
            above, _, name = folder.rpartition("/")
            parent = self._folder(above, create)
            try:
                fd = os.open(name, flags, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=parent)
                if self.owner is not None:
                    os.chown(name, *self.owner, dir_fd=parent, follow_symlinks=False)
                fd = os.open(name, flags, dir_fd=parent)
            except OSError as error:
                if error.errno in (errno.ENOTDIR, errno.ELOOP):  # a file or a link
                    raise InTheWay(folder) from error
                raise
        self._folders[folder] = fd
        return fd


def _clear(parent: int, name: str) -> None:
    """Make room for a file or link at `name` (a file or link there goes; a folder stays)."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise InTheWay(name)
    os.unlink(name, dir_fd=parent)
