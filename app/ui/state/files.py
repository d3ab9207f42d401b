"""The Files tab: the open session's project as a tree that opens one folder at a time, and an
editor for its text files.

Every operation goes through `ProjectFiles` (app/workspace/editing.py): reads never follow a
link, writes run in the user's jail. A save sends the version the file had when it was opened:
when the agent changed the file meanwhile the page says so, and the user reloads it or saves
anyway. Each action is a background event that reads what it needs under the state lock, works
outside it and enters it again only to show the answer, so the page never freezes.

Uploads arrive over the page's socket in pieces of 16 KB (app/ui/components/upload.py: no
other route reaches the backend on AgentCore, and no message may pass 32 KB). They gather in
memory outside the state (which is pickled on every event), one per page and at most
MAX_UPLOAD each, and are dropped when the page gives up, starts another, or goes quiet for ten
minutes; the last piece has the file written into the chosen folder, never over a file.

Downloads go the same way back (app/ui/components/download.py): the state keeps the file open
outside itself (one per page, never its bytes) and shows the page one piece of 16 KB at a time
through `download_piece`, the next only once the page acknowledged the one before, so React
never renders two pieces as one and the backend holds no more than a piece per page.

While the tab shows, a watcher refreshes the tree when a turn of the agent ends (as the Git
tab does), when another session opens, and every little while besides.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import reflex as rx

from app.errors import Conflict
from app.services import services
from app.ui.components.code_editor import language_of
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState
from app.ui.state.follow import follow_turns
from app.workspace.editing import (
    CHANGED,
    MAX_UPLOAD,
    Download,
    Entry,
    ProjectFiles,
    is_image,
)
from app.workspace.place import ProjectPlace

UNEXPECTED = "Something went wrong; try again."
CONFLICT = "The file changed since you opened it (the agent may have edited it)."
STALE_S = 600.0  # an upload or download with no new piece for this long is dropped
MAX_RECEIVING = 8 * MAX_UPLOAD  # bytes held for unfinished uploads, all pages together
DOWNLOAD_PIECE = 16 * 1024  # raw bytes a piece: 21,848 in base64, well under 32 KB a message


@dataclass
class Row:
    """One line of the tree as shown: folders open in place, their entries indented."""

    path: str = ""
    name: str = ""
    kind: str = "file"  # file | folder | link | other
    depth: int = 0
    open: bool = False  # a folder whose entries show
    target: str = ""  # where a link points (never followed)
    note: str = ""  # a file's size


@dataclass
class _Receiving:
    """An upload whose pieces are arriving: in memory (at most MAX_UPLOAD), outside the state
    so that it is never pickled with it; one per page, by its client token."""

    id: str
    user_id: str
    project_id: str
    path: str
    size: int
    data: bytearray = field(default_factory=bytearray)
    touched: float = field(default_factory=time.monotonic)


@dataclass
class _Sending:
    """A download under way: the file as opened (read a piece at a time, never held whole)
    and the piece the page is shown; one per page, by its client token."""

    id: str
    path: str
    file: Download
    index: int = 0
    touched: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return max(1, -(-self.file.size // DOWNLOAD_PIECE))

    def read(self, index: int) -> bytes:
        """Piece `index`, by its offset (a file cut short meanwhile cannot be sent whole)."""
        start = index * DOWNLOAD_PIECE
        length = min(DOWNLOAD_PIECE, self.file.size - start)
        data = os.pread(self.file.stream.fileno(), length, start)
        if len(data) != length:
            raise Conflict("The file was cut short while it was being downloaded: try again.")
        return data


# Pieces of one page reach the backend process its socket is connected to, in order.
_receiving: dict[str, _Receiving] = {}
_sending: dict[str, _Sending] = {}


def _drop_stale() -> None:
    """Forget uploads the page stopped sending and downloads it stopped acknowledging (closed
    midway), so they do not hold memory or open files."""
    now = time.monotonic()
    for token, upload in list(_receiving.items()):
        if now - upload.touched > STALE_S:
            del _receiving[token]
    for token, sending in list(_sending.items()):
        if now - sending.touched > STALE_S:
            _stop_sending(token)


def _stop_sending(token: str) -> None:
    sending = _sending.pop(token, None)
    if sending is not None:
        sending.file.close()


class FilesState(BaseState):
    showing: bool = False  # the Files tab is the one open
    loading: bool = False
    project_id: str = ""
    project_name: str = ""
    rows: list[Row] = []
    truncated: bool = False
    show_hidden: bool = False  # `.git` shows only when asked
    folder: str = ""  # where New file / New folder make things: the last folder clicked
    error: str = ""
    notice: str = ""  # a done action, in words
    # the tree's actions
    creating: str = ""  # "file" | "folder" while the name is asked for
    new_name: str = ""
    renaming: str = ""  # the path being renamed
    rename_text: str = ""
    deleting: str = ""  # the path waiting for the delete to be confirmed
    working: bool = False
    # the editor
    editor_open: bool = False
    image_path: str = ""
    image_url: str = ""  # a data URL (the socket carries it, in pieces on AgentCore)
    edit_path: str = ""
    edit_initial: str = ""  # the text the editor opened with (it keeps the edits itself)
    edit_language: str = ""
    edit_generation: int = 0  # bumped to make the editor take `edit_initial` again
    dirty: bool = False
    saving: bool = False
    conflict: bool = False
    saved_note: str = ""
    edit_error: str = ""
    _edit_text: str = ""
    _edit_version: str = ""
    _listings: dict[str, list[dict[str, Any]]] = {}  # folder path -> its entries
    _open_folders: list[str] = []
    _session_id: str = ""
    _asked: int = 0
    _watching: bool = False
    # uploads (app/ui/components/upload.py): the bytes wait in `_receiving`, never in the state
    upload_ack: dict[str, Any] = {}  # {id, received, done}: what the page may send next
    upload_note: str = ""  # "Uploading name: 45%"
    # downloads (app/ui/components/download.py): the file stays open in `_sending`
    download_piece: dict[str, Any] = {}  # {id, index, total, data, name, mime}
    download_note: str = ""  # "Downloading name: 40%"

    @rx.var
    def has_project(self) -> bool:
        return self.project_id != ""

    # --- the tab ------------------------------------------------------------------------

    @rx.event
    def tab_changed(self, tab: str) -> Any:
        self.showing = tab == "files"
        if self.showing:
            return [FilesState.refresh, FilesState.watch]
        return None

    @rx.event(background=True)
    async def refresh(self) -> None:
        await self._refresh()

    @rx.event(background=True)
    async def watch(self) -> None:
        """While the tab shows, refresh as the agent works (see app/ui/state/follow.py)."""
        await follow_turns(self, self._refresh)

    async def _refresh(self) -> None:
        """List the root and every open folder of the open session's project again (a
        folder gone meanwhile closes); the open file again if it has no unsaved edits."""
        async with self:
            if not self._user_id:
                return
            self._asked += 1
            asked, user_id = self._asked, self.user_id
            session_id = (await self.get_state(ChatState)).session_id
            known = self.project_id if session_id == self._session_id else ""
            folders = ["", *self._open_folders] if known else [""]
            self.loading = True
        listings: dict[str, list[dict[str, Any]]] = {}
        truncated, failure, place = False, UNEXPECTED, None
        try:
            if session_id:
                if not known:
                    known = (await services().engine.get(user_id, session_id)).project_id
                place = await services().engine.project_place(user_id, known)
                tool = ProjectFiles(services().engine.sandbox)
                for folder in folders:
                    try:
                        found = await tool.listing(place, folder)
                    except Shown:
                        if not folder:
                            raise
                        continue  # removed meanwhile: it closes
                    listings[folder] = [_entry(e) for e in found.entries]
                    truncated = truncated or found.truncated
            failure = ""
        except Shown as error:
            failure = ui_text(error)
        finally:
            async with self:
                if self._asked == asked and self._user_id == user_id:
                    self.loading = False
                    if failure:
                        self.error = failure
                    elif place is None:
                        self._forget()
                    else:
                        if self.project_id and known != self.project_id:
                            # Another project's tree was shown. (The first listing keeps
                            # what the user started meanwhile, such as a new folder's name.)
                            self._forget()
                        self._session_id, self.project_id = session_id, known
                        self.project_name = place.project_name
                        self._listings = listings
                        self._open_folders = [f for f in self._open_folders if f in listings]
                        self.truncated = truncated
                        self.error = ""
                        self._show_rows()
                reload = self.editor_open and not self.dirty and self.edit_path
                path = self.edit_path
        if reload and place is not None:
            await self._reload_quietly(user_id, place, path)

    async def _reload_quietly(self, user_id: str, place: ProjectPlace, path: str) -> None:
        """The open file as it is now, when the user has not edited it (the agent may have)."""
        try:
            found = await ProjectFiles(services().engine.sandbox).text(place, path)
        except Shown:
            return
        async with self:
            if self._user_id != user_id or self.edit_path != path or self.dirty:
                return
            if found.version != self._edit_version:
                self._take(found.path, found.content, found.version)

    def _forget(self) -> None:
        self._session_id = self.project_id = self.project_name = ""
        self._listings, self._open_folders, self.rows = {}, [], []
        self.folder = self.creating = self.renaming = self.deleting = ""
        self.editor_open = False

    def _show_rows(self) -> None:
        rows: list[Row] = []

        def add(folder: str, depth: int) -> None:
            for entry in self._listings.get(folder, []):
                if entry["hidden"] and not self.show_hidden:
                    continue
                is_open = entry["kind"] == "folder" and entry["path"] in self._open_folders
                rows.append(
                    Row(
                        path=entry["path"],
                        name=entry["name"],
                        kind=entry["kind"],
                        depth=depth,
                        open=is_open,
                        target=entry["target"] or "",
                        note=_size(entry["size"]) if entry["kind"] == "file" else "",
                    )
                )
                if is_open:
                    add(entry["path"], depth + 1)

        add("", 0)
        if rows != self.rows:
            self.rows = rows

    @rx.event
    def toggle_hidden(self) -> None:
        self.show_hidden = not self.show_hidden
        self._show_rows()

    # --- folders ------------------------------------------------------------------------

    @rx.event(background=True)
    async def toggle_folder(self, path: str) -> None:
        """A click on a folder: open it (listing it, one level) or close it."""
        async with self:
            if path in self._open_folders:
                self._open_folders = [f for f in self._open_folders if f != path]
                self._show_rows()
                return
            user_id, project_id = self.user_id, self.project_id
        try:
            place = await services().engine.project_place(user_id, project_id)
            found = await ProjectFiles(services().engine.sandbox).listing(place, path)
        except Shown as error:
            async with self:
                self.error = ui_text(error)
            return
        async with self:
            if self.project_id != project_id:
                return
            self._listings = {**self._listings, path: [_entry(e) for e in found.entries]}
            if path not in self._open_folders:
                self._open_folders = [*self._open_folders, path]
            self.truncated = self.truncated or found.truncated
            self.error = ""
            self._show_rows()

    @rx.event
    def click(self, path: str, kind: str) -> Any:
        """A click on a row: a folder opens or closes, a file opens in the editor; a link
        is never entered. The chosen folder changes here, at once, so an upload or a new
        file started right after the click goes where the user clicked."""
        if kind == "folder":
            self.folder = path
            return FilesState.toggle_folder(path)  # type: ignore[misc]
        if kind == "file":
            self.folder = path.rpartition("/")[0]
            return FilesState.open_file(path)  # type: ignore[misc]
        return None

    @rx.event
    def choose_root(self) -> None:
        self.folder = ""

    # --- new file / folder, rename, delete ------------------------------------------------

    @rx.event
    def start_create(self, kind: str) -> None:
        self.creating, self.new_name, self.notice = kind, "", ""

    @rx.event
    def cancel_create(self) -> None:
        self.creating = ""

    @rx.event
    def set_new_name(self, value: str) -> None:
        self.new_name = value

    @rx.event
    def create(self, _form: dict[str, Any]) -> Any:
        """Runs after the name's keystrokes (app/ui/state/__init__.py)."""
        return FilesState.make_entry

    @rx.event(background=True)
    async def make_entry(self) -> None:
        """A new empty file or folder, in the chosen folder."""
        async with self:
            name, kind = self.new_name.strip().strip("/"), self.creating
            if not name or not kind or self.working or not self.project_id:
                return
            path = f"{self.folder}/{name}" if self.folder else name
            user_id, project_id = self.user_id, self.project_id
            self.working, self.notice = True, ""
        failure = UNEXPECTED
        try:
            place = await services().engine.project_place(user_id, project_id)
            tool = ProjectFiles(services().engine.sandbox)
            if kind == "folder":
                path = await tool.make_folder(place, path)
            else:
                path = (await tool.save(place, path, "", None, force=False)).path
            await services().engine.project_changed(place)
            failure = ""
        except Shown as error:
            failure = ui_text(error)
        finally:
            async with self:
                self.working = False
                if failure:
                    self.error = failure
                else:
                    self.creating, self.new_name, self.error = "", "", ""
                    self.notice = f"Made {path}."
                    parent = path.rpartition("/")[0]
                    if parent and parent not in self._open_folders:
                        self._open_folders = [*self._open_folders, parent]
        if not failure:
            await self._refresh()

    @rx.event
    def start_rename(self, path: str) -> None:
        self.renaming, self.rename_text, self.notice = path, path, ""

    @rx.event
    def cancel_rename(self) -> None:
        self.renaming = ""

    @rx.event
    def set_rename_text(self, value: str) -> None:
        self.rename_text = value

    @rx.event
    def finish_rename(self, _form: dict[str, Any]) -> Any:
        """Runs after the new name's keystrokes (app/ui/state/__init__.py)."""
        return FilesState.rename

    @rx.event(background=True)
    async def rename(self) -> None:
        """Rename (or move: the new path may name another folder) the file or folder."""
        async with self:
            path, to = self.renaming, self.rename_text.strip().strip("/")
            if not path or self.working:
                return
            if not to or to == path:
                self.renaming = ""
                return
            user_id, project_id = self.user_id, self.project_id
            self.working, self.notice = True, ""
        failure = UNEXPECTED
        try:
            place = await services().engine.project_place(user_id, project_id)
            to = await ProjectFiles(services().engine.sandbox).rename(place, path, to)
            await services().engine.project_changed(place)
            failure = ""
        except Shown as error:
            failure = ui_text(error)
        finally:
            async with self:
                self.working = False
                if failure:
                    self.error = failure
                else:
                    self.renaming, self.error, self.notice = "", "", f"Renamed {path} to {to}."
                    self._open_folders = [_moved(f, path, to) for f in self._open_folders]
                    self.folder = _moved(self.folder, path, to)
                    if self.edit_path and _moved(self.edit_path, path, to) != self.edit_path:
                        self.edit_path = _moved(self.edit_path, path, to)
                        self.edit_language = language_of(self.edit_path)
        if not failure:
            await self._refresh()

    @rx.event
    def ask_delete(self, path: str) -> None:
        self.deleting, self.notice = path, ""

    @rx.event
    def cancel_delete(self) -> None:
        self.deleting = ""

    @rx.event(background=True)
    async def confirm_delete(self) -> None:
        async with self:
            path = self.deleting
            if not path or self.working:
                return
            user_id, project_id = self.user_id, self.project_id
            self.working, self.deleting = True, ""
        failure = UNEXPECTED
        try:
            place = await services().engine.project_place(user_id, project_id)
            await ProjectFiles(services().engine.sandbox).delete(place, path)
            await services().engine.project_changed(place)
            failure = ""
        except Shown as error:
            failure = ui_text(error)
        finally:
            async with self:
                self.working = False
                if failure:
                    self.error = failure
                else:
                    self.error, self.notice = "", f"Deleted {path}."
                    self._open_folders = [f for f in self._open_folders if not _under(f, path)]
                    if _under(self.folder, path):
                        self.folder = ""
                    if self.edit_path and _under(self.edit_path, path):
                        self.editor_open = False
        if not failure:
            await self._refresh()

    @rx.event
    def dismiss(self) -> None:
        self.error = self.notice = ""

    # --- uploads ------------------------------------------------------------------------

    @rx.event
    def upload_chunk(self, piece: dict[str, Any]) -> Any:
        """One piece of a file the page sends (app/ui/components/upload.py); the first starts
        the upload, the last has it written."""
        token = self.router.session.client_token
        try:
            upload_id, offset = str(piece["id"]), int(piece["offset"])
            data = base64.b64decode(str(piece["data"]), validate=True)
        except (KeyError, TypeError, ValueError):
            return None  # not something the page sends
        if offset == 0:
            self._start_upload(token, upload_id, str(piece.get("name", "")), piece.get("size"))
        upload = _receiving.get(token)
        if upload is None or upload.id != upload_id:
            return None  # refused, dropped or replaced: the page was told
        if offset != len(upload.data) or len(upload.data) + len(data) > upload.size:
            del _receiving[token]
            self._upload_ended(upload_id, f"{upload.path} was not uploaded: try again.")
            return None
        upload.data += data
        upload.touched = time.monotonic()
        self.upload_ack = {"id": upload_id, "received": len(upload.data), "done": False}
        percent = len(upload.data) * 100 // upload.size if upload.size else 100
        self.upload_note = f"Uploading {upload.path}: {percent}%"
        if len(upload.data) == upload.size:
            return FilesState.finish_upload(upload_id)  # type: ignore[misc]
        return None

    def _start_upload(self, token: str, upload_id: str, name: str, size: Any) -> None:
        """Make room for a new upload into the chosen folder, or say why it cannot be."""
        _receiving.pop(token, None)  # one upload per page: a new one replaces the old
        _drop_stale()
        path = f"{self.folder}/{name}" if self.folder else name
        self.error = self.notice = ""
        failure = ""
        if not self.project_id or not self._user_id:
            failure = "Open a session first: files go to its project."
        elif not isinstance(size, int) or size < 0 or size > MAX_UPLOAD:
            failure = f"{name} is too large: uploads are at most {MAX_UPLOAD // 2**20} MB."
        elif not name or "/" in name or name in (".", ".."):
            failure = f"{name!r} cannot be a file's name."
        elif any(e["name"] == name for e in self._listings.get(self.folder, [])):
            failure = f"{path} already exists: rename or delete it first (uploads never replace)."
        elif sum(u.size for u in _receiving.values()) + size > MAX_RECEIVING:
            failure = "The server is receiving many uploads just now: try again in a minute."
        if failure:
            self._upload_ended(upload_id, failure)
            return
        _receiving[token] = _Receiving(upload_id, self._user_id, self.project_id, path, size)
        self.upload_note = f"Uploading {path}: 0%"
        asyncio.get_running_loop().call_later(STALE_S + 1, _drop_stale)

    def _upload_ended(self, upload_id: str, failure: str) -> None:
        """Tell the page the upload is over (it sends the next file), and why if it failed."""
        self.upload_ack = {"id": upload_id, "received": 0, "done": True}
        self.upload_note, self.error = "", failure

    @rx.event(background=True)
    async def finish_upload(self, upload_id: str) -> None:
        """Write the received file through the jail (never over an existing one)."""
        async with self:
            upload = _receiving.get(self.router.session.client_token)
            if upload is None or upload.id != upload_id or len(upload.data) != upload.size:
                return
            del _receiving[self.router.session.client_token]
        failure, path, size = UNEXPECTED, upload.path, 0
        try:
            place = await services().engine.project_place(upload.user_id, upload.project_id)
            size = (
                await ProjectFiles(services().engine.sandbox).upload(
                    place, path, bytes(upload.data), overwrite=False
                )
            ).size
            await services().engine.project_changed(place)
            failure = ""
        except Shown as error:
            failure = f"{path} was not uploaded: {ui_text(error)}"
        finally:
            async with self:
                self._upload_ended(upload_id, failure)
                if not failure:
                    self.notice = f"Uploaded {path} ({_size(size)})."
                    parent = path.rpartition("/")[0]
                    if parent and parent not in self._open_folders:
                        self._open_folders = [*self._open_folders, parent]
        if not failure:
            await self._refresh()

    @rx.event
    def upload_refused(self, problem: dict[str, Any]) -> None:
        """The page could not send a file: too large (checked before reading it), unreadable,
        or the backend stopped answering."""
        name, size = str(problem.get("name", "")), problem.get("size")
        reason = problem.get("reason")
        upload = _receiving.get(self.router.session.client_token)
        if upload is not None and upload.id == problem.get("id"):
            del _receiving[self.router.session.client_token]
        self.upload_note = self.notice = ""
        if reason == "too_large":
            self.error = (
                f"{name} is too large ({_size(size if isinstance(size, int) else None)}): "
                f"uploads are at most {MAX_UPLOAD // 2**20} MB."
            )
        elif reason == "unreadable":
            self.error = f"{name} could not be read by the browser: nothing was uploaded."
        else:
            self.error = f"{name} was not uploaded: the connection stalled; try again."

    # --- downloads ----------------------------------------------------------------------

    @rx.event(background=True)
    async def download(self, path: str) -> None:
        """Send a file of the project to the page, its first piece now (a new download
        replaces the page's unfinished one)."""
        async with self:
            if not self.project_id or not self._user_id:
                return
            user_id, project_id = self._user_id, self.project_id
            token = self.router.session.client_token
            self._end_download(token, "")
            self.error = self.notice = ""
            self.download_note = f"Downloading {path}: 0%"
        failure, sending, first = UNEXPECTED, None, b""
        try:
            place = await services().engine.project_place(user_id, project_id)
            found = await ProjectFiles(services().engine.sandbox).download(place, path)
            sending = _Sending(secrets.token_hex(8), path, found)
            first = await asyncio.to_thread(sending.read, 0)
            failure = ""
        except Shown as error:
            failure = f"{path} was not downloaded: {ui_text(error)}"
        finally:
            async with self:
                if sending is not None and not failure:
                    _stop_sending(token)
                    _sending[token] = sending
                    self._show_piece(sending, first)
                    asyncio.get_running_loop().call_later(STALE_S + 1, _drop_stale)
                else:
                    if sending is not None:
                        sending.file.close()
                    self._end_download(token, failure)

    @rx.event
    async def download_ack(self, ack: dict[str, Any]) -> None:
        """The page holds piece `index`: show it the next one, or end after the last."""
        token = self.router.session.client_token
        sending = _sending.get(token)
        if sending is None or sending.id != ack.get("id"):
            if self._shows_download(ack):  # forgotten meanwhile (stale, or a restart)
                self._download_lost(token)
            return
        if ack.get("index") != sending.index:
            return  # an acknowledgement repeated (the page showed the same piece again)
        if sending.index + 1 == sending.total:
            self._end_download(token, "")
            self.notice = f"Downloaded {sending.path} ({_size(sending.file.size)})."
            return
        try:
            data = await asyncio.to_thread(sending.read, sending.index + 1)
        except Shown as error:
            self._end_download(token, f"{sending.path} was not downloaded: {ui_text(error)}")
            return
        sending.index += 1
        sending.touched = time.monotonic()
        self._show_piece(sending, data)

    @rx.event
    def download_failed(self, problem: dict[str, Any]) -> None:
        """The page lost the download (reloaded midway) or heard nothing for too long."""
        if self._shows_download(problem):
            self._download_lost(self.router.session.client_token)

    def _shows_download(self, said: dict[str, Any]) -> bool:
        return bool(said.get("id")) and said.get("id") == self.download_piece.get("id")

    def _download_lost(self, token: str) -> None:
        name = self.download_piece.get("name")
        self._end_download(
            token, f"{name} was not downloaded: the connection was interrupted; try again."
        )

    def _show_piece(self, sending: _Sending, data: bytes) -> None:
        """One piece for the page: a socket message of about 22 KB."""
        found = sending.file
        self.download_piece = {
            "id": sending.id,
            "index": sending.index,
            "total": sending.total,
            "data": base64.b64encode(data).decode(),
            "name": found.name,
            # a blob: URL has the page's origin: never one the browser could render as a page
            "mime": "application/octet-stream" if found.attachment else found.media_type,
        }
        percent = sending.index * DOWNLOAD_PIECE * 100 // found.size if found.size else 0
        self.download_note = f"Downloading {sending.path}: {percent}%"

    def _end_download(self, token: str, failure: str) -> None:
        _stop_sending(token)
        self.download_piece, self.download_note = {}, ""
        if failure:
            self.error = failure

    # --- the editor ---------------------------------------------------------------------

    @rx.event(background=True)
    async def open_file(self, path: str) -> None:
        """A click on a file: its text in the editor, or why it cannot be edited."""
        async with self:
            user_id, project_id = self.user_id, self.project_id
            self.notice = ""
        if is_image(path):
            await self._show_image(user_id, project_id, path)
            return
        try:
            place = await services().engine.project_place(user_id, project_id)
            found = await ProjectFiles(services().engine.sandbox).text(place, path)
        except Shown as error:
            async with self:
                self.error = f"{path}: {ui_text(error)}"
            return
        async with self:
            if self.project_id != project_id:
                return
            self.error = ""
            self._take(found.path, found.content, found.version)
            self.editor_open = True

    async def _show_image(self, user_id: str, project_id: str, path: str) -> None:
        try:
            place = await services().engine.project_place(user_id, project_id)
            url = await ProjectFiles(services().engine.sandbox).image(place, path)
        except Shown as error:
            async with self:
                self.error = f"{path}: {ui_text(error)}"
            return
        async with self:
            if self.project_id == project_id:
                self.error, self.image_path, self.image_url = "", path, url

    @rx.event
    def close_image(self) -> None:
        self.image_path = self.image_url = ""

    def _take(self, path: str, content: str, version: str) -> None:
        """Show the file's text as it is on disk now (the editor starts over from it)."""
        self.edit_path, self.edit_language = path, language_of(path)
        self.edit_initial, self._edit_text, self._edit_version = content, content, version
        self.edit_generation += 1
        self.dirty = self.conflict = False
        self.saved_note = self.edit_error = ""

    @rx.event
    def edited(self, text: str) -> None:
        """Each change in the editor (the text stays in the backend: nothing is echoed)."""
        self._edit_text = text
        if not self.dirty:
            self.dirty, self.saved_note = True, ""

    @rx.event
    def set_editor_open(self, value: bool) -> None:
        self.editor_open = value

    @rx.event
    def close_editor(self) -> None:
        self.editor_open = False

    @rx.event
    def save(self) -> Any:
        """Runs after the edits (app/ui/state/__init__.py)."""
        return FilesState.write_edits(False)  # type: ignore[misc]

    @rx.event
    def save_anyway(self) -> Any:
        return FilesState.write_edits(True)  # type: ignore[misc]

    @rx.event(background=True)
    async def write_edits(self, force: bool) -> None:
        """Write the editor's text over the version it opened (or anyway, when forced)."""
        async with self:
            if self.saving or not self.edit_path:
                return
            user_id, project_id, path = self.user_id, self.project_id, self.edit_path
            text, version = self._edit_text, self._edit_version
            self.saving, self.saved_note, self.edit_error = True, "", ""
        saved, failure, conflict = None, UNEXPECTED, False
        try:
            place = await services().engine.project_place(user_id, project_id)
            saved = await ProjectFiles(services().engine.sandbox).save(
                place, path, text, version or None, force=force
            )
            await services().engine.project_changed(place)
            failure = ""
        except Conflict as error:
            conflict = error.message == CHANGED or "deleted since you opened" in error.message
            failure = ui_text(error)
        except Shown as error:
            failure = ui_text(error)
        finally:
            async with self:
                self.saving = False
                if saved is not None and self.edit_path == path:
                    self._edit_version = saved.version
                    self.dirty = self._edit_text != text
                    self.conflict = False
                    self.saved_note = f"Saved ({saved.size:,} bytes)."
                elif conflict:
                    self.conflict = True
                elif failure:
                    self.edit_error = failure
        if saved is not None:
            await self._refresh()

    @rx.event(background=True)
    async def reload(self) -> None:
        """The file as it is on disk now; the unsaved edits are dropped."""
        async with self:
            user_id, project_id, path = self.user_id, self.project_id, self.edit_path
            if not path:
                return
        try:
            place = await services().engine.project_place(user_id, project_id)
            found = await ProjectFiles(services().engine.sandbox).text(place, path)
        except Shown as error:
            async with self:
                self.edit_error = ui_text(error)
            return
        async with self:
            if self.edit_path == path:
                self._take(found.path, found.content, found.version)


def _entry(entry: Entry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "name": entry.name,
        "kind": entry.kind,
        "size": entry.size,
        "hidden": entry.hidden,
        "target": entry.target,
    }


def _size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _moved(path: str, old: str, new: str) -> str:
    """`path` after `old` was renamed to `new`."""
    return new + path[len(old) :] if _under(path, old) else path
