"""Sign-in in the browser: sessions survive reloads, tokens refresh, failures go to sign-in."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import RunningApp
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


def test_sign_out_revokes_the_token_everywhere(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "revoker@example.com")
    access = storage(page, "aw_access")
    second = page.context.new_page()  # another tab of the same browser
    second.goto("/")
    expect(second.locator("#new-session")).to_be_visible()
    assert api_status(reflex_app, access) == 200

    page.locator("#sign-out").click()
    expect(page).to_have_url(LOGIN)
    assert api_status(reflex_app, access) == 401, "the server refuses the signed-out token"
    # The other tab's state still holds that token: its next event (the rail's refresh every
    # few seconds, or a click) finds it revoked and the tab goes to sign in.
    expect(second).to_have_url(LOGIN, timeout=10_000)


def test_a_closed_tabs_client_token_alone_acts_as_nobody(page: Page, browser: Browser) -> None:
    sign_up(page, "closer@example.com")
    page.locator("#new-session").click()
    send(page, "echo words only the owner may read")
    expect(page.locator(".msg-assistant").last).to_have_text(
        "You said: words only the owner may read"
    )
    client_token = page.evaluate("window.sessionStorage.getItem('token')")
    assert client_token
    page.close()

    # Another browser with that tab's client token, but not its access token.
    context = browser.new_context(base_url=page.url.rsplit("/", 1)[0] + "/")
    context.add_init_script(f"window.sessionStorage.setItem('token', {client_token!r})")
    intruder = context.new_page()
    frames: list[str] = []
    intruder.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    intruder.goto("/")
    expect(intruder).to_have_url(LOGIN)
    assert intruder.evaluate("window.sessionStorage.getItem('token')") == client_token
    assert not any("words only the owner" in f for f in frames), "nothing of the owner's state"
    context.close()


def api_status(app: RunningApp, token: str) -> int:
    request = urllib.request.Request(
        app.api_url + "auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
