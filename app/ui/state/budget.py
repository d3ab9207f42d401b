"""The header's "spent / budget this month" and the popover that sets the budget.

Spend comes from the relay's in-memory count (no database read), re-read every few seconds
while the tab is open, so a finished turn shows in the header without the chat state's help.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from app.services import services
from app.ui.state.base import BaseState, connected

REFRESH_S = 2.0


class BudgetState(BaseState):
    spent_usd: float = 0.0
    budget_usd: float = 0.0  # 0: no budget applies
    amount: str = ""  # what the user typed into the popover
    problem: str = ""
    editing: bool = False
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

    async def _read(self) -> None:
        budget, spent = await services().budgets.status(self.user_id)
        self.budget_usd = budget or 0.0
        self.spent_usd = spent
