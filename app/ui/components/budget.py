"""The header's monthly spend against budget, which opens a small form to set the budget."""

from __future__ import annotations

import reflex as rx

from app.ui.state.budget import BudgetState


def budget_badge() -> rx.Component:
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
