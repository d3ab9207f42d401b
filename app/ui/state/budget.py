"""The header's "spent / budget this month" and the popover that sets the budget; the budget
the rail's "New session" gives the sessions it starts (the SDK's `max_budget_usd`), and the
open session's spend against its own budget.

Spend comes from the relay's in-memory count (no database read), re-read every few seconds
while the tab is open, so a finished turn shows in the header without the chat state's help.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.services import services
from app.ui.errors import Shown
from app.ui.state.base import BaseState, connected

REFRESH_S = 2.0
MOST_USD = 1_000_000.0


class BudgetState(BaseState):
    spent_usd: float = 0.0
    budget_usd: float = 0.0  # 0: no budget applies
    amount: str = ""  # what the user typed into the popover
    problem: str = ""
    editing: bool = False
    session_amount: str = ""  # the budget typed for new sessions; empty: none
    session_problem: str = ""
    session_spent_usd: float = 0.0  # the open session's cost and budget (0: none)
    session_budget_usd: float = 0.0
    _watching: bool = False

    @rx.var
    def summary(self) -> str:
        spent = f"${self.spent_usd:,.2f}"
        if self.budget_usd <= 0:
            return f"{spent} this month"
        return f"{spent} / ${self.budget_usd:,.2f} this month"

    @rx.var
    def spent_all(self) -> bool:
        return self.budget_usd > 0 and self.spent_usd >= self.budget_usd

    @rx.var
    def session_summary(self) -> str:
        """The open session's spend against its own budget; empty when it has none."""
        if self.session_budget_usd <= 0:
            return ""
        return f"session ${self.session_spent_usd:,.4f} / ${self.session_budget_usd:,.4f}"

    @rx.var
    def session_spent_all(self) -> bool:
        return 0 < self.session_budget_usd <= self.session_spent_usd

    @rx.event
    async def load(self) -> Any:
        """On the header's mount: read once, then keep it fresh while the tab is open."""
        if not self._user_id:
            return None
        await self._read()
        return BudgetState.watch

    @rx.event(background=True)
    async def watch(self) -> None:
        async with self:
            if self._watching:
                return
            self._watching = True
            token = self.router.session.client_token
        try:
            while connected(token):
                await asyncio.sleep(REFRESH_S)
                async with self:
                    if not self._user_id:
                        return
                    await self._read()
        finally:
            async with self:
                self._watching = False

    @rx.event
    def set_editing(self, value: bool) -> None:
        self.editing = value
        self.problem = ""
        self.amount = f"{self.budget_usd:g}" if self.budget_usd > 0 else ""

    @rx.event
    def set_amount(self, value: str) -> None:
        self.amount = value

    @rx.event
    async def save(self, _form: dict[str, Any] | None = None) -> None:
        """Store the typed budget (empty: none of the user's own)."""
        text = self.amount.strip().removeprefix("$")
        try:
            wanted = float(text) if text else None
        except ValueError:
            wanted = -1.0
        if wanted is not None and not 0 < wanted <= 1_000_000:
            self.problem = "Type an amount in dollars, such as 5 or 12.50."
            return
        budgets = services().budgets
        if problem := budgets.over_ceiling(wanted):
            self.problem = problem
            return
        await asyncio.to_thread(services().store.set_monthly_budget, self.user_id, wanted)
        await budgets.set_own(self.user_id, wanted)
        await self._read()
        self.editing = False

    @rx.event
    def set_session_amount(self, value: str) -> None:
        """Checked as the user types, so the problem shows before "New session" is clicked."""
        self.session_amount = value
        self.session_problem = _problem(value)

    def new_session_budget(self) -> tuple[float | None, str]:
        """The budget for the session about to start (None: none) or why there is none."""
        self.session_problem = _problem(self.session_amount)
        if self.session_problem:
            return None, self.session_problem
        text = _amount(self.session_amount)
        return (float(text) if text else None), ""

    async def _read(self) -> None:
        from app.ui.state.chat import ChatState  # the chat state imports this one

        budget, spent = await services().budgets.status(self.user_id)
        self.budget_usd = budget or 0.0
        self.spent_usd = spent
        session_id = (await self.get_state(ChatState)).session_id
        self.session_spent_usd, self.session_budget_usd = 0.0, 0.0
        if session_id:
            try:
                row = await services().engine.get(self.user_id, session_id)
            except Shown:
                return  # gone meanwhile: the chat says so
            self.session_spent_usd = row.cost_usd
            self.session_budget_usd = row.max_budget_usd or 0.0


def _amount(text: str) -> str:
    return text.strip().removeprefix("$").strip()


def _problem(text: str) -> str:
    """Why `text` is not a session budget ("" when it is one, or empty)."""
    text = _amount(text)
    if not text:
        return ""
    try:
        wanted = float(text)
    except ValueError:
        return "Type an amount in dollars, such as 0.50, or leave it empty."
    if not 0 < wanted <= MOST_USD:
        return "A session's budget is more than $0 and at most $1,000,000."
    return ""
