"""The agent's words are untrusted: known XSS payloads written by the (scripted) model render as
harmless text, and the page's Content-Security-Policy stops script that gets in anyway."""

from __future__ import annotations

import urllib.request

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import RunningApp
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser


def test_xss_payloads_in_an_answer_run_no_script(page: Page) -> None:
    violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", watch)
    sign_up(page, "xss@example.com")
    page.locator("#new-session").click()
    send(page, "show the payloads")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_contain_text("End of payloads.")
    page.wait_for_timeout(1000)  # time for any handler or frame to fire

    assert page.evaluate("window.__xss") is None, "no payload ran"
    assert violations == [], f"the app's own scripts all run under its policy: {violations}"
    for tag in ("iframe", "svg", "details", "img[onerror]", "a[href^='javascript']", "mglyph"):
        expect(answer.locator(tag)).to_have_count(0)
    # Raw HTML shows as text, for the reader to see what the agent wrote.
    expect(answer).to_contain_text('<iframe srcdoc="<script>parent.__xss=1</script>">')
    expect(answer).to_contain_text("<img src=x onerror=")
    hrefs = answer.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "https://example.com/docs" in hrefs
    assert not [h for h in hrefs if h and h.split(":")[0].lower() in ("javascript", "data")]
    fine = answer.get_by_text("a fine link")
    assert fine.get_attribute("rel") == "noopener noreferrer nofollow"
    assert fine.get_attribute("target") == "_blank"


def test_the_policy_blocks_script_that_gets_in_anyway(page: Page, reflex_app: RunningApp) -> None:
    with urllib.request.urlopen(reflex_app.url) as response:
        policy = response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    script_src = next(p for p in policy.split("; ") if p.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-src 'none'" in policy and "object-src 'none'" in policy

    sign_up(page, "csp@example.com")
    # As if a missed spot had put agent text into the page as HTML.
    injected = '<img src=x onerror="window.__xss=1"><a id=js href="javascript:window.__xss=2">x</a>'
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", injected)
    page.locator("#js").click()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None
