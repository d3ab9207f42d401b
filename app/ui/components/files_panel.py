"""The Files tab of the rail: the open session's project as a tree (one folder at a time),
new files and folders, uploads into the chosen folder, downloads, rename, delete, and an
editor with syntax highlighting that saves only over the version it opened (or anyway, when the
user says so)."""

from __future__ import annotations

import reflex as rx

from app.ui.components.code_editor import code_editor
from app.ui.components.download import download_sink
from app.ui.components.upload import upload_button
from app.ui.state.files import CONFLICT, FilesState, Row
from app.workspace.editing import MAX_UPLOAD

MUTED = {"size": "1", "color": rx.color("gray", 10)}
INDENT_EM = 0.9


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("refresh_cw", size=14),
            "Refresh",
            size="1",
            variant="soft",
            loading=FilesState.loading,
            on_click=FilesState.refresh,
            id="files-refresh",
        ),
        rx.button(
            rx.icon("file_plus", size=14),
            "File",
            size="1",
            variant="soft",
            on_click=FilesState.start_create("file"),
            id="new-file",
            title="New file in the chosen folder",
        ),
        rx.button(
            rx.icon("folder_plus", size=14),
            "Folder",
            size="1",
            variant="soft",
            on_click=FilesState.start_create("folder"),
            id="new-folder",
            title="New folder in the chosen folder",
        ),
        rx.cond(FilesState.has_project, _upload()),
        rx.tooltip(
            rx.icon_button(
                rx.icon(rx.cond(FilesState.show_hidden, "eye", "eye_off"), size=14),
                size="1",
                variant=rx.cond(FilesState.show_hidden, "solid", "soft"),
                on_click=FilesState.toggle_hidden,
                aria_label="Show .git",
                id="show-hidden",
            ),
            content="Show .git",
        ),
        spacing="1",
        wrap="wrap",
        width="100%",
    )


def _upload() -> rx.Component:
    return upload_button(
        rx.button(
            rx.icon("upload", size=14),
            "Upload",
            size="1",
            variant="soft",
            loading=FilesState.upload_note != "",
            id="upload-files",
            title="Upload files into the chosen folder",
        ),
        input_id="upload-input",
        max_bytes=MAX_UPLOAD,
        ack=FilesState.upload_ack,
        on_chunk=FilesState.upload_chunk,
        on_refuse=FilesState.upload_refused,
    )


def _create_form() -> rx.Component:
    return rx.cond(
        FilesState.creating != "",
        rx.form(
            rx.vstack(
                rx.text(
                    rx.cond(FilesState.creating == "folder", "New folder in ", "New file in "),
                    rx.cond(FilesState.folder != "", FilesState.folder + "/", "the project's top"),
                    rx.cond(
                        FilesState.folder != "",
                        rx.link(" (top instead)", on_click=FilesState.choose_root, size="1"),
                    ),
                    **MUTED,
                ),
                rx.hstack(
                    rx.input(
                        value=FilesState.new_name,
                        on_change=FilesState.set_new_name,
                        placeholder=rx.cond(
                            FilesState.creating == "folder", "folder name", "name.py"
                        ),
                        auto_focus=True,
                        size="1",
                        flex="1",
                        id="new-name",
                        name="name",
                    ),
                    rx.button("Make", size="1", type="submit", id="create-entry"),
                    rx.icon_button(
                        rx.icon("x", size=12),
                        size="1",
                        variant="ghost",
                        type="button",
                        on_click=FilesState.cancel_create,
                        aria_label="Cancel",
                    ),
                    width="100%",
                    align="center",
                ),
                spacing="1",
                width="100%",
            ),
            on_submit=FilesState.create,
            width="100%",
        ),
    )


def _icon(row: Row) -> rx.Component:
    return rx.match(
        row.kind,
        ("folder", rx.icon(rx.cond(row.open, "folder_open", "folder"), size=14)),
        ("link", rx.icon("link", size=14)),
        ("other", rx.icon("file_question", size=14)),
        rx.icon("file", size=14),
    )


def _name(row: Row) -> rx.Component:
    return rx.cond(
        FilesState.renaming == row.path,
        rx.form(
            rx.input(
                value=FilesState.rename_text,
                on_change=FilesState.set_rename_text,
                auto_focus=True,
                size="1",
                width="100%",
                class_name="rename-file-input",
            ),
            on_submit=FilesState.finish_rename,
            flex="1",
        ),
        rx.hstack(
            _icon(row),
            rx.text(
                row.name,
                size="1",
                font_family="monospace",
                trim="both",
                word_break="break-all",
                class_name=rx.match(
                    row.kind,
                    ("file", "file-item"),
                    ("folder", "folder-item"),
                    ("link", "link-item"),
                    "other-item",
                ),
            ),
            rx.cond(
                row.kind == "link",
                rx.text("→ " + row.target, **MUTED, word_break="break-all"),
            ),
            rx.cond(row.note != "", rx.text(row.note, **MUTED, white_space="nowrap")),
            on_click=FilesState.click(row.path, row.kind),
            cursor=rx.cond((row.kind == "folder") | (row.kind == "file"), "pointer", "default"),
            title=rx.cond(row.kind == "link", "A link: shown, never followed", row.path),
            spacing="1",
            align="center",
            flex="1",
            min_width="0",
        ),
    )


def _menu(row: Row) -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(
                rx.icon("ellipsis", size=12),
                variant="ghost",
                size="1",
                class_name="file-menu",
                aria_label="File actions",
            )
        ),
        rx.menu.content(
            rx.cond(
                row.kind == "file",
                rx.menu.item(
                    "Download",
                    on_click=FilesState.download(row.path),  # type: ignore[misc]
                    class_name="file-download",
                ),
            ),
            rx.menu.item("Rename", on_click=FilesState.start_rename(row.path)),
            rx.menu.item(
                "Delete",
                color="red",
                on_click=FilesState.ask_delete(row.path),
            ),
            size="1",
        ),
    )


def _row(row: Row) -> rx.Component:
    return rx.hstack(
        _name(row),
        _menu(row),
        width="100%",
        align="center",
        padding_left=(row.depth * INDENT_EM).to_string() + "em",
        padding_y="0.1em",
        border_radius="6px",
        background=rx.cond(
            (FilesState.edit_path == row.path) & FilesState.editor_open,
            rx.color("accent", 4),
            rx.cond(
                (FilesState.folder == row.path) & (row.kind == "folder"),
                rx.color("gray", 3),
                "transparent",
            ),
        ),
        _hover={"background": rx.color("accent", 3)},
        class_name="file-row",
        custom_attrs={"data-path": row.path},
        # Keyed by path, not by place: when a listing changes under an open menu (the agent
        # deleted a file above it), the menu closes instead of acting on another file.
        key=row.path,
    )


def _delete_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete " + FilesState.deleting + "?"),
            rx.alert_dialog.description(
                "It goes from the project for good (a folder with everything in it)."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", on_click=FilesState.cancel_delete)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=FilesState.confirm_delete,
                        id="confirm-file-delete",
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="1em",
            ),
        ),
        open=FilesState.deleting != "",
    )


def _editor() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.hstack(
                rx.dialog.title(
                    FilesState.edit_path,
                    font_family="monospace",
                    size="3",
                    margin="0",
                    word_break="break-all",
                ),
                rx.cond(
                    FilesState.dirty,
                    rx.badge("unsaved", color_scheme="amber", size="1", id="file-dirty"),
                ),
                align="center",
                spacing="2",
            ),
            rx.cond(
                FilesState.conflict,
                rx.callout(
                    rx.vstack(
                        rx.text(CONFLICT),
                        rx.hstack(
                            rx.button(
                                "Reload",
                                size="1",
                                variant="soft",
                                on_click=FilesState.reload,
                                id="file-reload",
                            ),
                            rx.button(
                                "Save anyway",
                                size="1",
                                color_scheme="red",
                                on_click=FilesState.save_anyway,
                                id="file-save-anyway",
                            ),
                            spacing="2",
                        ),
                        spacing="2",
                    ),
                    icon="triangle_alert",
                    color_scheme="amber",
                    size="1",
                    width="100%",
                    margin_y="0.5em",
                    id="file-conflict",
                ),
            ),
            rx.cond(
                FilesState.edit_error != "",
                rx.callout(
                    FilesState.edit_error,
                    icon="triangle_alert",
                    color_scheme="red",
                    size="1",
                    margin_y="0.5em",
                    id="file-edit-error",
                ),
            ),
            rx.box(
                code_editor(
                    FilesState.edit_initial,
                    FilesState.edit_language,
                    FilesState.edited,
                    key=FilesState.edit_generation,
                    height="60vh",
                ),
                border=f"1px solid {rx.color('gray', 5)}",
                border_radius="6px",
                overflow="hidden",
                margin_top="0.5em",
                font_size="13px",
                id="file-editor",
            ),
            rx.hstack(
                rx.cond(FilesState.saved_note != "", rx.text(FilesState.saved_note, **MUTED)),
                rx.spacer(),
                rx.button(
                    rx.icon("download", size=14),
                    "Download",
                    variant="soft",
                    on_click=FilesState.download(FilesState.edit_path),  # type: ignore[misc]
                    id="download-open-file",
                    title="Download the file as saved",
                ),
                rx.button(
                    "Close",
                    variant="soft",
                    on_click=FilesState.close_editor,
                    id="close-file",
                ),
                rx.button(
                    rx.icon("save", size=14),
                    "Save",
                    loading=FilesState.saving,
                    on_click=FilesState.save,
                    id="save-file",
                ),
                align="center",
                spacing="2",
                margin_top="0.75em",
                width="100%",
            ),
            max_width="min(1000px, 96vw)",
            width="96vw",
        ),
        open=FilesState.editor_open,
        on_open_change=FilesState.set_editor_open,
    )


def _image() -> rx.Component:
    """An image of the project, shown from a data URL (no request the runtime would refuse)."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(
                FilesState.image_path, font_family="monospace", size="3", word_break="break-all"
            ),
            rx.image(
                src=FilesState.image_url,
                alt=FilesState.image_path,
                id="file-image",
                max_width="100%",
                max_height="70vh",
                object_fit="contain",
            ),
            rx.dialog.close(rx.button("Close", variant="soft", size="1", id="close-image")),
            max_width="min(1000px, 96vw)",
        ),
        open=FilesState.image_url != "",
        on_open_change=lambda _open: FilesState.close_image(),
    )


def _said() -> rx.Component:
    return rx.fragment(
        rx.cond(
            FilesState.error != "",
            rx.callout(
                rx.hstack(
                    rx.text(FilesState.error, flex="1", word_break="break-word"),
                    rx.icon_button(
                        rx.icon("x", size=12),
                        size="1",
                        variant="ghost",
                        on_click=FilesState.dismiss,
                        aria_label="Dismiss",
                    ),
                ),
                icon="triangle_alert",
                color_scheme="red",
                size="1",
                width="100%",
                id="files-error",
            ),
        ),
        rx.cond(
            FilesState.notice != "",
            rx.text(FilesState.notice, size="1", color=rx.color("green", 11), id="files-notice"),
        ),
        rx.cond(
            FilesState.upload_note != "",
            rx.text(FilesState.upload_note, **MUTED, id="upload-progress"),
        ),
        rx.cond(
            FilesState.download_note != "",
            rx.text(FilesState.download_note, **MUTED, id="download-progress"),
        ),
    )


def files_panel() -> rx.Component:
    return rx.vstack(
        _toolbar(),
        _said(),
        rx.cond(
            FilesState.has_project,
            rx.vstack(
                rx.text(FilesState.project_name, **MUTED, id="files-project"),
                _create_form(),
                rx.vstack(
                    rx.foreach(FilesState.rows, _row),
                    rx.cond(
                        FilesState.rows.length() == 0,
                        rx.text("The project is empty.", **MUTED),
                    ),
                    spacing="0",
                    width="100%",
                    id="file-tree",
                ),
                rx.cond(
                    FilesState.truncated,
                    rx.text(
                        "A folder holds more than 2,000 entries: the first are shown.", **MUTED
                    ),
                ),
                width="100%",
                spacing="2",
            ),
            rx.cond(
                FilesState.error == "",
                rx.text("Open a session to see its project's files.", **MUTED),
            ),
        ),
        _delete_dialog(),
        _editor(),
        _image(),
        download_sink(
            piece=FilesState.download_piece,
            on_ack=FilesState.download_ack,
            on_fail=FilesState.download_failed,
        ),
        width="100%",
        spacing="2",
        id="files-panel",
    )
