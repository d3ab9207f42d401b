"""The Git tab against the GitHub stand-in: a project cloned from alice/demo, changed by the
agent (and on disk), shows its branch, changed files and coloured diffs; a new branch, a
commit, a push that lands on GitHub, a pull request drafted from the session and opened with
the user's title; then a push to a protected branch, refused in GitHub's words. A project not
cloned from GitHub still commits, and says why it cannot push. Unchecked files stay out of a
commit, and a discard, once confirmed, puts a file back as committed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.devtools.github import GitHubStandIn
from tests.api.test_git import _commit_on_github
from tests.api.test_github import FILES
from tests.browser.conftest import ARTIFACTS, RunningApp
from tests.browser.test_chat import send, sign_up
from tests.browser.test_github import (  # noqa: F401 (the stand-in and the app on it)
    github_app,
    github_page,
    stand_in,
)

pytestmark = pytest.mark.browser
AGENT_S = 20_000  # a turn of the agent (the scripted model), and the tab noticing its end
INIT = "run bash git init -q -b main && echo hello > hello.txt"  # as the agent would


def link_github(page: Page) -> None:
    """OAuth's web flow as the user goes through it: GitHub's tab, Authorize, back."""
    page.locator("#projects-tab").click()
    with page.context.expect_page() as opened:
        page.locator("#link-github").click()
    github_tab = opened.value
    github_tab.locator("#authorize").click()
    expect(github_tab.locator("#message")).to_contain_text("Linked as alice")
    github_tab.close()
    expect(page.locator("#github-login")).to_have_text("alice")


def clone_demo(page: Page, app: RunningApp) -> Path:
    """alice/demo cloned into a new project "demo" (which opens a session in it); its folder."""
    before = set((app.data_dir / "projects").rglob(".git/HEAD"))
    page.locator("#github-search").fill("demo")
    expect(page.locator(".repo-item")).to_have_count(1)
    page.locator(".repo-item").click()
    expect(page.locator("#github-branch")).to_have_text("main")
    page.locator("#clone").click()
    expect(page.locator("#project")).to_have_text("demo")
    [head] = set((app.data_dir / "projects").rglob(".git/HEAD")) - before
    return head.parent.parent


def git(folder: Path, *args: str) -> str:
    """git on the project, run by the test (the app itself only runs git in the jail)."""
    return subprocess.run(
        ["git", "-c", f"safe.directory={folder}", "-C", str(folder), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def head_of(folder: Path) -> str:
    return git(folder, "rev-parse", "HEAD")


def commit(page: Page, message: str) -> None:
    result = page.locator("#commit-result")
    earlier = result.all_inner_texts()  # an earlier commit's "Committed ..." may still show
    page.locator("#commit-message").fill(message)
    page.locator("#commit").click()
    if earlier:
        expect(result).not_to_have_text(earlier[0])
    expect(result).to_contain_text("Committed")


def test_status_diff_branch_commit_push_and_pull_request(
    github_page: Page,  # noqa: F811
    github_app: RunningApp,  # noqa: F811
    stand_in: GitHubStandIn,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = github_page
    started = time.monotonic()
    sign_up(page, "gitpanel@example.com")
    link_github(page)
    folder = clone_demo(page, github_app)

    page.locator("#git-tab").click()
    expect(page.locator("#git-branch")).to_have_text("main")
    expect(page.locator("#git-project")).to_contain_text("alice/demo")
    expect(page.locator(".git-file")).to_have_count(0)

    # The agent writes a file (approved); the tab shows it when the turn ends, unasked.
    send(page, "write notes.md")
    page.locator(".approval .allow-once").click()
    expect(page.locator(".git-file", has_text="notes.md")).to_contain_text("?", timeout=AGENT_S)
    # A change on disk made some other way shows on Refresh.
    (folder / "README.md").write_text("# demo\n\nNow with notes.\n")
    page.locator("#git-refresh").click()
    readme = page.locator(".git-file", has_text="README.md")
    expect(readme).to_contain_text("M")
    readme.click()
    diff = page.locator("#git-diff")
    expect(diff.locator(".add")).to_have_text(["+", "+Now with notes."])
    expect(diff.locator(".hunk")).to_have_count(1)
    added = diff.locator(".add").last.evaluate("e => getComputedStyle(e).color")
    context = diff.locator(".ctx").first.evaluate("e => getComputedStyle(e).color")
    assert added != context, "added lines are coloured"
    page.locator(".git-file", has_text="notes.md").click()
    expect(diff.locator(".add")).to_have_text(["+scripted content"])
    page.screenshot(path=str(ARTIFACTS / "git-panel-diff.png"))

    page.locator("#new-branch").fill("feature-x")
    page.locator("#create-branch").click()
    expect(page.locator("#git-branch")).to_have_text("feature-x")
    expect(page.locator(".git-file")).to_have_count(2)  # the changes came along

    commit(page, "Add notes")
    sha = head_of(folder)
    expect(page.locator("#commit-result")).to_have_text(f"Committed {sha[:7]} on feature-x.")
    expect(page.locator(".git-file")).to_have_count(0)
    expect(page.locator("#git-diff")).to_have_count(0)

    page.locator("#push").click()
    expect(page.locator("#push-result")).to_have_text("Pushed feature-x to alice/demo.")
    assert stand_in.head_of("alice", "demo", "feature-x") == sha

    # The pull request is drafted from the session and the branch's commits.
    page.locator("#pr-start").click()
    expect(page.locator("#pr-title")).to_have_value("write notes.md")
    drafted = f"Commits on this branch:\n\n- Add notes ({sha[:7]})\n"
    expect(page.locator("#pr-body")).to_have_value(drafted)
    expect(page.locator("#pr-base")).to_have_value("main")
    page.locator("#pr-title").fill("Notes for the demo")
    page.locator("#open-pr").click()
    link = page.locator("#pr-link")
    expect(link).to_be_visible()
    [pull] = stand_in.pulls
    assert pull["title"] == "Notes for the demo"
    assert pull["head"]["ref"] == "feature-x" and pull["base"]["ref"] == "main"
    expect(link).to_have_attribute("href", pull["html_url"])
    expect(link).to_have_attribute("target", "_blank")
    page.screenshot(path=str(ARTIFACTS / "git-panel-pull-request.png"))

    # Someone else pushed to the branch on GitHub: Pull brings it in.
    _commit_on_github(stand_in, tmp_path, "feature-x", {"REVIEW.md": "looks good\n"})
    page.locator("#pull").click()
    expect(page.locator("#push-result")).to_have_text("Pulled feature-x.")
    assert (folder / "REVIEW.md").read_text() == "looks good\n"

    # main is protected on GitHub: the push is refused, in words, where the user looks.
    stand_in.protect("alice", "demo", "main")
    page.locator("#switch-branch").click()
    page.get_by_role("option", name="main").click()
    expect(page.locator("#git-branch")).to_have_text("main")
    (folder / "straight-to-main.txt").write_text("no review\n")
    page.locator("#git-refresh").click()
    expect(page.locator(".git-file")).to_have_count(1)
    commit(page, "Straight to main")
    before = stand_in.head_of("alice", "demo", "main")
    page.locator("#push").click()
    expect(page.locator("#push-result")).to_contain_text("protected")
    assert stand_in.head_of("alice", "demo", "main") == before
    page.screenshot(path=str(ARTIFACTS / "git-panel-protected.png"))
    print(f"git panel: {time.monotonic() - started:.1f} s")


def test_a_project_not_from_github_commits_but_does_not_push(
    github_page: Page,  # noqa: F811
    github_app: RunningApp,  # noqa: F811
) -> None:
    page = github_page
    sign_up(page, "plain@example.com")
    page.locator("#projects-tab").click()
    page.locator("#new-project").fill("plain")
    page.locator("#new-project").press("Enter")
    expect(page.locator("#project")).to_have_text("plain")

    page.locator("#git-tab").click()
    expect(page.locator("#git-error")).to_contain_text("not a git repository yet")
    send(page, INIT)
    page.locator(".approval .allow-once").click()
    # When the turn ends the tab looks again: a repository now.
    expect(page.locator("#git-branch")).to_have_text("main", timeout=AGENT_S)
    expect(page.locator("#git-error")).to_have_count(0)
    expect(page.locator("#git-project")).to_contain_text("not cloned from GitHub")
    expect(page.locator(".git-file", has_text="hello.txt")).to_be_visible()
    commit(page, "First")
    page.locator("#commit-message").fill("Again")
    page.locator("#commit").click()
    expect(page.locator("#commit-result")).to_contain_text("Nothing to commit")
    page.locator("#push").click()
    expect(page.locator("#push-result")).to_contain_text("This project was not cloned from GitHub")
    page.locator("#pr-start").click()
    expect(page.locator("#pr-title")).to_have_value(INIT)  # the session's first prompt
    page.locator("#open-pr").click()
    expect(page.locator("#pr-result")).to_contain_text("This project was not cloned from GitHub")


def test_commit_only_the_checked_files_then_discard_the_rest(
    github_page: Page,  # noqa: F811
    github_app: RunningApp,  # noqa: F811
) -> None:
    page = github_page
    sign_up(page, "gitpick@example.com")
    link_github(page)
    folder = clone_demo(page, github_app)
    page.locator("#git-tab").click()
    expect(page.locator("#git-branch")).to_have_text("main")

    (folder / "README.md").write_text("# demo, committed\n")
    (folder / "src" / "app.py").write_text("print('not this time')\n")
    page.locator("#git-refresh").click()
    expect(page.locator(".git-file")).to_have_count(2)
    expect(page.locator("#commit")).to_have_text("Commit all")
    app_py = page.locator(".git-file", has_text="src/app.py")
    app_py.locator(".git-check").click()
    expect(app_py.locator(".git-check")).not_to_be_checked()
    expect(page.locator(".git-file", has_text="README.md").locator(".git-check")).to_be_checked()
    expect(page.locator("#commit")).to_have_text("Commit the checked files (1)")
    commit(page, "Only the readme")
    assert git(folder, "show", "--name-only", "--format=%s", "HEAD").split() == [
        "Only", "the", "readme", "README.md",
    ]  # fmt: skip
    expect(page.locator(".git-file")).to_have_count(1)
    expect(app_py).to_be_visible()
    expect(app_py.locator(".git-check")).not_to_be_checked()  # still left out
    assert git(folder, "status", "--porcelain") == "M src/app.py"

    app_py.locator(".git-discard").click()
    dialog = page.locator("#discard-dialog")
    expect(dialog).to_contain_text("Discard changes to src/app.py?")
    expect(dialog).to_contain_text("This cannot be undone")
    page.screenshot(path=str(ARTIFACTS / "git-panel-discard.png"))
    page.locator("#confirm-discard").click()
    expect(page.locator("#discard-result")).to_have_text("Discarded the changes to src/app.py.")
    expect(page.locator(".git-file")).to_have_count(0)
    assert (folder / "src" / "app.py").read_text() == FILES["src/app.py"]

    # Discard all lists what goes; Cancel keeps it.
    (folder / "README.md").write_text("# again\n")
    (folder / "scratch.txt").write_text("scratch\n")
    page.locator("#git-refresh").click()
    expect(page.locator(".git-file")).to_have_count(2)
    page.locator("#discard-all").click()
    expect(dialog).to_contain_text("Discard the changes to these 2 files?")
    expect(dialog).to_contain_text("scratch.txt")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert (folder / "scratch.txt").exists()
    page.locator("#discard-all").click()
    page.locator("#confirm-discard").click()
    expect(page.locator("#discard-result")).to_have_text("Discarded the changes to 2 files.")
    expect(page.locator(".git-file")).to_have_count(0)
    assert not (folder / "scratch.txt").exists()
    assert (folder / "README.md").read_text() == "# demo, committed\n"
