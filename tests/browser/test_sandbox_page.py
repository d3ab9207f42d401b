"""What the page says about the sandbox, and where the tab state pickles live."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REPO_ROOT, RunningApp, open_page, start_app
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def unconfined_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with start_app(
        tmp_path_factory.mktemp("unconfined"), name="web-unconfined", env={"AGENT_SANDBOX": "off"}
    ) as app:
        yield app


def test_without_a_sandbox_the_page_warns_for_good(
    browser: Browser, unconfined_app: RunningApp
) -> None:
    with open_page(browser, unconfined_app) as page:
        sign_up(page, "laptop@example.com")
        warning = page.locator("#sandbox-warning")
        expect(warning).to_contain_text("without a sandbox")
        page.locator("#new-session").click()
        send(page, "echo still works")
        expect(page.locator(".msg-assistant").last).to_have_text("You said: still works")
        page.reload()
        expect(warning).to_be_visible()


def test_with_the_sandbox_there_is_no_warning(page: Page) -> None:
    sign_up(page, "jailed@example.com")
    expect(page.locator("#new-session")).to_be_visible()
    expect(page.locator("#sandbox-warning")).to_have_count(0)
    expect(page.locator("#sandbox-problem")).to_have_count(0)


def test_tab_state_pickles_are_private_to_the_app(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "pickles@example.com")
    states = reflex_app.data_dir / "reflex-states"
    assert any(states.iterdir()), "the tab's state is saved there"
    for folder in (reflex_app.data_dir, states):
        mode = folder.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.getuid()
    assert not (REPO_ROOT / ".states").exists() or not any((REPO_ROOT / ".states").iterdir())
