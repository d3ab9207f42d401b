"""GitHub in the page, against the local stand-in: link the account in GitHub's own tab (the
page notices by itself), search and pick a repository and a branch, clone it into a new
project with git's progress as a bar, open that project, unlink. The token never reaches the
browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from app.devtools.github import GitHubStandIn
from tests.browser.conftest import ARTIFACTS, RunningApp, open_page, start_app
from tests.browser.test_chat import sign_up

pytestmark = pytest.mark.browser
FILES = {"README.md": "# demo\n", "src/app.py": "print('hello')\n"}
EXTRA_REPOS = 32  # with alice/demo, more than one page (30) of repositories
# Records, in the page, every text the clone's progress showed (a small clone is quick).
WATCH_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  const el = document.querySelector('#clone-phase');
  if (el && !window.__progress.includes(el.innerText)) window.__progress.push(el.innerText);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path_factory.mktemp("github")) as github:
        github.add_user("alice")
        github.add_repo("alice", "demo", FILES, branches={"feature": {"NEW.md": "new\n"}})
        for n in range(EXTRA_REPOS):
            github.add_repo("alice", f"extra-{n:02}", {"x.txt": str(n)}, private=False)
        github.signed_in_as = "alice"
        yield github


@pytest.fixture(scope="module")
def github_app(
    stand_in: GitHubStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    env = {
        "GITHUB_URL": stand_in.web_url,
        "GITHUB_API_URL": stand_in.api_url,
        "GITHUB_OAUTH_CLIENT_ID": stand_in.client_id,
        "GITHUB_OAUTH_CLIENT_SECRET": stand_in.client_secret,
    }
    with start_app(Path(tmp_path_factory.mktemp("github-data")), name="web-github", env=env) as app:
        yield app


@pytest.fixture
def github_page(browser: Browser, github_app: RunningApp) -> Iterator[Page]:
    with open_page(browser, github_app) as page:
        yield page


def _record_frames(page: Page) -> list[str]:
    """Every frame the page receives over its websockets, as text."""
    frames: list[str] = []

    def on_socket(socket: WebSocket) -> None:
        socket.on(
            "framereceived",
            lambda payload: frames.append(
                payload if isinstance(payload, str) else payload.decode(errors="replace")
            ),
        )

    page.on("websocket", on_socket)
    return frames


def test_link_pick_a_branch_clone_open_and_unlink(
    github_page: Page, github_app: RunningApp, stand_in: GitHubStandIn
) -> None:
    page = github_page
    frames = _record_frames(page)
    page.add_init_script(WATCH_PROGRESS)
    sign_up(page, "alice@example.com")
    page.locator("#projects-tab").click()
    expect(page.locator("#github-scope")).to_contain_text(
        "repo scope: clone, push and open pull requests on your repositories"
    )
    page.screenshot(path=str(ARTIFACTS / "github-link.png"))

    with page.context.expect_page() as opened:
        page.locator("#link-github").click()
    github_tab = opened.value
    expect(github_tab.locator("#login")).to_have_text("alice")
    expect(github_tab.locator("#scopes")).to_contain_text("repo")
    github_tab.locator("#authorize").click()
    expect(github_tab.locator("#message")).to_have_text("Linked as alice. You can close this tab.")
    github_tab.close()

    # The page noticed by itself, and lists the repositories: 30 a page, then more.
    expect(page.locator("#github-login")).to_have_text("alice")
    expect(page.locator(".repo-item")).to_have_count(30)
    page.screenshot(path=str(ARTIFACTS / "github-repositories.png"))
    page.locator("#more-repos").click()
    expect(page.locator(".repo-item")).to_have_count(EXTRA_REPOS + 1)
    expect(page.locator("#more-repos")).to_have_count(0)

    page.locator("#github-search").fill("demo")
    expect(page.locator(".repo-item")).to_have_count(1)
    expect(page.locator(".repo-item")).to_contain_text("alice/demo")
    expect(page.locator(".repo-item")).to_contain_text("private")
    page.locator(".repo-item").click()
    expect(page.locator("#github-chosen")).to_contain_text("alice/demo")
    expect(page.locator("#github-branch")).to_have_text("main")  # the default, preselected
    expect(page.locator("#github-project")).to_have_value("demo")
    page.locator("#github-branch").click()
    page.get_by_role("option", name="feature").click()
    expect(page.locator("#github-branch")).to_have_text("feature")
    page.locator("#github-new-branch").fill("work")
    page.screenshot(path=str(ARTIFACTS / "github-chosen.png"))

    page.locator("#clone").click()
    expect(page.locator("#clone-progress")).to_be_visible()
    expect(page.locator("#clone-phase")).to_have_text("Cloned alice/demo into demo")
    expect(page.locator("#clone-progress [role=progressbar]")).to_have_attribute(
        "aria-valuenow", "100"
    )
    expect(page.locator("#project")).to_have_text("demo")  # the new project is open
    expect(page.locator(".project-item", has_text="demo")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "github-cloned.png"))
    shown = page.evaluate("window.__progress")
    print("progress shown:", shown)
    assert shown[0].startswith("Starting") and shown[-1] == "Cloned alice/demo into demo"

    [new_file] = list((github_app.data_dir / "projects").rglob("NEW.md"))  # from `feature`
    folder = new_file.parent
    assert (folder / "src" / "app.py").read_text() == FILES["src/app.py"]
    assert (folder / ".git" / "HEAD").read_text().strip() == "ref: refs/heads/work"

    # Cloning into the same project again: GitHub's words, where the user is looking.
    page.locator("#clone").click()
    expect(page.locator("#github-error")).to_contain_text("That project already has files")

    tokens = [t for t, held in stand_in.store.tokens.items() if held.login == "alice"]
    used = {r["authorization"] for r in stand_in.requests}
    assert tokens and any(f"Bearer {t}" in used for t in tokens)  # the app's own calls
    received = "\n".join(frames)
    assert "alice/demo" in received  # the recording works...
    assert not any(token in received for token in tokens)  # ...and the token never came

    page.locator("#unlink-github").click()
    page.locator("#confirm-unlink").click()
    expect(page.locator("#link-github")).to_be_visible()
    expect(page.locator("#github-login")).to_have_count(0)


def test_a_page_without_github_says_how_to_set_it_up(page: Page) -> None:
    sign_up(page, "nogithub@example.com")
    page.locator("#projects-tab").click()
    said = page.locator("#github-not-set-up")
    expect(said).to_contain_text("GitHub is not set up here")
    expect(said).to_contain_text("GITHUB_OAUTH_CLIENT_ID")
    expect(said).to_contain_text("/oauth/github/callback")
    page.screenshot(path=str(ARTIFACTS / "github-not-set-up.png"))
    expect(page.locator("#link-github")).to_have_count(0)
