"""The left rail: sessions (search, paging, rename, delete), projects (with GitHub), files
and the open project's git."""

from __future__ import annotations

import reflex as rx

from app.ui.components.budget import session_budget_field
from app.ui.components.env import env_section
from app.ui.components.extensions import extensions_section
from app.ui.components.files_panel import files_panel
from app.ui.components.git_panel import git_panel
from app.ui.components.github import github_section
from app.ui.components.mcp import mcp_section
from app.ui.state.chat import ChatState
from app.ui.state.files import FilesState
from app.ui.state.git import GitState
from app.ui.state.github import GitHubState
from app.ui.state.mcp import McpState
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
                # Radix gives focus back to the menu's button when it closes, which would blur
                # (and so end) the rename field that "Rename" just opened.
                on_close_auto_focus=rx.prevent_default,
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
        rx.text(
            rx.cond(
                SessionsState.total == 1, "1 session", SessionsState.total.to_string() + " sessions"
            ),
            **MUTED,
            id="session-count",
        ),
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
        rx.cond(WorkspaceState.sync_enabled, _backup()),
        _restart(),
        env_section(),
        mcp_section(),
        extensions_section(),
        github_section(),
        width="100%",
        spacing="1",
    )


def _restart() -> rx.Component:
    """Restart workspace: stops every agent and terminal, keeps the work (asks first)."""
    return rx.vstack(
        rx.cond(
            WorkspaceState.confirming_restart,
            rx.hstack(
                rx.text("Stop all your agents and terminals?", size="1", flex="1"),
                rx.button(
                    "Restart",
                    on_click=WorkspaceState.restart,
                    size="1",
                    color_scheme="red",
                    id="confirm-restart",
                ),
                rx.button(
                    "Cancel", on_click=WorkspaceState.cancel_restart, size="1", variant="soft"
                ),
                width="100%",
                align="center",
            ),
            rx.button(
                rx.icon("rotate-ccw", size=14),
                "Restart workspace",
                on_click=WorkspaceState.ask_restart,
                loading=WorkspaceState.restarting,
                size="1",
                variant="soft",
                id="restart-workspace",
                title="Stop every agent and terminal; your files and conversations are kept",
            ),
        ),
        rx.cond(
            WorkspaceState.restart_note != "",
            rx.text(WorkspaceState.restart_note, size="1", id="restart-note"),
        ),
        rx.cond(  # compiled into the page: the static site's CSP allows no eval
            WorkspaceState.stop_runtime,
            rx.box(
                on_mount=[
                    rx.call_function(rx.Var("() => window.agentWebStopRuntime?.()")),
                    WorkspaceState.runtime_stopped,
                ],
                display="none",
            ),
        ),
        width="100%",
        spacing="1",
        padding_top="0.5em",
    )


def _backup() -> rx.Component:
    """Back up now, and when each folder last was."""
    return rx.vstack(
        rx.button(
            rx.icon("cloud-upload", size=14),
            "Back up now",
            on_click=WorkspaceState.back_up_now,
            loading=WorkspaceState.backing_up,
            size="1",
            variant="soft",
            id="back-up-now",
        ),
        rx.foreach(
            WorkspaceState.sync_rows,
            lambda item: rx.cond(
                item["backed_up"] != "",
                rx.text(
                    item["name"] + ": backed up at " + item["backed_up"] + " UTC",
                    size="1",
                    color=rx.color("gray", 10),
                    class_name="backed-up",
                ),
            ),
        ),
        width="100%",
        spacing="1",
        padding_top="0.5em",
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
        session_budget_field(),
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("Sessions", value="sessions"),
                rx.tabs.trigger(
                    "Projects",
                    value="projects",
                    on_click=[WorkspaceState.load, GitHubState.load, McpState.load],
                    id="projects-tab",
                ),
                rx.tabs.trigger("Files", value="files", id="files-tab"),
                rx.tabs.trigger("Git", value="git", id="git-tab"),
            ),
            rx.tabs.content(_sessions(), value="sessions", padding_top="0.5em"),
            rx.tabs.content(_projects(), value="projects", padding_top="0.5em"),
            rx.tabs.content(files_panel(), value="files", padding_top="0.5em"),
            rx.tabs.content(git_panel(), value="git", padding_top="0.5em"),
            default_value="sessions",
            # The Files and Git tabs refresh when they open and follow the agent while shown.
            on_change=[GitState.tab_changed, FilesState.tab_changed],
            width="100%",
        ),
        width="100%",
        height="100%",
        spacing="2",
        padding="0.75em",
        overflow_y="auto",
    )
