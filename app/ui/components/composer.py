"""The message box: Enter sends, Shift+Enter adds a line; Stop while the agent works."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState


def composer() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.text_area(
                name="prompt",
                id="prompt",
                placeholder="Ask the agent… (Enter sends, Shift+Enter for a new line)",
                enter_key_submit=True,
                auto_height=True,
                rows="2",
                flex="1",
            ),
            rx.cond(
                ChatState.busy,
                rx.button(
                    "Stop", type="button", color_scheme="red", on_click=ChatState.stop, id="stop"
                ),
                rx.button("Send", type="submit", id="send"),
            ),
            width="100%",
            align="end",
        ),
        on_submit=ChatState.send,
        reset_on_submit=True,
        width="100%",
    )
