"""The Files tab: the project's tree (refreshed when the agent's turn ends, one folder opened at
a time, links shown and never entered, `.git` folded away), a file opened in the editor and
saved; a save over a file the agent changed meanwhile is refused with a warning, then saved
anyway; new files and folders, rename and delete (confirmed); a binary file says so; files
uploaded over the page's socket in pieces of under 32 KB, a file over the limit refused; files
downloaded the same way back, a file gone or over the limit refused with a message."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, WebSocket, expect

from app.workspace.editing import MAX_DOWNLOAD, MAX_UPLOAD
from tests.browser.conftest import ARTIFACTS, RunningApp
from tests.browser.test_chat import project_files, send, sign_up

pytestmark = pytest.mark.browser
PNG_1X1 = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)
AGENT_S = 20_000  # a turn of the agent (the scripted model), and the tab noticing its end
SOCKET_LIMIT = 32 * 1024  # AgentCore closes the socket on a bigger message


def row(page: Page, name: str, kind: str = "file-item"):  # type: ignore[no-untyped-def]
    return page.locator(".file-row").filter(has=page.locator(f".{kind}", has_text=name))


def type_in_editor(page: Page, text: str) -> None:
    page.locator("#file-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    expect(page.locator("#file-dirty")).to_be_visible()  # the page has the edit


def test_tree_editor_conflict_and_file_operations(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "files@example.com")
    page.locator("#new-session").click()
    send(page, "write notes.txt")
    page.locator("#files-tab").click()
    expect(page.locator(".approval .allow-once")).to_be_visible()
    page.locator(".approval .allow-once").click()
    # The tree follows the agent: the file shows when the turn ends, unasked.
    expect(row(page, "notes.txt")).to_be_visible(timeout=AGENT_S)
    [notes] = project_files(reflex_app, "notes.txt")
    folder: Path = notes.parent

    # Open, edit, save.
    row(page, "notes.txt").locator(".file-item").click()
    editor = page.locator("#file-editor")
    expect(editor).to_contain_text("scripted content")
    expect(page.locator("#file-dirty")).to_have_count(0)
    type_in_editor(page, "edited on the page")
    page.locator("#save-file").click()
    expect(page.locator("#file-dirty")).to_have_count(0)
    assert notes.read_text() == "edited on the page"

    # The agent changes the file meanwhile: the save is refused with a warning.
    type_in_editor(page, "the page's version")
    notes.write_text("the agent's version\n")
    page.locator("#save-file").click()
    conflict = page.locator("#file-conflict")
    expect(conflict).to_contain_text(
        "The file changed since you opened it (the agent may have edited it)"
    )
    expect(conflict.get_by_role("button", name="Reload")).to_be_visible()
    assert notes.read_text() == "the agent's version\n"
    page.screenshot(path=str(ARTIFACTS / "files-conflict.png"))
    conflict.get_by_role("button", name="Save anyway").click()
    expect(page.locator("#file-conflict")).to_have_count(0)
    expect(page.locator("#file-dirty")).to_have_count(0)
    assert notes.read_text() == "the page's version"
    # Reload takes what is on disk. (Changed on disk after the edit: a clean editor follows
    # the disk by itself, every little while.)
    type_in_editor(page, "dropped")
    notes.write_text("changed again\n")
    page.locator("#save-file").click()
    page.locator("#file-reload").click()
    expect(editor).to_contain_text("changed again")
    expect(page.locator("#file-dirty")).to_have_count(0)
    page.locator("#close-file").click()

    # Python is highlighted (tokens in spans); a binary file says so instead of opening.
    (folder / "hello.py").write_text("def greet():\n    return 'hi'\n")
    (folder / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    os.symlink("/etc", folder / "etc-link")
    (folder / ".git").mkdir()
    page.locator("#files-refresh").click()
    row(page, "hello.py").locator(".file-item").click()
    expect(editor.locator(".cm-line span").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "files-editor.png"))
    page.locator("#close-file").click()
    row(page, "blob.bin").locator(".file-item").click()
    expect(page.locator("#files-error")).to_contain_text("binary")
    expect(page.get_by_role("dialog")).to_have_count(0)
    # An image shows as itself, carried over the socket (nothing the runtime would refuse);
    # a link dressed as an image is never followed.
    pixel = base64.b64decode(PNG_1X1)
    (folder / "pixel.png").write_bytes(pixel)
    os.symlink("/etc/passwd", folder / "passwd.png")
    page.locator("#files-refresh").click()
    row(page, "pixel.png").locator(".file-item").click()
    image = page.locator("#file-image")
    expect(image).to_be_visible()
    assert image.get_attribute("src") == f"data:image/png;base64,{PNG_1X1}"
    page.locator("#close-image").click()
    expect(image).to_have_count(0)
    row(page, "passwd.png", "link-item").locator(".link-item").click()
    expect(page.locator("#file-image")).to_have_count(0)
    (folder / "pixel.png").unlink()
    (folder / "passwd.png").unlink()
    page.locator("#files-refresh").click()

    link = row(page, "etc-link", "link-item")
    expect(link).to_contain_text("→ /etc")
    link.locator(".link-item").click()  # never entered
    expect(page.locator(".file-row")).to_have_count(4)  # .git folded away
    page.locator("#show-hidden").click()
    expect(row(page, ".git", "folder-item")).to_be_visible()
    page.locator("#show-hidden").click()
    expect(row(page, ".git", "folder-item")).to_have_count(0)

    # A new folder, a file made in it; the folder opens one level at a time.
    page.locator("#new-folder").click()
    page.locator("#new-name").fill("docs")
    page.locator("#create-entry").click()
    expect(row(page, "docs", "folder-item")).to_be_visible()
    assert (folder / "docs").is_dir()
    row(page, "docs", "folder-item").locator(".folder-item").click()  # chosen, opened (empty)
    page.locator("#new-file").click()
    expect(page.locator("#create-entry")).to_be_visible()
    page.locator("#new-name").fill("draft.md")
    page.locator("#create-entry").click()
    expect(row(page, "draft.md")).to_be_visible()
    assert (folder / "docs" / "draft.md").read_text() == ""
    expect(row(page, "draft.md")).to_have_attribute("data-path", "docs/draft.md")
    row(page, "docs", "folder-item").locator(".folder-item").click()  # closes
    expect(row(page, "draft.md")).to_have_count(0)
    row(page, "docs", "folder-item").locator(".folder-item").click()
    expect(row(page, "draft.md")).to_be_visible()

    # Rename, then delete with a confirmation.
    row(page, "draft.md").locator(".file-menu").click()
    page.get_by_role("menuitem", name="Rename").click()
    page.locator(".rename-file-input input").fill("docs/plan.md")
    page.locator(".rename-file-input input").press("Enter")
    expect(row(page, "plan.md")).to_be_visible()
    assert (folder / "docs" / "plan.md").exists() and not (folder / "docs" / "draft.md").exists()
    row(page, "plan.md").locator(".file-menu").click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("docs/plan.md")
    page.locator("#confirm-file-delete").click()
    expect(row(page, "plan.md")).to_have_count(0)
    assert not (folder / "docs" / "plan.md").exists()
    expect(page.locator("#files-notice")).to_have_text("Deleted docs/plan.md.")
    assert (folder / "notes.txt").read_text() == "changed again\n"


def test_upload_sends_small_pieces_into_the_chosen_folder(
    page: Page, reflex_app: RunningApp, tmp_path: Path
) -> None:
    sent: list[int] = []  # the size of every socket message the page sends

    def watch(socket: WebSocket) -> None:
        socket.on(
            "framesent",
            lambda frame: sent.append(len(frame.encode() if isinstance(frame, str) else frame)),
        )

    page.on("websocket", watch)
    sign_up(page, "uploads@example.com")
    page.locator("#new-session").click()
    send(page, "echo hello")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello")
    page.locator("#files-tab").click()
    page.locator("#new-folder").click()
    page.locator("#new-name").fill("incoming")
    page.locator("#create-entry").click()
    row(page, "incoming", "folder-item").locator(".folder-item").click()  # chosen

    binary, text = os.urandom(100_000), "# Notes\n\nuploaded from the page, é ✓\n".encode()
    before = len(sent)
    page.locator("#upload-input").set_input_files(
        [
            {"name": "blob-upload.bin", "mimeType": "application/octet-stream", "buffer": binary},
            {"name": "notes-upload.md", "mimeType": "text/markdown", "buffer": text},
        ]
    )
    expect(page.locator("#files-notice")).to_have_text(
        f"Uploaded incoming/notes-upload.md ({len(text)} B).", timeout=AGENT_S
    )
    expect(row(page, "blob-upload.bin")).to_have_attribute("data-path", "incoming/blob-upload.bin")
    expect(row(page, "notes-upload.md")).to_have_attribute("data-path", "incoming/notes-upload.md")
    [uploaded] = project_files(reflex_app, "blob-upload.bin")
    assert uploaded.read_bytes() == binary
    assert (uploaded.parent / "notes-upload.md").read_bytes() == text
    assert uploaded.parent.name == "incoming"
    assert len(sent) - before >= 7  # the binary went in several pieces
    assert max(sent) <= SOCKET_LIMIT, f"a socket message of {max(sent)} bytes"

    # A file over the limit is refused before anything is sent; an existing one is not replaced.
    huge = tmp_path / "huge-upload.bin"
    with huge.open("wb") as out:
        out.truncate(MAX_UPLOAD + 1)
    before = len(sent)
    page.locator("#upload-input").set_input_files(str(huge))
    expect(page.locator("#files-error")).to_contain_text(
        f"huge-upload.bin is too large (20.0 MB): uploads are at most {MAX_UPLOAD // 2**20} MB."
    )
    page.screenshot(path=str(ARTIFACTS / "files-upload-too-large.png"))
    assert all(size < 1024 for size in sent[before:])  # no piece of it was sent
    assert project_files(reflex_app, "huge-upload.bin") == []
    page.locator("#upload-input").set_input_files(
        [{"name": "notes-upload.md", "mimeType": "text/plain", "buffer": b"other"}]
    )
    expect(page.locator("#files-error")).to_contain_text("incoming/notes-upload.md already exists")
    assert (uploaded.parent / "notes-upload.md").read_bytes() == text
    assert max(sent) <= SOCKET_LIMIT, f"a socket message of {max(sent)} bytes"


def test_download_receives_small_pieces_and_saves_the_file(
    page: Page, reflex_app: RunningApp
) -> None:
    received: list[int] = []  # the size of every socket message the page receives

    def watch(socket: WebSocket) -> None:
        socket.on(
            "framereceived",
            lambda frame: received.append(len(frame.encode() if isinstance(frame, str) else frame)),
        )

    page.on("websocket", watch)
    sign_up(page, "downloads@example.com")
    page.locator("#new-session").click()
    send(page, "echo hello")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello")
    page.locator("#files-tab").click()
    page.locator("#new-folder").click()
    page.locator("#new-name").fill("outgoing")
    page.locator("#create-entry").click()
    expect(row(page, "outgoing", "folder-item")).to_be_visible()
    [folder] = project_files(reflex_app, "outgoing")
    binary = os.urandom(150_000)
    (folder / "blob-download.bin").write_bytes(binary)
    (folder / "notes-download.md").write_text("# Notes\n\nfrom the editor, é ✓\n")
    (folder / "gone-download.bin").write_bytes(b"soon deleted")
    with (folder / "huge-download.bin").open("wb") as out:
        out.truncate(MAX_DOWNLOAD + 10 * 2**20)  # sparse: nothing is written
    row(page, "outgoing", "folder-item").locator(".folder-item").click()

    # The file arrives in pieces, each socket message under AgentCore's limit, and is saved;
    # the tab shows how far it is.
    page.evaluate(
        """() => {
            window.downloadNotes = [];
            new MutationObserver(() => {
                const note = document.querySelector("#download-progress");
                if (note) window.downloadNotes.push(note.textContent);
            }).observe(document.body, { subtree: true, childList: true, characterData: true });
        }"""
    )
    before = len(received)
    row(page, "blob-download.bin").locator(".file-menu").click()
    with page.expect_download() as arrival:
        page.locator(".file-download").click()
    download = arrival.value
    assert download.suggested_filename == "blob-download.bin"
    assert Path(download.path()).read_bytes() == binary
    expect(page.locator("#files-notice")).to_have_text(
        "Downloaded outgoing/blob-download.bin (146.5 KB)."
    )
    expect(page.locator("#download-progress")).to_have_count(0)
    notes = page.evaluate("window.downloadNotes")
    assert "Downloading outgoing/blob-download.bin: 0%" in notes
    assert "Downloading outgoing/blob-download.bin: 43%" in notes  # 4 of 10 pieces held
    pieces = [size for size in received[before:] if size > 16 * 1024]
    assert len(pieces) >= 9, pieces  # 150 KB in pieces of 16 KB
    assert max(received) <= SOCKET_LIMIT, f"a socket message of {max(received)} bytes"

    # The file open in the editor downloads as saved.
    row(page, "notes-download.md").locator(".file-item").click()
    expect(page.locator("#file-editor")).to_contain_text("from the editor")
    with page.expect_download() as arrival:
        page.locator("#download-open-file").click()
    assert arrival.value.suggested_filename == "notes-download.md"
    assert Path(arrival.value.path()).read_text() == "# Notes\n\nfrom the editor, é ✓\n"
    page.locator("#close-file").click()

    # A file deleted before the click, and one over the limit, are refused with a message.
    # (A refresh restarts the tab's quiet period: the listing holds still while the menu is
    # open, as it does for a user who just refreshed. The new file shows the refresh landed.)
    (folder / "late-download.txt").write_text("listed by the refresh")
    page.locator("#files-refresh").click()
    expect(row(page, "late-download.txt")).to_be_visible()
    row(page, "gone-download.bin").locator(".file-menu").click()
    (folder / "gone-download.bin").unlink()
    page.locator(".file-download").click()
    expect(page.locator("#files-error")).to_contain_text(
        "outgoing/gone-download.bin was not downloaded: No such file or folder."
    )
    row(page, "huge-download.bin").locator(".file-menu").click()
    page.locator(".file-download").click()
    expect(page.locator("#files-error")).to_contain_text(
        "outgoing/huge-download.bin was not downloaded: The file is 60 MB: "
        f"downloads are at most {MAX_DOWNLOAD // 2**20} MB."
    )
    page.screenshot(path=str(ARTIFACTS / "files-download-refused.png"))
    expect(page.locator("#download-progress")).to_have_count(0)
    assert max(received) <= SOCKET_LIMIT, f"a socket message of {max(received)} bytes"
