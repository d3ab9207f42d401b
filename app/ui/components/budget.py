"""The header's monthly spend against budget, which opens a small form to set the budget, and
the open session's spend against its own budget; the rail's field that gives new sessions one."""

from __future__ import annotations

import reflex as rx

from app.ui.state.budget import BudgetState


def budget_badge() -> rx.Component:
    return rx.fragment(_session_spend(), _monthly())


def _session_spend() -> rx.Component:
    return rx.cond(
        BudgetState.session_summary != "",
        rx.badge(
            BudgetState.session_summary,
            size="1",
            variant="soft",
            color_scheme=rx.cond(BudgetState.session_spent_all, "red", "gray"),
            id="session-budget",
            title="This session's model spend against its own budget",
            flex_shrink="0",
        ),
    )


def session_budget_field() -> rx.Component:
    """Under "New session": an optional budget for the sessions it starts."""
    return rx.vstack(
        rx.input(
            rx.input.slot(rx.icon("wallet", size=12)),
            value=BudgetState.session_amount,
            on_change=BudgetState.set_session_amount,
            placeholder="Session budget, US dollars (optional)",
            inputmode="decimal",
            size="1",
            width="100%",
            id="session-budget-amount",
            aria_label="Budget for new sessions, in US dollars",
            title="Budget for the sessions New session starts, in US dollars (empty: none)",
        ),
        rx.cond(
            BudgetState.session_problem != "",
            rx.text(
                BudgetState.session_problem,
                size="1",
                color=rx.color("red", 11),
                id="session-budget-problem",
            ),
        ),
        width="100%",
        spacing="1",
    )


def _monthly() -> rx.Component:
    return rx.popover.root(
        rx.popover.trigger(
            rx.button(
                rx.icon("wallet", size=12),
                BudgetState.summary,
                size="1",
                variant="ghost",
                color_scheme=rx.cond(BudgetState.spent_all, "red", "gray"),
                id="budget",
                title="Model spend this month (UTC) against your budget; click to set it",
                flex_shrink="0",
            ),
        ),
        rx.popover.content(_form(), width="260px"),
        open=BudgetState.editing,
        on_open_change=BudgetState.set_editing,
        on_mount=BudgetState.load,
    )


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text("Monthly budget (US dollars)", size="2", weight="medium"),
            rx.input(
                value=BudgetState.amount,
                on_change=BudgetState.set_amount,
                placeholder="none",
                inputmode="decimal",
                id="budget-amount",
                name="amount",
                width="100%",
            ),
            rx.cond(
                BudgetState.problem != "",
                rx.text(
                    BudgetState.problem, size="1", color=rx.color("red", 11), id="budget-problem"
                ),
            ),
            rx.text(
                "Agents stop when this month's model spend reaches it. Empty: no budget of "
                "your own.",
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.button("Save", type="submit", size="1", id="budget-save"),
            spacing="2",
            align="start",
        ),
        on_submit=BudgetState.save,
        reset_on_submit=False,
    )
