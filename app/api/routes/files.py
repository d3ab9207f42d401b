"""A project's files for the page's tree and editor (on the seed's paths): one folder at a
time, download, text with a version for the editor, save (only over the version the user
opened, unless forced), upload (JSON with base64: it works through `/invocations`), new
folders, rename and delete. Reads never follow a link; every write runs in the user's jail
(see app/workspace/editing.py)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool

from app.agent.schemas import Ident
from app.api.deps import CurrentUser, Engine
from app.errors import InvalidInput
from app.workspace.editing import (
    MAX_PATH_CHARS,
    MAX_UPLOAD,
    Kind,
    ProjectFiles,
    TooLarge,
)

router = APIRouter(prefix="/files", tags=["files"])

ProjectId = Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
PathQuery = Annotated[
    str, Query(min_length=1, max_length=MAX_PATH_CHARS, description="relative to the project")
]
FilePath = Annotated[
    str, Field(min_length=1, max_length=MAX_PATH_CHARS, description="relative to the project")
]
Version = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the bytes")]
_MAX_BASE64 = (MAX_UPLOAD + 2) // 3 * 4


class EntryView(BaseModel):
    name: str
    path: str
    kind: Kind
    size: int | None = Field(None, description="bytes, for files")
    mtime: float | None = Field(None, description="unix seconds")
    hidden: bool = Field(False, description="`.git`: listed, folded away by the page")
    target: str | None = Field(None, description="where a link points (never followed)")


class FolderView(BaseModel):
    path: str
    entries: list[EntryView]
    truncated: bool = Field(False, description="the folder holds more than 2,000 entries")


class FileText(BaseModel):
    path: str
    content: str
    version: str
    size: int
    mtime: float


class SaveRequest(BaseModel):
    project_id: Ident
    path: FilePath
    content: str = Field(..., description="UTF-8 text, at most 2 MB")
    version: Version | None = Field(
        ..., description="the version opened (null: a new file, refused if one exists)"
    )
    force: bool = Field(False, description="save even if the file changed meanwhile")


class UploadRequest(BaseModel):
    project_id: Ident
    path: FilePath
    content_base64: str = Field(..., description="the bytes in base64, at most 20 MB decoded")
    overwrite: bool = Field(False, description="replace a file of that name")


class PathRequest(BaseModel):
    project_id: Ident
    path: FilePath


class RenameRequest(BaseModel):
    project_id: Ident
    path: FilePath
    to: FilePath


class Saved(BaseModel):
    path: str
    version: str
    size: int


class PathView(BaseModel):
    path: str


@router.get("")
async def list_folder(
    project_id: ProjectId,
    user: CurrentUser,
    engine: Engine,
    path: Annotated[str, Query(max_length=MAX_PATH_CHARS)] = "",
) -> FolderView:
    """One folder's entries (the project's root by default), folders first; links are listed
    as links and never entered."""
    place = await engine.project_place(user, project_id)
    found = await ProjectFiles(engine.sandbox).listing(place, path)
    return FolderView(
        path=found.path,
        entries=[EntryView(**asdict(e)) for e in found.entries],
        truncated=found.truncated,
    )


@router.get(
    "/raw",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"}},
)
async def raw(
    project_id: ProjectId, path: PathQuery, user: CurrentUser, engine: Engine
) -> StreamingResponse:
    """The file's bytes (at most 50 MB); an attachment unless it is text."""
    place = await engine.project_place(user, project_id)
    found = await ProjectFiles(engine.sandbox).download(place, path)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in found.name)
    disposition = "attachment" if found.attachment else "inline"
    return StreamingResponse(
        iterate_in_threadpool(found.chunks()),
        media_type=found.media_type,
        headers={
            "Content-Disposition": (
                f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(found.name)}"
            ),
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get("/content")
async def content(
    project_id: ProjectId, path: PathQuery, user: CurrentUser, engine: Engine
) -> FileText:
    """A text file for the editor (UTF-8, at most 2 MB), with its version for saving."""
    place = await engine.project_place(user, project_id)
    found = await ProjectFiles(engine.sandbox).text(place, path)
    return FileText(**asdict(found))


@router.post("/save")
async def save(body: SaveRequest, user: CurrentUser, engine: Engine) -> Saved:
    """Write the text if the file still has `version` (409 if it changed: reload, or save
    with `force`); `version: null` creates a new file. The old file stays whole if it fails."""
    place = await engine.project_place(user, body.project_id)
    saved = await ProjectFiles(engine.sandbox).save(
        place, body.path, body.content, body.version, force=body.force
    )
    await engine.project_changed(place)
    return Saved(**asdict(saved))


@router.post("/upload", status_code=201)
async def upload(body: UploadRequest, user: CurrentUser, engine: Engine) -> Saved:
    """A file's bytes, in base64 (at most 20 MB); 409 if it exists, unless `overwrite`."""
    if len(body.content_base64) > _MAX_BASE64 + 4:
        raise TooLarge(f"Uploads are at most {MAX_UPLOAD // 2**20} MB.")
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content_base64 is not valid base64.") from None
    place = await engine.project_place(user, body.project_id)
    saved = await ProjectFiles(engine.sandbox).upload(
        place, body.path, data, overwrite=body.overwrite
    )
    await engine.project_changed(place)
    return Saved(**asdict(saved))


@router.post("/folder", status_code=201)
async def make_folder(body: PathRequest, user: CurrentUser, engine: Engine) -> PathView:
    """A new folder (and the folders on its way)."""
    place = await engine.project_place(user, body.project_id)
    made = await ProjectFiles(engine.sandbox).make_folder(place, body.path)
    await engine.project_changed(place)
    return PathView(path=made)


@router.post("/rename")
async def rename(body: RenameRequest, user: CurrentUser, engine: Engine) -> PathView:
    """Rename or move a file, folder or link (a link itself, not what it points to)."""
    place = await engine.project_place(user, body.project_id)
    moved = await ProjectFiles(engine.sandbox).rename(place, body.path, body.to)
    await engine.project_changed(place)
    return PathView(path=moved)


@router.post("/delete", status_code=204)
async def delete(body: PathRequest, user: CurrentUser, engine: Engine) -> None:
    """Delete a file, a link (not what it points to) or a folder with everything in it."""
    place = await engine.project_place(user, body.project_id)
    await ProjectFiles(engine.sandbox).delete(place, body.path)
    await engine.project_changed(place)
