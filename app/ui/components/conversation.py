"""The conversation: user prompts, answers (markdown), tool cards, turn footers, errors."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState


def _user(block: rx.Var) -> rx.Component:
    return rx.box(
        rx.text(block["text"], white_space="pre-wrap"),
        class_name="msg msg-user",
        background=rx.color("accent", 3),
        padding="0.6em 0.9em",
        border_radius="10px",
        align_self="flex-end",
        max_width="85%",
    )


def _assistant(block: rx.Var) -> rx.Component:
    return rx.box(rx.markdown(block["text"]), class_name="msg msg-assistant", width="100%")


def _tool(block: rx.Var) -> rx.Component:
    body = rx.cond(
        block["style"] == "quiet",
        rx.fragment(),
        rx.code_block(
            block["detail"],
            language=rx.cond(block["style"] == "diff", "diff", "bash"),
            wrap_long_lines=True,
            font_size="0.8em",
        ),
    )
    output = rx.cond(
        block["done"] == "1",
        rx.box(
            rx.text(
                block["result_short"],
                white_space="pre-wrap",
                font_family="monospace",
                font_size="0.8em",
                color=rx.cond(block["is_error"] == "1", rx.color("red", 11), "inherit"),
            ),
            max_height="16em",
            overflow_y="auto",
            padding="0.4em",
            background=rx.color("gray", 2),
            border_radius="6px",
        ),
        rx.text("running…", color=rx.color("gray", 10), font_size="0.8em"),
    )
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.badge(block["name"], variant="soft"),
                rx.text(block["summary"], font_family="monospace", font_size="0.85em", trim="both"),
                rx.cond(block["is_error"] == "1", rx.badge("error", color_scheme="red")),
                align="center",
                wrap="wrap",
            ),
            body,
            output,
            width="100%",
            spacing="2",
        ),
        class_name="msg msg-tool",
        width="100%",
    )


def _block(block: rx.Var) -> rx.Component:
    return rx.match(
        block["kind"],
        ("user", _user(block)),
        ("assistant", _assistant(block)),
        ("tool", _tool(block)),
        (
            "thinking",
            rx.text(
                "Thinking: " + block["text"].to(str),
                color=rx.color("gray", 10),
                font_style="italic",
                font_size="0.85em",
                class_name="msg msg-thinking",
            ),
        ),
        (
            "result",
            rx.text(
                block["text"],
                color=rx.color("gray", 10),
                font_size="0.75em",
                class_name="msg msg-result",
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
        rx.text(block["text"], color=rx.color("gray", 10), font_size="0.8em"),
    )


def conversation() -> rx.Component:
    return rx.vstack(
        rx.foreach(ChatState.blocks, _block),
        rx.cond(
            ChatState.streaming_text != "",
            rx.box(
                rx.markdown(ChatState.streaming_text),
                id="streaming",
                class_name="msg msg-streaming",
                width="100%",
            ),
        ),
        id="conversation",
        spacing="3",
        width="100%",
        padding_bottom="1em",
    )
