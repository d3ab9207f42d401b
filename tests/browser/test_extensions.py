"""Skills and plugins in the Projects tab: the agent writes a skill into the project, the user
installs it from that folder, switches it on for the project, and the next agent loads it (its
SKILL.md reaches the model); switched state survives a reload; removing it empties the list."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser

AGENT_S = 60_000
MAKE_SKILL = (
    "run bash mkdir -p skills/hi && printf -- "
    "'---\\nname: page-hello\\ndescription: Greets from the page\\n---\\nHello from the page "
    "skill.\\n' > skills/hi/SKILL.md && echo made-it"
)


def test_a_skill_is_installed_enabled_used_and_removed_in_the_page(page: Page) -> None:
    sign_up(page, "skills-user@example.com")
    page.locator("#new-session").click()
    send(page, MAKE_SKILL)
    page.locator(".approval .allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("made-it", timeout=AGENT_S)

    page.locator("#projects-tab").click()
    section = page.locator("#extensions-section")
    expect(section).to_contain_text("Skills and plugins")

    # A folder that is not a skill is refused, with why.
    section.locator("#extension-source").fill("skills")
    section.locator("#extension-install").click()
    expect(page.locator("#extension-error")).to_contain_text("Neither a skill")

    section.locator("#extension-source").fill("skills/hi")
    section.locator("#extension-install").click()
    item = section.locator(".extension")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("page-hello")
    expect(item).to_contain_text("skill")
    expect(item).to_contain_text("Greets from the page")
    expect(page.locator("#extension-notice")).to_contain_text("Installed the skill page-hello")

    switch = item.locator(".extension-on")
    expect(switch).to_have_attribute("data-state", "unchecked")
    switch.click()
    expect(switch).to_have_attribute("data-state", "checked")
    expect(page.locator("#extension-notice")).to_contain_text("started from now on")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extensions.png"), full_page=True)

    # The project's next agent has it: the CLI sends the skill's body to the model, which the
    # scripted model repeats.
    page.locator("#new-session").click()
    send(page, "use skill page-hello:page-hello")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_contain_text("Hello from the page skill.", timeout=AGENT_S)
    expect(answer).to_contain_text("/opt/agent/plugins/0/skills/page-hello")

    page.reload()
    page.locator("#projects-tab").click()
    item = page.locator("#extensions-section .extension")
    expect(item.locator(".extension-on")).to_have_attribute("data-state", "checked")
    item.locator(".extension-remove").click()
    expect(page.locator("#extensions-section .extension")).to_have_count(0)
    expect(page.locator("#extension-notice")).to_contain_text("Removed")


def test_what_is_typed_in_the_tab_stays_when_its_project_changes(page: Page) -> None:
    """The lists follow the current project; the install and environment forms keep the text
    the user is typing (the tab's project changes under it when it first loads, or here)."""
    sign_up(page, "typing-user@example.com")
    page.locator("#projects-tab").click()
    page.locator("#extension-source").fill("skills/half-typed")
    page.locator("#env-name").fill("HALF_TYPED")
    page.locator("#new-project").fill("second")
    page.locator("#new-project").press("Enter")
    page.locator("#projects-tab").click()
    expect(page.locator(".project-item", has_text="second")).to_be_visible()
    expect(page.locator("#extension-source")).to_have_value("skills/half-typed")
    expect(page.locator("#env-name")).to_have_value("HALF_TYPED")
