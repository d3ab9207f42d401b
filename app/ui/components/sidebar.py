"""The left rail: sessions (search, paging, rename, delete), projects and files."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState
from app.ui.state.sessions import SessionsState
from app.ui.state.workspace import WorkspaceState

STATUS_COLOURS = {"running": "blue", "waiting": "amber", "failed": "red", "starting": "blue"}
MUTED = {"size": "1", "color": rx.color("gray", 10)}


def _item(item: rx.Var) -> rx.Component:
    title = rx.cond(
        SessionsState.renaming == item["id"],
        rx.form(
            rx.input(
                value=SessionsState.rename_text,
                on_change=SessionsState.set_rename_text,
                auto_focus=True,
                on_blur=SessionsState.finish_rename,
                class_name="rename-input",
                size="1",
            ),
            on_submit=lambda _: SessionsState.finish_rename(),
        ),
        rx.text(
            item["title"], weight="medium", trim="both", no_of_lines=1, class_name="session-title"
        ),
    )
    return rx.hstack(
        rx.vstack(
            title,
            rx.hstack(
                rx.text(item["updated"], **MUTED),
                rx.text(item["cost"], **MUTED),
                rx.cond(item["project"] != "default", rx.text(item["project"], **MUTED)),
                rx.cond(
                    item["waiting"] == "1",
                    rx.badge(
                        rx.icon("bell_ring", size=12),
                        "approval",
                        color_scheme="amber",
                        size="1",
                        class_name="waiting-badge",
                    ),
                    rx.badge(
                        item["status"],
                        size="1",
                        variant="soft",
                        color_scheme=rx.match(item["status"], *STATUS_COLOURS.items(), "gray"),
                    ),
                ),
                spacing="2",
                wrap="wrap",
            ),
            spacing="1",
            flex="1",
            min_width="0",
            on_click=[ChatState.open_session(item["id"]), SessionsState.set_rail_open(False)],
            cursor="pointer",
        ),
        rx.menu.root(
            rx.menu.trigger(
                rx.icon_button(
                    rx.icon("ellipsis", size=14),
                    variant="ghost",
                    size="1",
                    class_name="session-menu",
                )
            ),
            rx.menu.content(
                rx.menu.item(
                    "Rename",
                    on_click=SessionsState.start_rename(item["id"], item["title"]),
                    class_name="rename",
                ),
                rx.menu.item(
                    "Delete",
                    color="red",
                    on_click=SessionsState.ask_delete(item["id"]),
                    class_name="delete",
                ),
            ),
        ),
        class_name="session-item",
        padding="0.5em",
        border_radius="8px",
        width="100%",
        background=rx.cond(
            ChatState.session_id == item["id"], rx.color("accent", 4), "transparent"
        ),
        _hover={"background": rx.color("accent", 3)},
    )


def _delete_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this session?"),
            rx.alert_dialog.description(
                "Its conversation and history go; files in the project stay."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", on_click=SessionsState.cancel_delete)
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=SessionsState.confirm_delete,
                        id="confirm-delete",
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="1em",
            ),
        ),
        open=SessionsState.deleting != "",
    )


def _sessions() -> rx.Component:
    return rx.vstack(
        rx.input(
            placeholder="Search sessions",
            value=SessionsState.search,
            on_change=SessionsState.set_search.debounce(300),
            width="100%",
            id="search",
        ),
        rx.vstack(
            rx.foreach(SessionsState.items, _item), spacing="1", width="100%", id="session-list"
        ),
        rx.cond(
            SessionsState.has_more,
            rx.button(
                "More sessions",
                variant="soft",
                size="1",
                on_click=SessionsState.more,
                width="100%",
                id="more-sessions",
            ),
        ),
        rx.text(SessionsState.total.to_string() + " sessions", **MUTED),
        _delete_dialog(),
        width="100%",
        spacing="2",
    )


def _projects() -> rx.Component:
    return rx.vstack(
        rx.foreach(
            WorkspaceState.projects,
            lambda p: rx.button(
                rx.icon("folder", size=14),
                p["name"],
                variant="ghost",
                width="100%",
                justify="start",
                on_click=WorkspaceState.choose_project(p["id"]),
                class_name="project-item",
            ),
        ),
        rx.form(
            rx.hstack(
                rx.input(
                    name="name", placeholder="New project", size="1", flex="1", id="new-project"
                ),
                rx.button("Add", size="1", type="submit"),
            ),
            on_submit=WorkspaceState.create_project,
            reset_on_submit=True,
            width="100%",
        ),
        rx.cond(
            WorkspaceState.error != "",
            rx.text(WorkspaceState.error, size="1", color=rx.color("red", 11)),
        ),
        width="100%",
        spacing="1",
    )


def _files() -> rx.Component:
    return rx.vstack(
        rx.button(
            rx.icon("refresh_cw", size=14),
            "Refresh",
            size="1",
            variant="soft",
            on_click=WorkspaceState.load_files,
        ),
        rx.foreach(
            WorkspaceState.files,
            lambda f: rx.text(
                f,
                size="1",
                font_family="monospace",
                cursor="pointer",
                class_name="file-item",
                on_click=WorkspaceState.open_file(f),
                _hover={"text_decoration": "underline"},
            ),
        ),
        rx.dialog.root(
            rx.dialog.content(
                rx.dialog.title(WorkspaceState.file_path),
                rx.code_block(
                    WorkspaceState.file_text,
                    wrap_long_lines=True,
                    font_size="0.8em",
                    max_height="70vh",
                    overflow="auto",
                ),
                rx.dialog.close(
                    rx.button("Close", on_click=WorkspaceState.close_file, margin_top="0.5em")
                ),
                max_width="min(900px, 95vw)",
            ),
            open=WorkspaceState.file_open,
        ),
        width="100%",
        spacing="1",
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.button(
            rx.icon("plus"),
            "New session",
            on_click=[ChatState.new_session, SessionsState.set_rail_open(False)],
            width="100%",
            id="new-session",
        ),
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("Sessions", value="sessions"),
                rx.tabs.trigger("Projects", value="projects", on_click=WorkspaceState.load),
                rx.tabs.trigger(
                    "Files", value="files", on_click=WorkspaceState.load_files, id="files-tab"
                ),
            ),
            rx.tabs.content(_sessions(), value="sessions", padding_top="0.5em"),
            rx.tabs.content(_projects(), value="projects", padding_top="0.5em"),
            rx.tabs.content(_files(), value="files", padding_top="0.5em"),
            default_value="sessions",
            width="100%",
        ),
        width="100%",
        height="100%",
        spacing="2",
        padding="0.75em",
        overflow_y="auto",
    )
