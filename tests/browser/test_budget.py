"""The monthly budget in Chromium: set it in the header, see the spend, and see the next turn
stopped with the budget's message where the conversation shows errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser


def test_budget_spend_shows_and_a_spent_budget_stops_the_turn(page: Page) -> None:
    sign_up(page, "budgeted@example.com")
    badge = page.locator("#budget")
    expect(badge).to_have_text("$0.00 this month")
    badge.click()
    page.locator("#budget-amount").fill("0.01")
    page.locator("#budget-save").click()
    expect(badge).to_have_text("$0.00 / $0.01 this month")
    expect(page.locator("#budget-amount")).to_have_count(0)  # the popover closed

    page.locator("#new-session").click()
    send(page, "echo within budget")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: within budget")
    expect(page.locator(".msg-result").last).to_contain_text("tokens")  # the turn is over
    expect(badge).to_have_text(re.compile(r"^\$0\.0[1-9] / \$0\.01 this month$"))

    send(page, "echo over budget")
    expect(page.locator("#error")).to_contain_text("Your monthly budget of $0.01 is spent")
    expect(page.locator("#error")).to_contain_text("raise it in Settings")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "budget.png"), full_page=True)


def test_budget_above_nothing_is_refused_in_the_form(page: Page) -> None:
    sign_up(page, "budget-typo@example.com")
    page.locator("#budget").click()
    page.locator("#budget-amount").fill("five")
    page.locator("#budget-save").click()
    expect(page.locator("#budget-problem")).to_contain_text("Type an amount in dollars")


def test_a_session_budget_is_set_at_its_start_and_stops_its_turn(page: Page) -> None:
    sign_up(page, "session-budget@example.com")
    amount = page.locator("#session-budget-amount")
    problem = page.locator("#session-budget-problem")
    amount.fill("0")
    expect(problem).to_have_text("A session's budget is more than $0 and at most $1,000,000.")
    amount.fill("cheap")
    expect(problem).to_contain_text("Type an amount in dollars")
    page.locator("#new-session").click()  # refused: no session starts with a bad budget
    expect(problem).to_be_visible()
    expect(page.locator("#session-budget")).to_have_count(0)

    amount.fill("$0.001")
    expect(problem).to_have_count(0)
    page.locator("#new-session").click()
    expect(page.locator("#session-budget")).to_have_text("session $0.0000 / $0.0010")
    send(page, "echo too dear")
    expect(page.locator("#error")).to_contain_text("This session's budget of $0.0010 is reached.")
    spent = page.locator("#session-budget")
    expect(spent).to_have_text(re.compile(r"^session \$0\.\d{4} / \$0\.0010$"))
    expect(spent).not_to_have_text("session $0.0000 / $0.0010")
    expect(page.locator("#budget")).to_contain_text("this month")  # the monthly one still shows
    page.screenshot(path=str(ARTIFACTS / "session-budget.png"), full_page=True)
