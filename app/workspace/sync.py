"""Workspaces that outlive the machine: projects and CLI homes kept in S3.

Layout (the seed's): `user_data/<user>/projects/<project>/...` and `user_data/<user>/claude/...`,
each file at its own key. A backup sends what changed, then writes the folder's manifest
(`user_data/<user>/.agent-web/<folder>.jsonl`: a header line, then every file's SHA-256, size
and executable bit and every link's target, one JSON line each in path order) last: the
manifest is the snapshot a restore trusts. A backup killed half way leaves the old manifest;
a restore checks every file it fetches against it and, where an unfinished backup overwrote
a key, fetches the version that matches (buckets keep versions). Deletions propagate both
ways; local work that S3 has not seen is never deleted, whatever S3 says or whether it
answers at all.

Every step streams through files in a scratch folder (this folder's listing, the plan, the
list of what goes), so memory stays flat however many files a folder holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from app.errors import AppError
from app.workspace.bucket import Bucket, BucketConfig, KeyRing, StorageError, user_prefix
from app.workspace.snapshot import (
    DamagedSnapshot,
    Entry,
    Excludes,
    InTheWay,
    Placer,
    Row,
    Totals,
    align,
    cache_line,
    file_sha256,
    index,
    listed,
    read_header,
    read_rows,
    read_snapshot,
    remember,
    safe_link,
    valid_path,
    walk,
    with_header,
    write_rows,
    write_snapshot,
)
from app.workspace.transfer import MISMATCH

logger = logging.getLogger(__name__)
Phase = Literal["idle", "restoring", "backing_up", "failed"]
DEFAULT_EXCLUDES = (
    "node_modules/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".tox/",
    ".gradle/",
    ".cache/",
)
# The CLI's own throwaway files; transcripts, todos, settings, skills and plugins are kept.
HOME_EXCLUDES = ("backups/", "shell-snapshots/", "session-env/", "statsig/", "debug/", "cache/")
RETRY_S = (5.0, 15.0, 45.0, 120.0, 300.0)


@dataclass(frozen=True)
class SyncConfig:
    bucket: BucketConfig
    state_dir: Path  # this machine's record of what it last agreed with S3
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES


@dataclass(frozen=True)
class Scope:
    """One folder kept in S3: a project, or a user's CLI home."""

    user_id: str
    user_key: str  # the user's name in the bucket (the Cognito `sub`, else the app's id)
    name: str  # "projects/<project>" or "claude"
    root: Path

    @property
    def prefix(self) -> str:
        return f"{user_prefix(self.user_key)}{self.name}/"

    @property
    def manifest_key(self) -> str:
        return f"{user_prefix(self.user_key)}.agent-web/{self.name}.jsonl"


@dataclass
class Progress:
    """What the page shows of one folder's sync."""

    scope: str
    phase: Phase = "idle"
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    backed_up_at: str = ""
    error: str = ""
    warning: str = ""


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    restored: bool = False
    pending: asyncio.Task[None] | None = None
    again: bool = False  # asked for while a backup was under way: one more after it
    failures: int = 0


class WorkspaceSync:
    def __init__(self, config: SyncConfig, keys: KeyRing | None = None) -> None:
        self.config = config
        self.keys = keys or KeyRing(config.bucket)
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._progress: dict[str, dict[str, Progress]] = {}
        self._changed: dict[str, asyncio.Condition] = {}
        self._closing = False
        self._asked: set[asyncio.Task[None]] = set()  # "back up now"s under way

    # --- what the engine calls ------------------------------------------------------------

    async def ensure_restored(self, scope: Scope) -> None:
        """Restore the folder on its first use since this app started (before an agent works
        in it). A failure is reported and re-raised: no agent starts on a half-restored folder."""
        slot = self._slot(scope)
        async with slot.lock:
            if slot.restored:
                return
            await self._guarded(scope, "restoring", self._restore)
            slot.restored = True

    def schedule_backup(self, scope: Scope, delay: float = 0.0) -> None:
        """Back up soon (after each turn, when an agent stops); repeated calls coalesce (one
        made while a backup is under way gets one more after it), and a failure is retried
        with backoff."""
        slot = self._slot(scope)
        if self._closing:
            return
        if slot.pending is not None and not slot.pending.done():
            slot.again = True
            return
        slot.pending = asyncio.create_task(self._backup_until_done(scope, delay))

    async def backup_now(self, scope: Scope) -> None:
        """The user's "back up now": at once, and its error to the caller. A folder not yet
        restored since start is restored first (a backup must never send an old copy over
        what another machine saved)."""
        await self.ensure_restored(scope)
        # Its own task, which shutdown waits for like a scheduled backup: the page that
        # asked may go away, the backup must not.
        task = asyncio.create_task(self._backup_locked(scope))
        self._asked.add(task)
        task.add_done_callback(self._asked.discard)
        await asyncio.shield(task)

    async def _backup_locked(self, scope: Scope) -> None:
        async with self._slot(scope).lock:
            await self._guarded(scope, "backing_up", self._backup)

    async def flush(self, timeout: float) -> None:
        """Shutdown: stop scheduling, finish what is pending (within `timeout`)."""
        self._closing = True
        pending = [s.pending for s in self._slots.values() if s.pending and not s.pending.done()]
        pending += self._asked
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                task.cancel()

    def progress(self, user_id: str) -> list[Progress]:
        return [replace(p) for p in self._progress.get(user_id, {}).values()]

    async def updates(self, user_id: str) -> AsyncIterator[list[Progress]]:
        """The user's progress now, then each time it changes."""
        condition = self._changed.setdefault(user_id, asyncio.Condition())
        while True:
            yield self.progress(user_id)
            async with condition:
                await condition.wait()

    # --- backup and restore ---------------------------------------------------------------

    async def _backup_until_done(self, scope: Scope, delay: float) -> None:
        slot = self._slot(scope)
        await asyncio.sleep(delay)
        while True:
            try:
                async with slot.lock:
                    slot.again = False
                    if slot.restored:
                        await self._guarded(scope, "backing_up", self._backup)
                slot.failures = 0
                if not slot.again:
                    return
            except AppError:
                wait = RETRY_S[min(slot.failures, len(RETRY_S) - 1)]
                slot.failures += 1
                if self._closing:
                    return
                logger.info(
                    "backup of %s/%s failed; retrying in %.0fs", scope.user_id, scope.name, wait
                )
                await asyncio.sleep(wait)

    async def _backup(self, scope: Scope, report: Callable[..., None]) -> None:
        bucket = await self._bucket(scope)
        work = self._staging()
        try:
            last = await self._last(scope, bucket, work)
            local = work / "local"
            indexing: Awaitable[Totals] | None = None
            if last is None:
                # The folder's first backup: every file goes, hashed for the manifest while
                # it travels. Both read one listing: the manifest names what was sent.
                sends = await asyncio.to_thread(self._list_files, scope, work)
                indexing = asyncio.to_thread(self._index, scope, local, work / "listing")
            else:
                await asyncio.to_thread(self._index, scope, local)
                change = await asyncio.to_thread(plan_backup, last, local, work)
                if change.empty:
                    report(backed_up=True)
                    return
                sends = change.sends
            report(files_total=sends.files, bytes_total=sends.bytes)
            items = ((path, scope.prefix + path) for path in _lines(work / "outgoing"))
            both = await asyncio.gather(
                bucket.upload(scope.root, items, _counter(report)),
                indexing or asyncio.sleep(0),
                return_exceptions=True,  # both end before the scratch folder goes
            )
            for outcome in both:
                if isinstance(outcome, BaseException):
                    raise outcome
            manifest = work / "manifest"
            generation = int(self._header(scope).get("generation", 0)) + 1
            header = {"format": FORMAT, "generation": generation, "created_at": _now()}
            await asyncio.to_thread(with_header, local, header, manifest)
            await asyncio.to_thread(bucket.put_file, scope.manifest_key, manifest)  # commits
            gone = (scope.prefix + path for path in _lines(work / "removed"))
            await asyncio.to_thread(bucket.delete, gone)
            self._save(scope, manifest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report(backed_up=True)

    def _list_files(self, scope: Scope, work: Path) -> Totals:
        """The folder's files and links, listed in `work/listing`, and its files in
        `work/outgoing` (for a first backup, which sends them all)."""
        totals = Totals()
        with (work / "listing").open("w") as listing, (work / "outgoing").open("w") as files:
            for relative, info in walk(scope.root, self._excludes(scope)):
                line = json.dumps(relative) + "\n"
                listing.write(line)
                if stat.S_ISREG(info.st_mode):
                    totals.add(Entry(size=info.st_size))
                    files.write(line)
        return totals

    async def _restore(self, scope: Scope, report: Callable[..., None]) -> None:
        bucket = await self._bucket(scope)
        work = self._staging()
        try:
            remote = work / "remote"
            found = await asyncio.to_thread(bucket.get_file, scope.manifest_key, remote)
            if not found and not await self._adopt(scope, bucket, remote, work):
                return  # nothing in S3 yet: a new folder
            local = work / "local"
            await asyncio.to_thread(self._index, scope, local)
            plan = await asyncio.to_thread(plan_restore, remote, local, self._agreed(scope), work)
            report(files_total=plan.gets.files, bytes_total=plan.gets.bytes)
            await self._fetch(bucket, scope, plan, work, report)
            outcome = await asyncio.to_thread(self._settle, bucket, scope, work)
            self._save(scope, remote)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if outcome.warning:
            report(warning=outcome.warning)

    async def _fetch(
        self, bucket: Bucket, scope: Scope, plan: Plan, work: Path, report: Callable[..., None]
    ) -> None:
        """Download the plan's files into `work/one`, each checked against its hash as it
        arrives. Keys come from the manifest's paths (checked when it was read), never from a
        listing, so no key can name a file outside the folder it fills."""
        (work / "one").mkdir()
        items = (
            (scope.prefix + path, _downloaded(work, path), entry.sha256)
            for do, path, entry in _read_plan(work / "plan")
            if do == "get"
        )
        await bucket.download(items, _counter(report))

    def _settle(self, bucket: Bucket, scope: Scope, work: Path) -> Outcome:
        """Put each download in place (fetching the version the manifest means where an
        unfinished backup replaced it), make the links, remove what S3 removed."""
        outcome = Outcome()
        placed = work / "placed"
        with Placer(scope.root, _owner(scope.root)) as placer, placed.open("w") as known:
            for do, path, entry in _read_plan(work / "plan"):
                try:
                    if do == "get":
                        target = _downloaded(work, path)
                        fresh = os.path.exists(target)
                        if not fresh and not os.path.exists(target + MISMATCH):
                            outcome.missing += 1  # listed in the manifest, gone from S3
                            continue
                        if not fresh:
                            os.replace(target + MISMATCH, target)
                            fresh = bucket.fetch_version(scope.prefix + path, entry.sha256, target)
                        info = os.stat(target)  # what it is once in place: a rename and
                        placer.put(path, target, entry)  # a chmod keep size, mtime, inode
                        if fresh:
                            known.write(cache_line(path, info, entry.sha256))
                        else:
                            outcome.stale += 1
                    elif do == "link":
                        placer.link(path, str(entry.link))
                    else:
                        placer.remove(path)
                except InTheWay:
                    outcome.blocked += 1
        remember(self._state(scope, "hashes"), placed)
        return outcome

    async def _adopt(self, scope: Scope, bucket: Bucket, remote: Path, work: Path) -> bool:
        """Files under the prefix with no manifest (written by the seed, or by hand): taken
        as they are, a page of the listing at a time, hashed after download."""
        pages = bucket.objects(scope.prefix)
        folder = work / "adopt"
        previous = ""
        with (work / "adopted").open("w") as out:
            while (page := await asyncio.to_thread(next, pages, None)) is not None:
                paths = [key.removeprefix(scope.prefix) for key, _ in page]
                rows = [(p, os.path.join(folder, str(n))) for n, p in enumerate(paths)]
                rows = [(path, local) for path, local in rows if valid_path(path)]
                folder.mkdir(exist_ok=True)
                items = ((scope.prefix + path, local, "") for path, local in rows)
                await bucket.download(items, lambda n, size: None)
                previous = await asyncio.to_thread(_adopt_page, rows, previous, out)
                shutil.rmtree(folder)
        if not previous:
            return False
        header = {"format": FORMAT, "generation": 0, "created_at": _now()}
        with (work / "adopted").open() as lines:
            write_snapshot(remote, header, read_rows(lines, "adopted"))
        return True

    # --- bookkeeping ----------------------------------------------------------------------

    async def _guarded(
        self,
        scope: Scope,
        phase: Phase,
        work: Callable[[Scope, Callable[..., None]], Awaitable[None]],
    ) -> None:
        progress = self._progress.setdefault(scope.user_id, {}).setdefault(
            scope.name, Progress(scope.name)
        )
        progress.phase, progress.error, progress.warning = phase, "", ""
        progress.files_done = progress.files_total = progress.bytes_done = progress.bytes_total = 0
        self._notify(scope.user_id)

        def report(**fields: Any) -> None:
            if fields.pop("backed_up", False):
                progress.backed_up_at = datetime.now(UTC).isoformat(timespec="seconds")
            for name, value in fields.items():
                setattr(progress, name, value)
            self._notify(scope.user_id)

        try:
            await work(scope, report)
        except AppError as error:
            progress.phase, progress.error = "failed", error.message
            self._notify(scope.user_id)
            raise
        except DamagedSnapshot as error:
            progress.phase, progress.error = "failed", f"The snapshot in S3 is damaged: {error}"
            self._notify(scope.user_id)
            raise StorageError(progress.error) from error
        except OSError as error:
            progress.phase, progress.error = "failed", f"Could not read or write files: {error}"
            self._notify(scope.user_id)
            raise StorageError(progress.error) from error
        progress.phase = "idle"
        self._notify(scope.user_id)

    def _notify(self, user_id: str) -> None:
        condition = self._changed.get(user_id)
        if condition is None:
            return

        async def wake() -> None:
            async with condition:
                condition.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(wake())

    async def _bucket(self, scope: Scope) -> Bucket:
        keys = await asyncio.to_thread(self.keys.for_user, scope.user_key)
        return Bucket(self.config.bucket, keys)

    async def _last(self, scope: Scope, bucket: Bucket, work: Path) -> Path | None:
        """The snapshot this machine last agreed with S3, else S3's own, else none."""
        saved = self._agreed(scope)
        if saved is not None:
            return saved
        remote = work / "last"
        return (
            remote if await asyncio.to_thread(bucket.get_file, scope.manifest_key, remote) else None
        )

    def _index(self, scope: Scope, out: Path, listing: Path | None = None) -> Totals:
        """The folder as it is now (or, given a listing, the paths it names) as a snapshot."""
        entries = (
            walk(scope.root, self._excludes(scope))
            if listing is None
            else listed(scope.root, _lines(listing))
        )
        return index(scope.root, entries, self._state(scope, "hashes"), out)

    def _excludes(self, scope: Scope) -> Excludes:
        extra = HOME_EXCLUDES if scope.name == "claude" else ()
        return Excludes(self.config.excludes + extra)

    def _staging(self) -> Path:
        """A fresh folder for a transfer, on the data disk (a download moves into place by a
        rename, which must not cross disks)."""
        staging = self.config.state_dir / "staging" / uuid.uuid4().hex
        staging.mkdir(parents=True, mode=0o700)
        return staging

    def _agreed(self, scope: Scope) -> Path | None:
        path = self._state(scope, "manifest")
        return path if path.is_file() else None

    def _header(self, scope: Scope) -> dict[str, Any]:
        path = self._agreed(scope)
        try:
            return read_header(path) if path else {}
        except (OSError, DamagedSnapshot):
            return {}

    def _save(self, scope: Scope, snapshot: Path) -> None:
        """Keep `snapshot` as what this machine and S3 now agree on."""
        path = self._state(scope, "manifest")
        path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.replace(path)

    def _state(self, scope: Scope, kind: str) -> Path:
        name = scope.name.replace("/", "--")
        return self.config.state_dir / scope.user_id / f"{name}.{kind}.jsonl"

    def _slot(self, scope: Scope) -> _Slot:
        return self._slots.setdefault((scope.user_id, scope.name), _Slot())


FORMAT = "agent-web snapshot 2"


@dataclass(frozen=True)
class Change:
    """What a backup sends (listed in `work/outgoing`) and removes (`work/removed`)."""

    sends: Totals
    removes: int
    links: int

    @property
    def empty(self) -> bool:
        return not (self.sends.files or self.removes or self.links)


def plan_backup(last: Path | None, local: Path, work: Path) -> Change:
    """Compare the folder with the last snapshot: files that are new or different go,
    keys of files that are gone are removed (after the new manifest is written)."""
    sends, removes, links = Totals(), 0, 0
    with (work / "outgoing").open("w") as outgoing, (work / "removed").open("w") as removed:
        for path, (old, new) in align(read_snapshot(last), read_snapshot(local)):
            if new is not None and not new.same_content(old):
                if new.link is None:
                    outgoing.write(json.dumps(path) + "\n")
                    sends.add(new)
                else:
                    links += 1
            elif new is None and old is not None:
                if old.link is None:
                    removed.write(json.dumps(path) + "\n")
                removes += 1
    return Change(sends, removes, links)


@dataclass(frozen=True)
class Plan:
    """What a restore fetches (`work/plan`), out of `everything` files in the snapshot."""

    gets: Totals
    everything: int


@dataclass
class Outcome:
    """What a restore could not do as the manifest says."""

    stale: int = 0  # files from a backup that did not finish, no version matching
    blocked: int = 0  # local files or folders in the way (kept)
    missing: int = 0  # in the manifest, not in S3

    @property
    def warning(self) -> str:
        said = []
        if self.stale:
            said.append(
                f"{self.stale} files are from a backup that did not finish (this bucket keeps "
                "no older versions of them)."
            )
        if self.blocked:
            said.append(
                f"{self.blocked} files were not restored: a local file or folder of the same "
                "name is in the way (kept as it is)."
            )
        if self.missing:
            said.append(
                f"{self.missing} files named in the backup are missing from S3 (not restored)."
            )
        return " ".join(said)


def plan_restore(remote: Path, local: Path, agreed: Path | None, work: Path) -> Plan:
    """Bring the folder to the remote snapshot, except where the folder holds work S3 has
    not seen (a file that differs from what this machine last agreed with S3 is kept)."""
    gets, everything = Totals(), 0
    with (work / "plan").open("w") as plan:
        streams = (read_snapshot(remote), read_snapshot(local), read_snapshot(agreed))
        for path, (there, here, agreed_entry) in align(*streams):
            if there is not None and there.link is None:
                everything += 1
            untouched = here is None or here.same_content(agreed_entry)
            if there is not None and not there.same_content(here) and untouched:
                if there.link is None:
                    gets.add(there)
                    _plan_line(plan, "get", path, there)
                elif safe_link(path, there.link):
                    _plan_line(plan, "link", path, there)
            elif there is None and here is not None and untouched:
                _plan_line(plan, "drop", path, here)
    return Plan(gets, everything)


def _plan_line(out: TextIO, do: str, path: str, entry: Entry) -> None:
    out.write(json.dumps([do, path, entry.size, entry.sha256, entry.executable, entry.link]))
    out.write("\n")


def _read_plan(path: Path) -> Iterator[tuple[str, str, Entry]]:
    with path.open() as lines:
        for line in lines:
            do, relative, size, sha256, executable, link = json.loads(line)
            yield do, relative, Entry(size, sha256, executable, link)


def _lines(path: Path) -> Iterator[str]:
    """The paths of a list written by a plan (one JSON string a line), read lazily."""
    if not path.is_file():
        return
    with path.open() as lines:
        for line in lines:
            yield json.loads(line)


def _adopt_page(rows: list[tuple[str, str]], previous: str, out: TextIO) -> str:
    """Rows for a page of adopted files (path, downloaded copy): each one's size and hash.
    S3 lists in path order; a path out of it, or deleted since it was listed, is skipped.
    Returns the last path taken (`previous` if none)."""
    found: list[Row] = []
    for path, local in rows:
        if path > previous and os.path.exists(local):
            found.append((path, Entry(size=os.stat(local).st_size, sha256=file_sha256(local))))
            previous = path
    write_rows(out, found)
    return previous


def _downloaded(work: Path, relative: str) -> str:
    return os.path.join(work, "one", hashlib.sha256(relative.encode()).hexdigest())


def _counter(report: Callable[..., None]) -> Callable[[int, int], None]:
    def progress(n: int, size: int) -> None:
        report(files_done=n, bytes_done=size)

    return progress


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _owner(root: Path) -> tuple[int, int] | None:
    """Files put into a folder belong to whoever owns it (an agent's own uid)."""
    try:
        info = root.stat()
    except FileNotFoundError:
        return None
    return (info.st_uid, info.st_gid) if info.st_uid != os.geteuid() else None
