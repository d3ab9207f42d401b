"""Pending permission requests, inline and impossible to miss. No timer ever answers them."""

from __future__ import annotations

import reflex as rx

from app.ui.components.markdown import safe_markdown
from app.ui.state.chat import ChatState, Pending, Question


def _actions(
    approve: rx.Component, refuse_label: str, refuse: str, *extra: rx.Component
) -> rx.Component:
    """The answer row every request has: approve, (extras), a reason the agent reads, refuse."""
    return rx.hstack(
        approve,
        *extra,
        rx.input(
            placeholder="Reason (optional, the agent reads it)",
            value=ChatState.deny_reason,
            on_change=ChatState.set_deny_reason,
            class_name="deny-reason",
            flex="1",
            min_width="12em",
        ),
        rx.button(
            refuse_label, color_scheme="red", variant="soft", on_click=refuse, class_name="deny"
        ),
        wrap="wrap",
        width="100%",
    )


def _title(icon: str, colour: str, *text: rx.Component | str) -> rx.Component:
    return rx.hstack(
        rx.icon(icon, color=rx.color(colour, 10)), rx.text(*text, weight="medium"), align="center"
    )


def _tool_request(request: Pending) -> rx.Component:
    return rx.vstack(
        _title("shield_alert", "amber", "The agent asks to use ", rx.code(request.tool_name)),
        rx.text(request.summary, font_family="monospace", size="2"),
        rx.code_block(
            request.detail, language="diff", wrap_long_lines=True, font_size="0.8em", width="100%"
        ),
        rx.cond(
            request.rules != "",
            rx.text(
                "Always allow adds the rule: ",
                rx.code(request.rules),
                size="1",
                color=rx.color("gray", 11),
                class_name="rule",
            ),
        ),
        _actions(
            rx.button(
                "Allow once",
                on_click=ChatState.answer(request.request_id, "allow"),
                class_name="allow-once",
            ),
            "Deny",
            ChatState.answer(request.request_id, "deny"),
            rx.button(
                "Always allow",
                variant="soft",
                on_click=ChatState.answer(request.request_id, "always"),
                class_name="allow-always",
                disabled=request.rules == "",
            ),
        ),
        width="100%",
        spacing="2",
    )


def _question(question: Question) -> rx.Component:
    return rx.vstack(
        rx.text(question.header, size="1", color=rx.color("gray", 10)),
        rx.text(question.question, weight="medium"),
        rx.radio_group(
            question.options,
            on_change=lambda choice: ChatState.choose(question.question, choice),
            direction="column",
            class_name="question-options",
        ),
        spacing="1",
        width="100%",
    )


def _question_request(request: Pending) -> rx.Component:
    return rx.vstack(
        _title("message_circle_question", "blue", "The agent has a question"),
        rx.foreach(request.questions, _question),
        _actions(
            rx.button(
                "Answer",
                on_click=ChatState.answer_questions(request.request_id),
                class_name="send-answers",
            ),
            "Skip",
            ChatState.answer(request.request_id, "deny"),
        ),
        width="100%",
        spacing="2",
    )


def _plan_request(request: Pending) -> rx.Component:
    return rx.vstack(
        _title("clipboard_list", "violet", "The agent proposes a plan"),
        rx.cond(
            request.plan != "",
            rx.box(safe_markdown(request.plan), class_name="plan", width="100%"),
            rx.text(
                "(The plan is in the conversation above.)", size="2", color=rx.color("gray", 10)
            ),
        ),
        _actions(
            rx.button(
                "Approve plan",
                on_click=ChatState.answer(request.request_id, "allow"),
                class_name="allow-once",
            ),
            "Keep planning",
            ChatState.answer(request.request_id, "keep_planning"),
        ),
        width="100%",
        spacing="2",
    )


def _request(request: Pending) -> rx.Component:
    return rx.card(
        rx.match(
            request.kind,
            ("question", _question_request(request)),
            ("plan", _plan_request(request)),
            _tool_request(request),
        ),
        class_name="approval",
        width="100%",
        border=f"2px solid {rx.color('amber', 8)}",
    )


def approvals() -> rx.Component:
    return rx.vstack(
        rx.foreach(ChatState.pending, _request), width="100%", spacing="2", id="approvals"
    )
