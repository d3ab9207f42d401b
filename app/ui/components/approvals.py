"""Pending permission requests, inline and impossible to miss. No timer ever answers them."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState


def _request(request: rx.Var) -> rx.Component:
    request_id = request["request_id"].to(str)
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.icon("shield_alert", color=rx.color("amber", 10)),
                rx.text(
                    "The agent asks to use ", rx.code(request["tool_name"].to(str)), weight="medium"
                ),
                align="center",
            ),
            rx.code_block(
                request["input"].to_string(),
                language="json",
                wrap_long_lines=True,
                font_size="0.8em",
                width="100%",
            ),
            rx.cond(
                request["suggestions"].to(list).length() > 0,
                rx.text(
                    "Always allow adds: ",
                    rx.code(request["suggestions"].to(list).join(", ")),
                    font_size="0.8em",
                    color=rx.color("gray", 11),
                ),
            ),
            rx.hstack(
                rx.button(
                    "Allow once",
                    on_click=ChatState.answer(request_id, "allow"),
                    class_name="allow-once",
                ),
                rx.button(
                    "Always allow",
                    variant="soft",
                    on_click=ChatState.answer(request_id, "always"),
                    class_name="allow-always",
                ),
                rx.input(
                    placeholder="Reason (optional)",
                    value=ChatState.deny_reason,
                    on_change=ChatState.set_deny_reason,
                    class_name="deny-reason",
                    flex="1",
                ),
                rx.button(
                    "Deny",
                    color_scheme="red",
                    variant="soft",
                    on_click=ChatState.answer(request_id, "deny"),
                    class_name="deny",
                ),
                wrap="wrap",
                width="100%",
            ),
            width="100%",
            spacing="2",
        ),
        class_name="approval",
        width="100%",
        border=f"2px solid {rx.color('amber', 8)}",
    )


def approvals() -> rx.Component:
    return rx.vstack(
        rx.foreach(ChatState.pending, _request), width="100%", spacing="2", id="approvals"
    )
