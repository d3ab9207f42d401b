"""The signed-in user's monthly budget for model use, and what they spent of it this month."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, ServicesDep
from app.errors import InvalidInput
from app.sandbox.usage import Budgets

router = APIRouter(prefix="/budget", tags=["budget"])


class BudgetView(BaseModel):
    """Spend is the model relay's own count (the API's usage figures), this calendar month
    in UTC; the relay refuses the user's model requests once it reaches the budget."""

    monthly_budget_usd: float | None = Field(description="The budget that applies; null: none.")
    spent_this_month_usd: float
    own_budget_usd: float | None = Field(description="The user's own setting, if any.")
    operator_limit_usd: float | None = Field(
        description="The operator's default and ceiling (USER_MONTHLY_BUDGET_USD), if set."
    )


class BudgetChange(BaseModel):
    monthly_budget_usd: float | None = Field(
        ...,
        gt=0,
        le=1_000_000,
        description="US dollars per calendar month; null: the operator's default (or none).",
    )


@router.get("")
async def read_budget(user: CurrentUser, services: ServicesDep) -> BudgetView:
    return await _view(services.budgets, user)


@router.put("")
async def set_budget(body: BudgetChange, user: CurrentUser, services: ServicesDep) -> BudgetView:
    """A user sets their own budget (null: back to the operator's default); with an
    operator's default (USER_MONTHLY_BUDGET_USD) that is also the ceiling: 400 above it."""
    budgets = services.budgets
    if problem := budgets.over_ceiling(body.monthly_budget_usd):
        raise InvalidInput(problem)
    await asyncio.to_thread(services.store.set_monthly_budget, user, body.monthly_budget_usd)
    await budgets.set_own(user, body.monthly_budget_usd)
    return await _view(budgets, user)


async def _view(budgets: Budgets, user: str) -> BudgetView:
    budget, spent = await budgets.status(user)
    return BudgetView(
        monthly_budget_usd=budget,
        spent_this_month_usd=round(spent, 6),
        own_budget_usd=await budgets.own(user),
        operator_limit_usd=budgets.default_usd,
    )
