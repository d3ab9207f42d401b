"""Workspaces in S3, in the browser: "back up now" on one machine, then a new machine (a fresh
disk, the same database and bucket) restores the project with its progress in the page, and
the conversation goes on."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import RunningApp, open_page, start_app
from tests.browser.test_chat import send, sign_in, sign_up
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
# Records, in the page, every sync banner that ever showed (a restore can be quick).
WATCH_BANNERS = """
window.__banners = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.sync-progress')) {
    if (!window.__banners.includes(el.innerText)) window.__banners.push(el.innerText);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

# Records that "Back up now" showed as busy (a backup of a few MB can be quick).
WATCH_BUSY = """
window.__busy = false;
new MutationObserver(() => {
  if (document.querySelector('#back-up-now:disabled')) window.__busy = true;
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


@pytest.fixture(scope="module")
def s3_env(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    shared = tmp_path_factory.mktemp("shared")
    return {
        "S3_BUCKET": s3_server.new_bucket(),
        "S3_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": f"sqlite:///{shared / 'app.db'}",
    }


Machine = Callable[[str], AbstractContextManager[RunningApp]]


@pytest.fixture
def machine(s3_env: dict[str, str], tmp_path: Path) -> Machine:
    """A machine of its own disk, sharing the database and the bucket."""
    return lambda name: start_app(tmp_path / name, name=f"web-{name}", env=s3_env)


def test_back_up_on_one_machine_restore_on_another(browser: Browser, machine: Machine) -> None:
    with machine("old") as old, open_page(browser, old) as page:
        page.add_init_script(WATCH_BUSY)
        sign_up(page, "mover@example.com")
        send(page, "echo remember the word heron")
        expect(page.locator(".msg-assistant").last).to_have_text(
            "You said: remember the word heron"
        )
        project = next((old.data_dir / "projects").glob("*/*"))
        for n in range(400):
            (project / "data" / f"{n // 100}").mkdir(parents=True, exist_ok=True)
            (project / "data" / f"{n // 100}" / f"f{n}.bin").write_bytes(os.urandom(40_000))
        page.get_by_role("tab", name="Projects").click()
        page.locator("#back-up-now").click()
        # The turn's own backup already showed "backed up at": wait for this one to have
        # started and ended.
        page.wait_for_function("() => window.__busy")  # a function: the page forbids eval
        expect(page.locator("#back-up-now")).to_be_enabled()
        expect(page.locator(".backed-up").first).to_contain_text("backed up at")

    with machine("new") as new:
        assert not (new.data_dir / "projects").exists()
        with open_page(browser, new) as page:
            page.add_init_script(WATCH_BANNERS)
            sign_in(page, "mover@example.com", PASSWORD)
            # The session, opened on the new machine, shows what was said on the old one.
            expect(page.locator(".msg-user").first).to_have_text("echo remember the word heron")
            send(page, "echo and here too")
            # A new machine: the workspace comes from S3 and a fresh agent starts first.
            expect(page.locator(".msg-assistant").last).to_have_text(
                "You said: and here too", timeout=60_000
            )
            banners = page.evaluate("window.__banners")
            assert any(b.startswith("Restoring default:") and "files" in b for b in banners), (
                banners
            )
        restored = list((new.data_dir / "projects").glob("*/*/data/*/*.bin"))
        assert len(restored) == 400
