"""The deployed topology, locally: the static export served with Amplify's rewrite rule, sign-in
against Cognito (moto) from the static page alone, the page's Reflex socket through the
AgentCore emulator (JWT authorizer, only three paths, one container process with an empty disk
per runtime session, a short connection limit) into `python -m app.container`, workspaces in S3
(SeaweedFS) and one shared database, as in AWS."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.devtools.local_aws import LocalAws, LocalAwsSettings
from tests.browser.conftest import ARTIFACTS, SCENARIO, _free_port
from tests.browser.test_chat import send
from tests.browser.test_conversation import words_shown
from tests.browser.test_terminal import screen, type_command
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server

pytestmark = pytest.mark.browser
PASSWORD = "Correct-Horse-9"
USERS = ("alice@example.com", "bob@example.com", "carol@example.com", "erin@example.com")
CONNECTION_LIMIT_S = 6.0  # AgentCore closes every socket after 60 minutes; here, after 6 s
REFLEX_PARAMETER = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex"
RUNTIME_PREFIX = "agent-web-workspace-"  # socket.js: the runtime session id is this + `sub`


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[LocalAws]:
    settings = LocalAwsSettings(
        data_dir=tmp_path_factory.mktemp("local-aws"),
        site_port=_free_port(),
        emulator_port=_free_port(),
        web_workdir=ARTIFACTS / "web-agentcore",
        s3_endpoint=s3_server.endpoint,
        s3_keys={"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        container_env={
            "DEMO_MODEL": "on",
            "DEMO_SCENARIO": str(SCENARIO),
            "CLAUDE_CODE_MAX_RETRIES": "0",
        },
        connection_limit_s=CONNECTION_LIMIT_S,
    )
    with LocalAws(settings) as aws:
        cognito = aws.cognito()
        for email in USERS:
            cognito.admin_create_user(
                UserPoolId=aws.pool_id,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
            cognito.admin_set_user_password(
                UserPoolId=aws.pool_id, Username=email, Password=PASSWORD, Permanent=True
            )
        yield aws


@pytest.fixture
def site_page(browser: Browser, topology: LocalAws) -> Iterator[Page]:
    context = browser.new_context(base_url=topology.site_url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Page, email: str, *, boots: bool = False) -> None:
    """From the static site alone: no socket opens before the page holds a token."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r".*/signin\.html\?next=.*"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    if boots:  # the user's first connection starts their microVM: the page says so meanwhile
        expect(page.locator("#aw-starting")).to_contain_text("Starting your workspace")
    # Signed in and hydrated over the socket, once the user's microVM has booted.
    expect(page.locator("#user-email")).to_have_text(email, timeout=90_000)
    expect(page.locator("#aw-starting")).to_have_count(0)


def _token(topology: LocalAws, email: str) -> str:
    answer = topology.cognito().initiate_auth(
        ClientId=topology.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def _runtime_session(token: str) -> str:
    claims = token.split(".")[1]
    return RUNTIME_PREFIX + json.loads(base64.urlsafe_b64decode(claims + "==="))["sub"]


def test_sign_in_on_the_static_site_then_chat_and_approve(
    site_page: Page, topology: LocalAws
) -> None:
    page = site_page
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    unknown = page.goto("/no/such/page")  # Amplify's rewrite: the SPA fallback, 200
    assert unknown is not None and unknown.status == 200
    expect(page).to_have_url(re.compile(r".*/signin\.html\?next=%2Fno%2Fsuch%2Fpage$"))
    sign_in(page, USERS[0], boots=True)
    runtime_path = urlsplit(topology.emulator.ws_url()).path  # /runtimes/<encoded ARN>/ws
    assert sockets and all(urlsplit(url).path == runtime_path for url in sockets)
    page.locator("#new-session").click()
    send(page, "echo hello through agentcore")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: hello through agentcore")

    send(page, "write approved.txt")
    page.locator(".approval .allow-once").click()
    expect(page.locator(".msg-assistant").last).to_contain_text("Write result")

    # The terminal works over the runtime's socket too.
    page.locator("#terminal-toggle").click()
    expect(screen(page)).to_contain_text("agent@agent", timeout=30_000)
    type_command(page, "ls; echo through-the-runtime-$((6 * 7))")
    expect(screen(page)).to_contain_text("through-the-runtime-42")
    expect(screen(page)).to_contain_text("approved.txt")


def test_a_stream_survives_the_connection_limit_and_a_reload(
    site_page: Page, topology: LocalAws
) -> None:
    page = site_page
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sign_in(page, USERS[1])
    page.locator("#new-session").click()
    send(page, "long story")  # 400 words over 10 s: AgentCore cuts the socket meanwhile
    expect(page.locator("#streaming")).to_contain_text("w40")
    page.reload()
    expect(page.locator(".msg-assistant").last).to_contain_text("w400", timeout=60_000)
    assert words_shown(page) == list(range(1, 401)), "every word once, in order"
    assert page.locator(".msg-user").count() == 1
    time.sleep(CONNECTION_LIMIT_S)
    send(page, "echo still here")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: still here")
    assert len(sockets) >= 3, "reloaded once and reconnected after the connection limit"


def test_another_user_is_refused_on_a_users_runtime_session(topology: LocalAws) -> None:
    owner, intruder = _token(topology, USERS[0]), _token(topology, USERS[2])
    runtime = _runtime_session(owner)
    with pytest.raises(InvalidStatus) as refused:
        connect(
            topology.emulator.ws_url(runtime, **{REFLEX_PARAMETER: "a-tab-token"}),
            additional_headers={"Authorization": f"Bearer {intruder}"},
            open_timeout=60,
        )
    assert refused.value.response.status_code == 403


def test_the_seeds_rest_clients_work_through_invocations(topology: LocalAws) -> None:
    token = _token(topology, USERS[2])
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": _runtime_session(token),
    }

    def invoke(path: str, method: str = "GET", payload: object = None) -> bytes:
        body = json.dumps({"path": path, "method": method, "payload": payload}).encode()
        request = urllib.request.Request(topology.emulator.url(), data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=90) as answer:
            return bytes(answer.read())

    created = json.loads(invoke("/sessions", "POST", {}))
    answer = json.loads(
        invoke(f"/sessions/{created['session_id']}/messages", "POST", {"message": "echo over rest"})
    )
    texts = [m["content"] for m in answer["messages"] if m["type"] == "text"]
    assert texts == ["You said: over rest"]


def test_a_stopped_microvm_restores_the_workspace(site_page: Page, topology: LocalAws) -> None:
    page = site_page
    sign_in(page, USERS[0])
    page.locator("#new-session").click()
    send(page, "echo remember the word heron")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: remember the word heron")
    page.get_by_role("tab", name="Projects").click()
    page.locator("#back-up-now").click()
    expect(page.locator(".backed-up").first).to_contain_text("backed up at")

    token = page.evaluate("localStorage.getItem('aw_access')")
    runtime = _runtime_session(token)
    starts = len(topology.emulator.starts)
    stop = urllib.request.Request(
        topology.emulator.url("stopruntimesession"),
        data=b"{}",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": runtime,
        },
    )
    with urllib.request.urlopen(stop, timeout=30) as answer:
        assert answer.status == 200
    assert runtime not in topology.emulator.session_ids()

    page.reload()  # a fresh microVM, an empty disk: the workspace comes back from S3
    session = page.locator(".session-item", has_text="remember the word heron")
    session.locator(".session-title").click(timeout=90_000)
    expect(session).not_to_contain_text("failed")  # stopped with its microVM, not broken
    expect(page.locator(".msg-user").first).to_have_text("echo remember the word heron")
    assert len(topology.emulator.starts) == starts + 1
    send(page, "echo after the restart")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: after the restart")


def test_restart_workspace_stops_the_runtime_session(site_page: Page, topology: LocalAws) -> None:
    page = site_page
    sign_in(page, USERS[3])
    page.locator("#new-session").click()
    send(page, "echo before the restart")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: before the restart")
    runtime = _runtime_session(page.evaluate("localStorage.getItem('aw_access')"))
    assert runtime in topology.emulator.session_ids()
    starts = len(topology.emulator.starts)

    page.get_by_role("tab", name="Projects").click()
    page.locator("#restart-workspace").click()
    page.locator("#confirm-restart").click()
    # The page stops its runtime session (StopRuntimeSession) and reloads: a fresh microVM.
    deadline = time.monotonic() + 90
    while len(topology.emulator.starts) == starts and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # the page's own work goes on meanwhile
    assert len(topology.emulator.starts) == starts + 1
    expect(page.locator("#user-email")).to_have_text(USERS[3], timeout=90_000)
    # Its empty disk gets the workspace back from S3: the conversation goes on.
    session = page.locator(".session-item", has_text="before the restart")
    session.locator(".session-title").click(timeout=90_000)
    expect(page.locator(".msg-user").first).to_have_text("echo before the restart")
    send(page, "echo after the restart")
    expect(page.locator(".msg-assistant").last).to_have_text("You said: after the restart")


def test_big_messages_travel_in_pieces_under_the_frame_limit(
    site_page: Page, topology: LocalAws
) -> None:
    page = site_page
    frames: list[int] = []

    def watch(ws: WebSocket) -> None:
        for direction in ("framesent", "framereceived"):
            ws.on(direction, lambda payload: frames.append(len(str(payload).encode())))

    page.on("websocket", watch)
    sign_in(page, USERS[1])
    page.locator("#new-session").click()
    words = " ".join(f"ü{n}" for n in range(8000))  # 55 KB of UTF-8, both ways
    page.locator("#prompt").fill(f"echo {words}")
    page.locator("#prompt").press("Enter")
    expect(page.locator(".msg-assistant").last).to_contain_text("ü7999", timeout=60_000)
    answer, prompt = page.locator(".msg-assistant").last, page.locator(".msg-user").last
    whole = answer.inner_text() == f"You said: {words}" and prompt.inner_text() == f"echo {words}"
    assert whole, "the long prompt and its answer, whole, once each"  # (no 55 KB diff printed)
    assert max(frames) <= 32_768, f"a {max(frames)}-byte message: AgentCore would close"
    assert max(frames) > 20_000, "the big messages were sent (in pieces)"


def test_sign_up_and_confirm_on_the_static_site(site_page: Page) -> None:
    page = site_page
    page.goto("/signin.html")
    page.locator("#to-signup").click()
    page.locator("#email").fill("dave@example.com")
    page.locator("#password").fill("short")
    page.locator("#submit").click()
    expect(page.locator("#error")).not_to_be_empty()  # Cognito's password policy, in words
    page.locator("#password").fill(PASSWORD)
    page.locator("#submit").click()
    expect(page.locator("#notice")).to_contain_text("We sent a code to dave@example.com")
    page.locator("#code").fill("123456")  # moto accepts any code
    page.locator("#submit").click()
    expect(page.locator("#user-email")).to_have_text("dave@example.com", timeout=90_000)
