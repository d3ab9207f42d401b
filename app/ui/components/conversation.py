"""The conversation: prompts, answers (markdown), tool cards, turn footers, errors."""

from __future__ import annotations

import reflex as rx

from app.ui.components.streamed import answer_markdown, streaming_view
from app.ui.components.turn_menu import rewind_dialog, turn_menu
from app.ui.state.chat import ChatState
from app.ui.state.turns import turns_view

MONO = {"font_family": "var(--code-font-family, monospace)", "font_size": "0.8em"}


def _user(block: rx.Var) -> rx.Component:
    bubble = rx.box(
        rx.text(block["text"], white_space="pre-wrap"),
        class_name="msg msg-user",
        background=rx.color("accent", 3),
        padding="0.6em 0.9em",
        border_radius="10px",
    )
    return rx.hstack(
        turn_menu(block), bubble, align="center", align_self="flex-end", max_width="85%"
    )


def _assistant(block: rx.Var) -> rx.Component:
    return rx.box(answer_markdown(block), class_name="msg msg-assistant", width="100%")


def _output(block: rx.Var) -> rx.Component:
    long = block["result"].to(str).length() > block["result_short"].to(str).length()
    shown = rx.cond(
        ChatState.expanded.contains(block["id"]), block["result"], block["result_short"]
    )
    return rx.cond(
        block["done"] == "1",
        rx.vstack(
            rx.box(
                rx.text(
                    shown,
                    white_space="pre-wrap",
                    **MONO,
                    color=rx.cond(block["is_error"] == "1", rx.color("red", 11), "inherit"),
                ),
                max_height=rx.cond(ChatState.expanded.contains(block["id"]), "none", "18em"),
                overflow_y="auto",
                padding="0.4em",
                width="100%",
                background=rx.color("gray", 2),
                border_radius="6px",
                class_name="tool-output",
            ),
            rx.cond(
                long,
                rx.button(
                    rx.cond(ChatState.expanded.contains(block["id"]), "Show less", "Show more"),
                    size="1",
                    variant="ghost",
                    on_click=ChatState.toggle(block["id"]),
                    class_name="show-more",
                ),
            ),
            width="100%",
            spacing="1",
        ),
        rx.hstack(rx.spinner(size="1"), rx.text("running…", color=rx.color("gray", 10), size="1")),
    )


def _tool(block: rx.Var) -> rx.Component:
    style = block["style"]
    body = rx.match(
        style,
        ("quiet", rx.fragment()),
        ("todo", rx.text(block["detail"], white_space="pre-wrap", **MONO)),
        (
            "diff",
            rx.code_block(
                block["detail"],
                language="diff",
                wrap_long_lines=True,
                font_size="0.8em",
                width="100%",
            ),
        ),
        (
            "command",
            rx.code_block(
                block["detail"],
                language="bash",
                wrap_long_lines=True,
                font_size="0.8em",
                width="100%",
            ),
        ),
        rx.code_block(
            block["detail"], language="json", wrap_long_lines=True, font_size="0.8em", width="100%"
        ),
    )
    header = rx.hstack(
        rx.badge(
            block["name"], variant="soft", color_scheme=rx.cond(style == "task", "purple", "gray")
        ),
        rx.text(block["summary"], **MONO, trim="both", class_name="tool-summary"),
        rx.cond(block["is_error"] == "1", rx.badge("error", color_scheme="red")),
        align="center",
        wrap="wrap",
    )
    quiet = rx.hstack(
        header,
        rx.cond(
            block["done"] == "1",
            rx.text(
                block["result"].to(str).split("\n").length().to_string() + " lines",
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.spinner(size="1"),
        ),
        class_name="msg msg-tool tool-quiet",
        padding_y="0.2em",
    )
    card = rx.card(
        rx.vstack(header, body, _output(block), width="100%", spacing="2"),
        class_name="msg msg-tool",
        width="100%",
    )
    return rx.cond(style == "quiet", quiet, card)


def _thinking(block: rx.Var) -> rx.Component:
    return rx.el.details(
        rx.el.summary("Thinking", style={"cursor": "pointer", "color": rx.color("gray", 10)}),
        rx.text(block["text"], white_space="pre-wrap", color=rx.color("gray", 11), size="2"),
        class_name="msg msg-thinking",
    )


def _block(block: rx.Var) -> rx.Component:
    inner = rx.match(
        block["kind"],
        ("user", _user(block)),
        ("assistant", _assistant(block)),
        ("tool", _tool(block)),
        ("thinking", _thinking(block)),
        (
            "result",
            rx.text(
                block["text"],
                color=rx.color("gray", 10),
                size="1",
                class_name=rx.cond(
                    block["stopped"].to(str) == "1", "msg msg-result msg-stopped", "msg msg-result"
                ),
            ),
        ),
        (
            "error",
            rx.callout(
                block["text"],
                icon="triangle_alert",
                color_scheme="red",
                class_name="msg msg-error",
                width="100%",
            ),
        ),
        rx.text(block["text"], color=rx.color("gray", 10), size="1", class_name="msg-notice"),
    )
    # Subagent (Task) work is indented under the call that started it.
    return rx.cond(
        block["parent"].to(str) != "",
        rx.box(
            inner,
            padding_left="1em",
            border_left=f"2px solid {rx.color('purple', 6)}",
            width="100%",
            class_name="subagent",
        ),
        inner,
    )


def todo_panel() -> rx.Component:
    def item(todo: rx.Var) -> rx.Component:
        return rx.hstack(
            rx.match(
                todo["status"],
                ("completed", rx.icon("circle_check", size=14, color=rx.color("green", 10))),
                ("in_progress", rx.icon("loader", size=14, color=rx.color("blue", 10))),
                rx.icon("circle", size=14, color=rx.color("gray", 9)),
            ),
            rx.text(
                todo["content"],
                size="2",
                text_decoration=rx.cond(todo["status"] == "completed", "line-through", "none"),
            ),
            align="center",
            class_name="todo-item",
        )

    return rx.cond(
        ChatState.todos.length() > 0,
        rx.card(
            rx.vstack(
                rx.text("Todo", weight="bold", size="2"),
                rx.foreach(ChatState.todos, item),
                spacing="1",
            ),
            id="todos",
            width="100%",
        ),
    )


def conversation() -> rx.Component:
    return rx.vstack(
        rx.cond(
            ChatState.history_before > 0,
            rx.button(
                "Load earlier messages",
                on_click=ChatState.load_older,
                loading=ChatState.loading_older,
                variant="soft",
                size="1",
                id="load-older",
                align_self="center",
            ),
        ),
        turns_view(_block),
        streaming_view(id="streaming", class_name="msg msg-streaming", width="100%"),
        rewind_dialog(),
        rx.cond(
            ChatState.status == "running",
            rx.hstack(
                rx.spinner(size="1"),
                rx.text("Working…", size="1", color=rx.color("gray", 10)),
                id="working",
            ),
        ),
        id="conversation",
        spacing="3",
        width="100%",
        padding_bottom="1em",
    )
