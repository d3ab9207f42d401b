"""The left rail: new session, search, the session list."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState
from app.ui.state.sessions import SessionsState

STATUS_COLOURS = {"running": "blue", "waiting": "amber", "failed": "red", "starting": "blue"}


def _item(item: rx.Var) -> rx.Component:
    return rx.box(
        rx.text(item["title"], weight="medium", trim="both", no_of_lines=1),
        rx.hstack(
            rx.text(item["updated"], font_size="0.7em", color=rx.color("gray", 10)),
            rx.text(item["cost"], font_size="0.7em", color=rx.color("gray", 10)),
            rx.badge(
                item["status"],
                size="1",
                variant="soft",
                color_scheme=rx.match(item["status"], *STATUS_COLOURS.items(), "gray"),
            ),
            spacing="2",
        ),
        on_click=ChatState.open_session(item["id"]),
        class_name="session-item",
        padding="0.5em",
        border_radius="8px",
        cursor="pointer",
        background=rx.cond(
            ChatState.session_id == item["id"], rx.color("accent", 4), "transparent"
        ),
        _hover={"background": rx.color("accent", 3)},
        width="100%",
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.button(
            rx.icon("plus"),
            "New session",
            on_click=ChatState.new_session,
            width="100%",
            id="new-session",
        ),
        rx.input(
            placeholder="Search sessions",
            value=SessionsState.search,
            on_change=SessionsState.set_search.debounce(300),
            width="100%",
        ),
        rx.scroll_area(
            rx.vstack(rx.foreach(SessionsState.items, _item), spacing="1", width="100%"),
            type="auto",
            scrollbars="vertical",
            flex="1",
        ),
        rx.text(
            SessionsState.total.to_string() + " sessions",
            font_size="0.7em",
            color=rx.color("gray", 10),
        ),
        width="100%",
        height="100%",
        spacing="2",
        padding="0.75em",
    )
