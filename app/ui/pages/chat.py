"""The main page: left rail, conversation, composer; a header with the user, project,
connection state, model and permission mode."""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.ui.components.approvals import approvals
from app.ui.components.budget import budget_badge
from app.ui.components.composer import composer
from app.ui.components.conversation import conversation, todo_panel
from app.ui.components.sidebar import sidebar
from app.ui.components.terminal import terminal_panel, terminal_toggle
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState
from app.ui.state.sessions import SessionsState
from app.ui.state.workspace import WorkspaceState

BORDER = f"1px solid {rx.color('gray', 5)}"
# Text that stays on one line and ends in "…" rather than pushing its neighbours off screen.
ONE_LINE = {
    "white_space": "nowrap",
    "overflow": "hidden",
    "text_overflow": "ellipsis",
    "min_width": "0",
}


def _connection() -> rx.Component:
    return rx.cond(
        rx.State.is_hydrated,
        rx.tooltip(
            rx.box(
                width="8px",
                height="8px",
                border_radius="50%",
                background=rx.color("green", 9),
                id="connected",
            ),
            content="Connected",
        ),
        rx.tooltip(
            rx.box(width="8px", height="8px", border_radius="50%", background=rx.color("amber", 9)),
            content="Connecting…",
        ),
    )


def _header() -> rx.Component:
    return rx.hstack(
        rx.icon_button(
            rx.icon("menu"),
            variant="ghost",
            on_click=SessionsState.toggle_rail,
            display=["flex", "flex", "none"],
            id="open-rail",
            aria_label="Sessions and projects",
            title="Sessions and projects",
        ),
        rx.heading("Agent Web", size="4", display=["none", "block"]),
        _connection(),
        rx.cond(
            ChatState.project != "",
            rx.badge(
                rx.icon("folder", size=12),
                rx.text(ChatState.project, **ONE_LINE),
                variant="soft",
                id="project",
                max_width="30%",
                flex_shrink="1",
            ),
        ),
        rx.text(
            ChatState.title,
            color=rx.color("gray", 11),
            flex="1",
            id="title",
            title=ChatState.title,
            **ONE_LINE,
        ),
        rx.cond(
            ChatState.session_id != "",
            rx.hstack(
                rx.select(
                    ChatState.models,
                    value=ChatState.model,
                    on_change=ChatState.change_model,
                    size="1",
                    id="model-picker",
                ),
                rx.select(
                    ChatState.modes,
                    value=ChatState.mode,
                    on_change=ChatState.change_mode,
                    size="1",
                    id="mode-picker",
                ),
                rx.text(ChatState.cost, size="1", color=rx.color("gray", 10), id="session-cost"),
                spacing="2",
                align="center",
                display=["none", "none", "flex"],
            ),
        ),
        budget_badge(),
        terminal_toggle(),
        rx.color_mode.button(
            size="1",
            variant="ghost",
            id="theme",
            aria_label="Light or dark theme",
            title="Light or dark theme",
            flex_shrink="0",
        ),
        rx.text(
            BaseState.email,
            size="1",
            color=rx.color("gray", 11),
            display=["none", "block"],
            id="user-email",
            max_width="25%",
            **ONE_LINE,
        ),
        rx.icon_button(
            rx.icon("log_out", size=14),
            on_click=BaseState.sign_out,
            variant="ghost",
            size="1",
            id="sign-out",
            title="Sign out",
            aria_label="Sign out",
            flex_shrink="0",
        ),
        padding="0.5em 1em",
        border_bottom=BORDER,
        width="100%",
        min_width="0",
        overflow="hidden",
        align="center",
        spacing="3",
        id="header",
    )


def _demo_banner() -> rx.Component:
    return rx.cond(
        SessionsState.demo_model,
        rx.callout(
            "Offline demo model: answers are scripted, not written by Claude. Set "
            "ANTHROPIC_API_KEY (or Bedrock / a gateway, see the README) and restart to use a "
            "real model.",
            icon="info",
            size="1",
            id="demo-banner",
            width="100%",
        ),
    )


def _sandbox_banners() -> rx.Component:
    """Permanent: agents cannot start (and what to install), or run without a sandbox."""
    return rx.fragment(
        _standing(SessionsState.sandbox_problem, "shield-alert", "red", "sandbox-problem"),
        _standing(SessionsState.sandbox_warning, "triangle-alert", "amber", "sandbox-warning"),
    )


def _standing(text: Any, icon: str, color: str, element_id: str) -> rx.Component:
    return rx.cond(
        text != "",
        rx.callout(text, icon=icon, color_scheme=color, size="1", id=element_id, width="100%"),
    )


def _sync_banners() -> rx.Component:
    """Workspaces being restored from S3 (with progress) or backed up; sync failures."""

    def row(item: rx.Var) -> rx.Component:
        return rx.fragment(
            rx.cond(
                item["text"] != "",
                rx.callout(
                    rx.vstack(
                        rx.text(item["text"], size="1"),
                        rx.progress(value=item["percent"].to(int), max=100, width="100%"),
                        width="100%",
                        spacing="1",
                    ),
                    icon="cloud-download",
                    size="1",
                    width="100%",
                    class_name="sync-progress",
                ),
            ),
            _standing(item["error"], "cloud-off", "red", "sync-error"),
            _standing(item["warning"], "triangle-alert", "amber", "sync-warning"),
        )

    return rx.foreach(WorkspaceState.sync_rows, row)


def _error() -> rx.Component:
    return rx.cond(
        ChatState.error != "",
        rx.callout(
            rx.hstack(
                rx.text(ChatState.error, flex="1"),
                rx.icon_button(
                    rx.icon("x", size=12),
                    size="1",
                    variant="ghost",
                    on_click=ChatState.dismiss_error,
                ),
            ),
            icon="triangle_alert",
            color_scheme="red",
            id="error",
            width="100%",
        ),
    )


def _empty() -> rx.Component:
    return rx.cond(
        ChatState.session_id == "",
        rx.center(
            rx.vstack(
                rx.heading("Start a session", size="5"),
                rx.text(
                    "Type a prompt below, or pick a session on the left.",
                    color=rx.color("gray", 10),
                ),
                align="center",
            ),
            padding_y="4em",
            width="100%",
        ),
    )


def chat_page() -> rx.Component:
    rail = rx.box(
        sidebar(),
        width="300px",
        min_width="300px",
        height="100vh",
        border_right=BORDER,
        display=["none", "none", "block"],
    )
    drawer = rx.drawer.root(
        rx.drawer.overlay(),
        rx.drawer.portal(
            rx.drawer.content(
                sidebar(), width="85vw", height="100%", background=rx.color("gray", 1)
            )
        ),
        open=SessionsState.rail_open,
        on_open_change=SessionsState.set_rail_open,
        direction="left",
    )
    return rx.hstack(
        rx.connection_banner(),
        rail,
        drawer,
        rx.vstack(
            _header(),
            # Follows the newest text and approvals while the reader is at the bottom.
            rx.auto_scroll(
                rx.vstack(
                    _sandbox_banners(),
                    _sync_banners(),
                    _demo_banner(),
                    _empty(),
                    conversation(),
                    approvals(),
                    _error(),
                    padding="1em",
                    width="100%",
                    max_width="920px",
                    margin_x="auto",
                ),
                flex="1",
                width="100%",
                id="scroller",
            ),
            rx.box(
                todo_panel(),
                composer(),
                padding="0.5em 1em 0.75em",
                width="100%",
                max_width="920px",
                margin_x="auto",
            ),
            terminal_panel(),
            height="100vh",
            flex="1",
            spacing="0",
            min_width="0",
        ),
        spacing="0",
        width="100%",
    )
