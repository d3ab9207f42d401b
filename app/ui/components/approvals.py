"""Pending permission requests, inline and impossible to miss. No timer ever answers them."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState, Pending, Question


def _reason() -> rx.Component:
    return rx.input(
        placeholder="Reason (optional, the agent reads it)",
        value=ChatState.deny_reason,
        on_change=ChatState.set_deny_reason,
        class_name="deny-reason",
        flex="1",
        min_width="12em",
    )


def _tool_request(request: Pending) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("shield_alert", color=rx.color("amber", 10)),
            rx.text("The agent asks to use ", rx.code(request.tool_name), weight="medium"),
            align="center",
        ),
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
        rx.hstack(
            rx.button(
                "Allow once",
                on_click=ChatState.answer(request.request_id, "allow"),
                class_name="allow-once",
            ),
            rx.button(
                "Always allow",
                variant="soft",
                on_click=ChatState.answer(request.request_id, "always"),
                class_name="allow-always",
                disabled=request.rules == "",
            ),
            _reason(),
            rx.button(
                "Deny",
                color_scheme="red",
                variant="soft",
                on_click=ChatState.answer(request.request_id, "deny"),
                class_name="deny",
            ),
            wrap="wrap",
            width="100%",
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
        rx.hstack(
            rx.icon("message_circle_question", color=rx.color("blue", 10)),
            rx.text("The agent has a question", weight="medium"),
            align="center",
        ),
        rx.foreach(request.questions, _question),
        rx.hstack(
            rx.button(
                "Answer",
                on_click=ChatState.answer_questions(request.request_id),
                class_name="send-answers",
            ),
            _reason(),
            rx.button(
                "Skip",
                variant="soft",
                color_scheme="gray",
                on_click=ChatState.answer(request.request_id, "deny"),
                class_name="deny",
            ),
            wrap="wrap",
            width="100%",
        ),
        width="100%",
        spacing="2",
    )


def _plan_request(request: Pending) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.icon("clipboard_list", color=rx.color("violet", 10)),
            rx.text("The agent proposes a plan", weight="medium"),
            align="center",
        ),
        rx.cond(
            request.plan != "",
            rx.box(rx.markdown(request.plan), class_name="plan", width="100%"),
            rx.text(
                "(The plan is in the conversation above.)", size="2", color=rx.color("gray", 10)
            ),
        ),
        rx.hstack(
            rx.button(
                "Approve plan",
                on_click=ChatState.answer(request.request_id, "allow"),
                class_name="allow-once",
            ),
            _reason(),
            rx.button(
                "Keep planning",
                variant="soft",
                on_click=ChatState.answer(request.request_id, "keep_planning"),
                class_name="deny",
            ),
            wrap="wrap",
            width="100%",
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
