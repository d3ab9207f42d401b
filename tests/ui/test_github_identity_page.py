"""The page's GitHub section on AgentCore (GITHUB_PROVIDER_NAME set) links through AgentCore
Identity with the workload access token AgentCore puts on the page's socket, and neither that
token nor GitHub's ever reaches the page.

The container's ASGI app (ContainerGate in front of Reflex's backend, as `python -m app.container`
builds it) serves in this process on a free port, and a socket opened as AgentCore hands it over
(the sign-in token in the subprotocols, the workload access token in a header) is a real Reflex
connection. GitHubState's handlers then run for that connection (its sid and client token), with
AgentCore Identity stubbed at the boto edge (botocore's Stubber against the real API model, as in
tests/api/test_github_identity.py) and the local GitHub stand-in as GitHub. The consent's return
is completed through /invocations, as the static site's return page does it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from botocore.stub import ANY
from reflex.istate.data import RouterData
from reflex.state import State
from reflex.utils.prerequisites import get_app
from reflex_base.utils.format import json_dumps
from websockets.sync.client import ClientConnection, connect

from app.devtools.github import GitHubStandIn
from app.devtools.model_server import ModelServer
from app.github.identity import NO_WORKLOAD_TOKEN
from app.ui.components.github import github_section
from app.ui.state.base import BaseState
from app.ui.state.github import GitHubState
from tests.api.conftest import Api, free_port, serve_api, settings_env
from tests.api.test_github_identity import CONSENT, PROVIDER, RETURN_URL, SESSION, Recorded

WORKLOAD_TOKEN = "workload-access-token-on-the-page-socket"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
REFLEX_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path / "github") as stand_in:
        stand_in.add_user("alice")
        stand_in.add_repo("alice", "demo", {"README.md": "# demo\n"})
        yield stand_in


@pytest.fixture
def agentcore() -> Iterator[Recorded]:
    recorded = Recorded()
    with recorded.stub:
        yield recorded


@pytest.fixture
def api(
    tmp_path: Path, model_server: ModelServer, github: GitHubStandIn, agentcore: Recorded
) -> Iterator[Api]:
    """The services (and the API, for the return page's /invocations) with Identity on."""
    env = settings_env(
        tmp_path / "data",
        model_server,
        GITHUB_URL=github.web_url,
        GITHUB_API_URL=github.api_url,
        GITHUB_PROVIDER_NAME=PROVIDER,
        GITHUB_RETURN_URL=RETURN_URL,
    )
    with serve_api(env) as running:
        identity = running.services.github.identity
        assert identity is not None
        identity.client_factory = lambda: agentcore.client  # no network
        yield running


_built: list[Any] = []


@pytest.fixture
def container(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The container's app on a free port, on the api fixture's services."""
    monkeypatch.setenv("REFLEX_SKIP_COMPILE", "true")
    if not _built:  # Reflex's app is built once per process
        from app.container import build

        _built.append(build())
    server = uvicorn.Server(
        uvicorn.Config(
            _built[0],
            host="127.0.0.1",
            port=free_port(),
            log_level="warning",
            ws="websockets-sansio",
            lifespan="off",  # the services are the api fixture's, started and stopped there
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the container did not start"
        time.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Tab:
    """One page's socket, joined to Reflex's namespace, and its state on the server."""

    socket: ClientConnection
    sid: str
    client_token: str
    root: State
    github: GitHubState

    def sent_to_page(self) -> str:
        """Everything the state would send the browser (router headers included)."""
        return str(json_dumps(self.root.dict()))


@contextlib.contextmanager
def open_tab(url: str, access_token: str, user_id: str, extra: dict[str, str]) -> Iterator[Tab]:
    encoded = base64.urlsafe_b64encode(access_token.encode()).decode().rstrip("=")
    protocols: Any = [f"base64UrlBearerAuthorization.{encoded}", "base64UrlBearerAuthorization"]
    client_token = str(uuid.uuid4())
    headers = {SESSION_HEADER: f"workspace-{uuid.uuid4()}", REFLEX_HEADER: client_token, **extra}
    with connect(
        url + "/ws",
        subprotocols=protocols,
        additional_headers=headers,
        open_timeout=10,
    ) as socket:
        assert str(socket.recv(timeout=10)).startswith("0{")  # engine.io's open packet
        socket.send("40/_event,")
        joined = str(socket.recv(timeout=10))
        assert joined.startswith("40/_event,{"), joined
        sid = joined.split('"sid":"', 1)[1].split('"', 1)[0]
        namespace = get_app().app.event_namespace
        assert namespace is not None
        seen = namespace._static_router_data[sid]["headers"]  # the headers Reflex keeps
        root = State(_reflex_internal_init=True)  # type: ignore[call-arg]
        root.router = RouterData.from_router_data(
            {"sid": sid, "token": client_token, "headers": seen, "pathname": "/"}
        )
        base = _substate(root, BaseState)
        base._user_id = user_id
        yield Tab(socket, sid, client_token, root, _substate(root, GitHubState))


def _substate(root: State, cls: type[Any]) -> Any:
    state: Any = root
    for name in cls.get_full_name().split(".")[1:]:
        state = state.substates[name]
    return state


async def _run(state: GitHubState, name: str) -> list[Any]:
    """A handler as Reflex runs it (`async with self` is a no-op on a plain state); what it
    returned or yielded."""
    result = GitHubState.event_handlers[name].fn(state)
    if isinstance(result, AsyncIterator):
        return [event async for event in result]
    answer = await result
    return [] if answer is None else [answer]


def _names(events: list[Any]) -> list[str]:
    return [getattr(event, "fn", event).__name__ for event in events]


def _user_id(api: Api, token: str) -> str:
    with api.client(token) as http:
        return str(http.get("/auth/me").json()["user_id"])


def _token_request(**extra: Any) -> dict[str, Any]:
    return {
        "workloadIdentityToken": WORKLOAD_TOKEN,
        "resourceCredentialProviderName": PROVIDER,
        "scopes": ["repo"],
        "oauth2Flow": "USER_FEDERATION",
        "resourceOauth2ReturnUrl": RETURN_URL,
        **extra,
    }


def _complete(api: Api, token: str, state: str) -> httpx.Response:
    """The static site's return page: /invocations, with the workload token AgentCore adds."""
    body = {
        "path": "/github/identity/complete",
        "method": "POST",
        "payload": {"session_id": SESSION, "state": state},
    }
    with api.client(token) as http:
        return http.post("/invocations", json=body, headers={"WorkloadAccessToken": WORKLOAD_TOKEN})


async def test_the_page_links_through_agentcore_identity_with_the_sockets_workload_token(
    api: Api, container: str, github: GitHubStandIn, agentcore: Recorded
) -> None:
    alice = api.sign_up("alice@example.com")
    with open_tab(
        container, alice, _user_id(api, alice), {"WorkloadAccessToken": WORKLOAD_TOKEN}
    ) as tab:
        page = tab.github
        await _run(page, "load")
        assert (page.configured, page.linked, page.through_identity) == (True, False, True)
        assert page.authorize_url == "" and page.error == ""
        assert agentcore.calls == []  # nothing is asked of AgentCore until the user clicks

        agentcore.stub.add_response(
            "get_resource_oauth2_token",
            {"authorizationUrl": CONSENT, "sessionUri": SESSION, "sessionStatus": "IN_PROGRESS"},
            _token_request(customState=ANY),
        )
        assert await _run(page, "start_identity_link") == []
        assert page.authorize_url == CONSENT, page.error  # "Continue at GitHub" opens it
        assert not page.starting_link and page.error == ""
        state = str(agentcore.calls[-1][1]["customState"])

        # The user clicks it: the tab watches while GitHub's tab consents and returns to the
        # static site's page, which completes the link through /invocations.
        watching = asyncio.ensure_future(_run(page, "watch_link"))
        await asyncio.sleep(0.2)
        assert page.waiting_for_link
        issued = github.token_for("alice")
        agentcore.stub.add_response(
            "complete_resource_token_auth",
            {},
            {"sessionUri": SESSION, "userIdentifier": {"userToken": alice}},
        )
        agentcore.stub.add_response(
            "get_resource_oauth2_token", {"accessToken": issued}, _token_request(sessionUri=SESSION)
        )
        completed = await asyncio.to_thread(_complete, api, alice, state)
        assert completed.status_code == 200, completed.text
        followed = await asyncio.wait_for(watching, timeout=15)
        assert _names(followed) == ["find_repositories"]
        assert page.linked and page.login == "alice" and not page.waiting_for_link
        await _run(page, "find_repositories")
        assert [r.full_name for r in page.repos] == ["alice/demo"]
        agentcore.stub.assert_no_pending_responses()

        sent = tab.sent_to_page()
        assert tab.sid in sent  # the socket's own router data is in what the page gets...
        assert WORKLOAD_TOKEN not in sent and issued not in sent  # ...its tokens are not
        assert "workloadaccesstoken" not in {h.lower() for h in page.router.headers.raw_headers}


async def test_a_token_agentcore_already_holds_shows_linked_at_once(
    api: Api, container: str, github: GitHubStandIn, agentcore: Recorded
) -> None:
    alice = api.sign_up("alice@example.com")
    issued = github.token_for("alice")
    agentcore.stub.add_response(
        "get_resource_oauth2_token",
        {"accessToken": issued},
        _token_request(customState=ANY),
    )
    header = {"X-Amz-Bedrock-AgentCore-Identity-WAT": WORKLOAD_TOKEN}
    with open_tab(container, alice, _user_id(api, alice), header) as tab:
        page = tab.github
        await _run(page, "load")
        assert _names(await _run(page, "start_identity_link")) == ["find_repositories"]
        assert page.linked and page.login == "alice" and page.authorize_url == ""
        assert WORKLOAD_TOKEN not in tab.sent_to_page() and issued not in tab.sent_to_page()


async def test_without_a_workload_token_on_the_socket_the_section_says_so(
    api: Api, container: str, agentcore: Recorded
) -> None:
    alice = api.sign_up("alice@example.com")
    with open_tab(container, alice, _user_id(api, alice), {}) as tab:
        page = tab.github
        await _run(page, "load")
        await _run(page, "start_identity_link")
        assert page.error == NO_WORKLOAD_TOKEN
        assert page.authorize_url == "" and not page.linked and not page.starting_link
        assert agentcore.calls == []


def test_the_section_offers_the_identity_start_and_the_consent_link() -> None:
    rendered = str(github_section().render())
    for element in ("start-github-link", "link-github", "github-error", "Continue at GitHub"):
        assert element in rendered
