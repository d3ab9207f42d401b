"""Sign-in in the browser: sessions survive reloads, tokens refresh, failures go to sign-in."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser
LOGIN = re.compile(r".*/login$")


def storage(page: Page, key: str) -> str:
    return str(page.evaluate(f"window.localStorage.getItem('{key}')"))


def test_reload_keeps_the_user_signed_in_and_sign_out_ends_it(page: Page) -> None:
    sign_up(page, "reloader@example.com")
    page.reload()
    expect(page.locator("#new-session")).to_be_visible()
    expect(page).not_to_have_url(LOGIN)
    page.locator("#sign-out").click()
    expect(page).to_have_url(LOGIN)
    page.goto("/")
    expect(page).to_have_url(LOGIN)


def test_wrong_password_is_shown_where_the_user_looks(page: Page) -> None:
    sign_up(page, "typo@example.com")
    page.locator("#sign-out").click()
    expect(page).to_have_url(LOGIN)
    page.locator("#email").fill("typo@example.com")
    page.locator("#password").fill("not the password")
    page.locator("#sign-in").click()
    expect(page.locator("#auth-error")).to_have_text("Wrong e-mail or password.")


def test_an_expiring_token_is_refreshed_and_a_dead_one_sends_to_sign_in(page: Page) -> None:
    sign_up(page, "refresher@example.com")
    old = storage(page, "aw_access")
    page.evaluate(f"window.localStorage.setItem('aw_expires', '{int(time.time()) + 5}')")
    page.reload()
    expect(page.locator("#new-session")).to_be_visible()
    page.wait_for_function("old => window.localStorage.getItem('aw_access') !== old", arg=old)

    page.evaluate(f"window.localStorage.setItem('aw_expires', '{int(time.time()) + 5}')")
    page.evaluate("window.localStorage.setItem('aw_refresh', 'revoked-or-forged')")
    page.reload()
    expect(page).to_have_url(LOGIN)


def test_a_second_user_sees_none_of_the_first_users_sessions(page: Page) -> None:
    sign_up(page, "first@example.com")
    page.locator("#new-session").click()
    send(page, "echo first user's private words")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: first user's private words")
    page.locator("#sign-out").click()
    expect(page).to_have_url(LOGIN)

    sign_up(page, "second@example.com")
    expect(page.locator(".session-item")).to_have_count(0)
    expect(page.get_by_text("private words")).to_have_count(0)
