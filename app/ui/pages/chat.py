"""The main page: rail, conversation, composer."""

from __future__ import annotations

import reflex as rx

from app.ui.components.approvals import approvals
from app.ui.components.composer import composer
from app.ui.components.conversation import conversation
from app.ui.components.sidebar import sidebar
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState
from app.ui.state.sessions import SessionsState


def _header() -> rx.Component:
    return rx.hstack(
        rx.heading("Agent Web", size="4"),
        rx.text(ChatState.title, color=rx.color("gray", 11), trim="both", no_of_lines=1),
        rx.spacer(),
        rx.cond(ChatState.model != "", rx.badge(ChatState.model, variant="outline")),
        rx.cond(ChatState.status != "", rx.badge(ChatState.status, id="status", variant="soft")),
        rx.text(ChatState.cost, font_size="0.8em", color=rx.color("gray", 10)),
        rx.color_mode.button(size="1", variant="ghost"),
        rx.menu.root(
            rx.menu.trigger(
                rx.button(
                    rx.icon("user", size=14),
                    BaseState.email,
                    variant="ghost",
                    size="1",
                    id="user-menu",
                )
            ),
            rx.menu.content(
                rx.menu.item("Sign out", on_click=BaseState.sign_out, id="sign-out-item")
            ),
        ),
        rx.icon_button(
            rx.icon("log_out", size=14),
            on_click=BaseState.sign_out,
            variant="ghost",
            size="1",
            id="sign-out",
            title="Sign out",
        ),
        padding="0.6em 1em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        width="100%",
        align="center",
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


def chat_page() -> rx.Component:
    return rx.hstack(
        rx.box(
            sidebar(),
            width="280px",
            height="100vh",
            border_right=f"1px solid {rx.color('gray', 5)}",
            display=["none", "none", "block"],
        ),
        rx.vstack(
            _header(),
            rx.vstack(
                _demo_banner(),
                rx.cond(
                    ChatState.error != "",
                    rx.callout(
                        ChatState.error,
                        icon="triangle_alert",
                        color_scheme="red",
                        id="error",
                        width="100%",
                    ),
                ),
                conversation(),
                approvals(),
                padding="1em",
                width="100%",
                max_width="900px",
                margin_x="auto",
                flex="1",
                overflow_y="auto",
                id="scroller",
            ),
            rx.box(
                composer(), padding="0.75em 1em", width="100%", max_width="900px", margin_x="auto"
            ),
            height="100vh",
            flex="1",
            spacing="0",
            min_width="0",
        ),
        spacing="0",
        width="100%",
    )
