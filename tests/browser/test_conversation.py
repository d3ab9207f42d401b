"""The conversation view in Chromium: stopping, reloading mid-stream, old sessions, long
histories, questions and "always allow"."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from app.db.engine import open_database
from app.db.models import AgentSession, User
from tests.browser.conftest import ARTIFACTS, RunningApp
from tests.browser.test_chat import send, sign_up

pytestmark = pytest.mark.browser
WORD = re.compile(r"\bw(\d+)\b")


def words_shown(page: Page) -> list[int]:
    return [int(n) for n in WORD.findall(page.locator("#conversation").inner_text())]


def test_stop_a_long_stream_and_go_on(page: Page) -> None:
    sign_up(page, "stopper@example.com")
    page.locator("#new-session").click()
    send(page, "long story")
    expect(page.locator("#streaming")).to_contain_text("w10")
    page.locator("#stop").click()
    expect(page.locator("#send")).to_be_visible()
    shown = words_shown(page)
    assert shown and max(shown) < 400, "the 400-word answer was cut short"
    send(page, "echo still listening")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: still listening")


def test_reload_mid_stream_continues_without_duplicates(page: Page) -> None:
    sign_up(page, "reload-mid@example.com")
    page.locator("#new-session").click()
    send(page, "long story")
    expect(page.locator("#streaming")).to_contain_text("w40")
    page.reload()
    expect(page.locator(".msg-assistant").last).to_contain_text("w400", timeout=30_000)
    shown = words_shown(page)
    assert shown == list(range(1, 401)), "every word once, in order"
    assert page.locator(".msg-user").count() == 1
    page.screenshot(path=str(ARTIFACTS / "after-reload.png"), full_page=True)


def test_a_streamed_answer_crosses_the_socket_once(page: Page) -> None:
    """The finished answer names the stream the page recorded instead of carrying the text
    again; the page shows it whole, also after the next answer streams and after a reload."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    sign_up(page, "once@example.com")
    page.locator("#new-session").click()
    send(page, "quick story")  # 2,000 words
    expect(page.locator(".msg-assistant").last).to_contain_text("w2000", timeout=30_000)
    assert words_shown(page) == list(range(1, 2001)), "every word once, in order"
    received = "".join(frames)
    for word in ("w1 ", "w999 ", "w1999 "):
        assert received.count(word) == 1, f"{word!r} crossed the socket more than once"
    text_chars = len(" ".join(f"w{k}" for k in range(1, 2001)))
    assert sum(len(f.encode()) for f in frames) < 2 * text_chars + 20_000

    # The next answer streams into the same slots: the first still shows whole.
    send(page, "echo and another")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: and another")
    expect(page.locator(".msg-assistant")).to_have_count(2)
    assert words_shown(page) == list(range(1, 2001))

    # A reloaded page holds no copy: it gets the history's text.
    page.reload()
    expect(page.locator(".msg-assistant")).to_have_count(2)
    expect(page.locator(".msg-assistant").first).to_contain_text("w2000")
    assert words_shown(page) == list(range(1, 2001))


def test_open_an_old_session_shows_its_history(page: Page) -> None:
    sign_up(page, "historian@example.com")
    page.locator("#new-session").click()
    send(page, "echo the first conversation")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: the first conversation")
    page.locator("#new-session").click()
    expect(page.locator(".msg-user")).to_have_count(0)
    send(page, "echo the second conversation")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: the second conversation")

    page.locator(".session-item", has_text="echo the first conversation").locator(
        ".session-title"
    ).click()
    expect(page.locator(".msg-assistant").last).to_have_text("You said: the first conversation")
    expect(page.locator("#title")).to_have_text("echo the first conversation")
    page.screenshot(path=str(ARTIFACTS / "sessions.png"), full_page=True)


def test_opening_a_stopped_session_starts_its_agent_before_the_prompt(
    page: Page, reflex_app: RunningApp
) -> None:
    """The agent's start (a second or so) passes while the user reads and types."""
    sign_up(page, "warm@example.com")
    page.locator("#new-session").click()
    send(page, "echo before the agent stopped")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: before the agent stopped")
    token = page.evaluate("localStorage.getItem('aw_access')")
    api = httpx.Client(
        base_url=reflex_app.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    with api:
        session_id = api.get("/sessions").json()["sessions"][0]["session_id"]
        assert api.delete(f"/sessions/{session_id}").status_code == 204  # as when idle
        page.locator("#new-session").click()
        expect(page.locator(".msg-user")).to_have_count(0)

        page.locator(".session-item", has_text="before the agent stopped").locator(
            ".session-title"
        ).click()
        expect(page.locator(".msg-user")).to_have_count(1)
        deadline = time.monotonic() + 60
        while session_id not in [s["session_id"] for s in api.get("/sessions").json()["sessions"]]:
            assert time.monotonic() < deadline, "opening the session did not start its agent"
            page.wait_for_timeout(200)
    send(page, "echo after opening")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: after opening")


def test_a_5000_message_session_opens_on_its_latest_page(
    page: Page, reflex_app: RunningApp
) -> None:
    sign_up(page, "long-history@example.com")
    page.locator("#new-session").click()
    expect(page.locator(".session-item")).to_have_count(1)
    session_id, user_id = _latest_session(reflex_app, "long-history@example.com")
    _write_transcript(reflex_app.data_dir / "homes" / user_id, session_id, messages=5000)

    page.reload()
    expect(page.locator(".msg-assistant").last).to_have_text("answer 2499")
    assert page.locator(".msg").count() <= 120, "only the latest page is rendered"
    page.locator("#load-older").click()
    expect(page.locator(".msg-user", has_text="question 2400")).to_have_count(1)
    expect(page.locator(".msg-assistant").last).to_have_text("answer 2499")


def test_always_allow_shows_the_rule_it_adds(page: Page) -> None:
    sign_up(page, "rules@example.com")
    page.locator("#new-session").click()
    send(page, "run bash touch ruled.txt")
    card = page.locator(".approval")
    expect(card.locator(".rule")).to_have_text(
        "Always allow adds the rule: allow Bash(touch ruled.txt)"
    )
    page.screenshot(path=str(ARTIFACTS / "always-allow.png"), full_page=True)
    card.locator(".allow-always").click()
    expect(page.locator(".msg-assistant").last).to_have_text(
        "Output: (Bash completed with no output)"
    )
    send(page, "run bash touch ruled.txt")
    expect(page.locator(".msg-assistant")).to_have_count(2)
    expect(page.locator(".approval")).to_have_count(0)


def test_ask_user_question_is_a_form(page: Page) -> None:
    sign_up(page, "asked@example.com")
    page.locator("#new-session").click()
    send(page, "ask me something")
    card = page.locator(".approval")
    expect(card).to_contain_text("Which colour?")
    card.get_by_text("Blue").click()
    card.locator(".send-answers").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("Blue")


def _latest_session(app: RunningApp, email: str) -> tuple[str, str]:
    engine = open_database(f"sqlite:///{app.data_dir / 'app.db'}")
    with Session(engine) as db:
        user = db.exec(select(User).where(User.email == email)).one()
        row = db.exec(select(AgentSession).where(AgentSession.user_id == user.id)).first()
        assert row is not None
        row.has_transcript = True
        db.add(row)
        db.commit()
        return row.id, user.id


def _write_transcript(home: Path, session_id: str, messages: int) -> None:
    folder = home / ".claude" / "projects" / "-synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{session_id}.jsonl").open("w") as f:
        for i in range(messages // 2):
            for kind, text in (("user", f"question {i}"), ("assistant", f"answer {i}")):
                content = text if kind == "user" else [{"type": "text", "text": text}]
                f.write(
                    json.dumps(
                        {
                            "type": kind,
                            "uuid": f"{kind}{i}",
                            "sessionId": session_id,
                            "message": {"role": kind, "content": content},
                        }
                    )
                    + "\n"
                )


def test_model_errors_show_in_the_conversation_and_the_input_stays_usable(page: Page) -> None:
    sign_up(page, "errors@example.com")
    page.locator("#new-session").click()
    send(page, "model error please")
    expect(page.locator(".msg-error").last).to_contain_text("529")
    expect(page.locator("#send")).to_be_visible()
    send(page, "echo after the error")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: after the error")


def test_the_rail_shows_other_sessions_waiting_for_approval(page: Page) -> None:
    sign_up(page, "badges@example.com")
    page.locator("#new-session").click()
    send(page, "write waiting.txt")
    expect(page.locator(".approval")).to_be_visible()
    page.locator("#new-session").click()
    expect(page.locator(".approval")).to_have_count(0)
    waiting = page.locator(".session-item", has_text="write waiting.txt")
    expect(waiting.locator(".waiting-badge")).to_be_visible()
    waiting.locator(".session-title").click()
    page.locator(".approval .allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("Write result")
    expect(waiting.locator(".waiting-badge")).to_have_count(0, timeout=10_000)


def test_phone_width_puts_the_rail_in_a_drawer(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_up(page, "phone@example.com")
    send(page, "echo from my phone")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: from my phone")
    page.locator("#open-rail").click()
    expect(page.get_by_role("dialog").get_by_text("echo from my phone")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "phone.png"))
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.locator("#theme").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    page.screenshot(path=str(ARTIFACTS / "phone-dark.png"))


def test_mode_and_model_pickers_and_the_files_tab(page: Page) -> None:
    sign_up(page, "pickers@example.com")
    page.locator("#new-session").click()
    expect(page.locator("#mode-picker")).to_be_visible()
    page.locator("#mode-picker").click()
    page.get_by_role("option", name="acceptEdits").click()
    page.locator("#model-picker").click()
    page.get_by_role("option", name="claude-haiku-4-5").click()
    expect(page.locator("#model-picker")).to_have_text("claude-haiku-4-5")
    send(page, "write picked.txt")
    expect(page.locator(".msg-assistant").last).to_contain_text("Write result")
    expect(page.locator(".approval")).to_have_count(0)  # acceptEdits let the edit through

    page.locator("#files-tab").click()
    page.locator(".file-item", has_text="picked.txt").click()
    expect(page.get_by_role("dialog")).to_contain_text("scripted content")


def test_rename_search_page_and_delete_sessions(page: Page, reflex_app: RunningApp) -> None:
    sign_up(page, "organiser@example.com")
    page.locator("#new-session").click()
    send(page, "echo keep me")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: keep me")
    _, user_id = _latest_session(reflex_app, "organiser@example.com")
    _add_sessions(reflex_app, user_id, count=120)
    page.reload()

    items = page.locator("#session-list .session-item")
    expect(items).to_have_count(50)
    page.locator("#more-sessions").click()
    expect(items).to_have_count(100)

    page.locator("#search").fill("bulk session 10")
    expect(items).to_have_count(11)  # 10 and 100-109
    page.locator("#search").fill("echo keep")
    expect(items).to_have_count(1)

    items.first.locator(".session-menu").click()
    page.get_by_role("menuitem", name="Rename").click()
    page.locator(".rename-input input").fill("Renamed by hand")
    page.locator(".rename-input input").press("Enter")
    page.locator("#search").fill("")
    expect(page.locator(".session-item", has_text="Renamed by hand")).to_have_count(1)

    page.locator("#search").fill("bulk session 7")
    expect(items).to_have_count(11)  # 7 and 70-79
    exact = page.locator(
        ".session-item",
        has=page.locator(".session-title", has_text=re.compile(r"^bulk session 7$")),
    )
    exact.locator(".session-menu").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.locator("#confirm-delete").click()
    expect(items).to_have_count(10)
    expect(exact).to_have_count(0)


def _add_sessions(app: RunningApp, user_id: str, count: int) -> None:
    engine = open_database(f"sqlite:///{app.data_dir / 'app.db'}")
    with Session(engine) as db:
        for i in range(count):
            db.add(AgentSession(user_id=user_id, project_id="none", title=f"bulk session {i}"))
        db.commit()


SOCKET_SPY = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    window.__sockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def test_a_dropped_connection_resumes_the_stream_without_loss(page: Page) -> None:
    page.add_init_script(SOCKET_SPY)
    sign_up(page, "reconnect@example.com")
    page.locator("#new-session").click()
    send(page, "long story")
    expect(page.locator("#streaming")).to_contain_text("w30")
    page.evaluate("window.__sockets.forEach(s => s.close())")
    expect(page.locator(".msg-assistant").last).to_contain_text("w400", timeout=30_000)
    assert words_shown(page) == list(range(1, 401)), "every word once, in order"
    assert page.evaluate("window.__sockets.length") >= 2, "the page reconnected"


def test_the_view_follows_the_stream_to_the_newest_approval(page: Page) -> None:
    page.set_viewport_size({"width": 1280, "height": 600})
    sign_up(page, "scroller@example.com")
    page.locator("#new-session").click()
    send(page, "long story")
    expect(page.locator(".msg-assistant").last).to_contain_text("w400", timeout=30_000)
    send(page, "write scrolled.txt")
    # The agent's answer, as every wait for one here: agents yield the CPU (AGENT_NICENESS)
    # to the other tests' browsers and builds running beside them.
    expect(page.locator(".approval .allow-once")).to_be_in_viewport(timeout=60_000)
