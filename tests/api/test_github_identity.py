"""GitHub linked through AgentCore Identity (GITHUB_PROVIDER_NAME set): the API against
botocore's Stubber on `bedrock-agentcore` (requests checked against the real API model, answers
in its shapes) and the local GitHub stand-in as GitHub for the /user call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from botocore.stub import ANY, Stubber

from app.devtools.github import GitHubStandIn
from app.devtools.model_server import ModelServer
from app.settings import SettingsError, load_settings
from app.static_site.plugin import export_settings, write_sign_in
from tests.api.conftest import Api, serve_api, settings_env

PROVIDER = "agent-web-github"
RETURN_URL = "https://main.example.amplifyapp.com/github/callback"
SESSION = "urn:ietf:params:oauth:request_uri:abc-123"
CONSENT = "https://bedrock-agentcore.us-east-1.amazonaws.com/identities/oauth2/authorize?x=1"
WAT = {"WorkloadAccessToken": "workload-access-token-for-the-test"}


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path / "github") as stand_in:
        stand_in.add_user("alice")
        stand_in.add_repo("alice", "demo", {"README.md": "# demo\n"})
        yield stand_in


class Recorded:
    """The stubbed client, and every call made on it (with its parameters)."""

    def __init__(self) -> None:
        self.client: Any = botocore.session.get_session().create_client(
            "bedrock-agentcore",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        self.stub = Stubber(self.client)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("provide-client-params.bedrock-agentcore", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def agentcore() -> Iterator[Recorded]:
    recorded = Recorded()
    with recorded.stub:
        yield recorded


@pytest.fixture
def app(
    tmp_path: Path, model_server: ModelServer, github: GitHubStandIn, agentcore: Recorded
) -> Iterator[Api]:
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


def _token_request(**extra: Any) -> dict[str, Any]:
    return {
        "workloadIdentityToken": WAT["WorkloadAccessToken"],
        "resourceCredentialProviderName": PROVIDER,
        "scopes": ["repo"],
        "oauth2Flow": "USER_FEDERATION",
        "resourceOauth2ReturnUrl": RETURN_URL,
        **extra,
    }


def _start(app: Api, agentcore: Recorded, token: str) -> str:
    """/github/authorize answers AgentCore's consent URL; returns the state it sent along."""
    agentcore.stub.add_response(
        "get_resource_oauth2_token",
        {"authorizationUrl": CONSENT, "sessionUri": SESSION, "sessionStatus": "IN_PROGRESS"},
        _token_request(customState=ANY),
    )
    with app.client(token) as http:
        answer = http.get("/github/authorize", headers=WAT)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"url": CONSENT, "login": ""}
    name, params = agentcore.calls[-1]
    assert name == "GetResourceOauth2Token"
    return str(params["customState"])


def _complete(app: Api, token: str, state: str, headers: dict[str, str]) -> httpx.Response:
    """What the return page sends: through /invocations, as the runtime receives it."""
    body = {
        "path": "/github/identity/complete",
        "method": "POST",
        "payload": {"session_id": SESSION, "state": state},
    }
    with app.client(token) as http:
        return http.post("/invocations", json=body, headers=headers)


def test_link_through_agentcore_identity(
    app: Api, github: GitHubStandIn, agentcore: Recorded, tmp_path: Path
) -> None:
    alice = app.sign_up("alice@example.com")
    bob = app.sign_up("bob@example.com")
    with app.client(alice) as http:
        assert http.get("/github/status").json()["configured"]
    state = _start(app, agentcore, alice)
    bobs_state = _start(app, agentcore, bob)
    started = len(agentcore.calls)

    user, expires, nonce, signature = state.split(".")
    for forged, status in (
        (f"someone-else.{expires}.{nonce}.{signature}", 400),
        (f"{user}.{int(expires) + 999}.{nonce}.{signature}", 400),
        ("not-a-state", 400),
        (bobs_state, 403),  # a real state, but bob's: alice cannot finish his link
    ):
        refused = _complete(app, alice, forged, WAT)
        assert refused.status_code == status, refused.text
    assert len(agentcore.calls) == started  # CompleteResourceTokenAuth was never called

    issued = github.token_for("alice")
    agentcore.stub.add_response(
        "complete_resource_token_auth",
        {},
        {"sessionUri": SESSION, "userIdentifier": {"userToken": alice}},
    )
    agentcore.stub.add_response(
        "get_resource_oauth2_token", {"accessToken": issued}, _token_request(sessionUri=SESSION)
    )
    linked = _complete(app, alice, state, WAT)
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"login": "alice"}
    agentcore.stub.assert_no_pending_responses()
    assert issued not in linked.text

    with app.client(alice) as http:
        status = http.get("/github/status").json()
        assert status["linked"] and status["login"] == "alice"
        names = [r["full_name"] for r in http.get("/github/repositories").json()["repositories"]]
        assert names == ["alice/demo"]  # the rest works as with a local link
    with app.client(bob) as http:
        assert not http.get("/github/status").json()["linked"]

    rows = [
        row
        for row in (app.services.store.github_link(uid) for uid in _user_ids(app, alice, bob))
        if row is not None
    ]
    assert len(rows) == 1  # alice's only
    assert issued not in rows[0].token_sealed
    assert app.services.github._vault.open(rows[0].token_sealed) == issued
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert issued.encode() not in path.read_bytes(), f"the token is in {path}"


def test_a_token_agentcore_already_holds_links_at_once(
    app: Api, github: GitHubStandIn, agentcore: Recorded
) -> None:
    alice = app.sign_up("alice@example.com")
    agentcore.stub.add_response(
        "get_resource_oauth2_token",
        {"accessToken": github.token_for("alice")},
        _token_request(customState=ANY, workloadIdentityToken="w"),
    )
    with app.client(alice) as http:
        answer = http.get(
            "/github/authorize", headers={"X-Amz-Bedrock-AgentCore-Identity-WAT": "w"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"url": "", "login": "alice"}
        assert http.get("/github/status").json()["login"] == "alice"


def test_without_the_workload_token_the_error_says_what_is_missing(
    app: Api, agentcore: Recorded
) -> None:
    alice = app.sign_up("alice@example.com")
    with app.client(alice) as http:
        answer = http.get("/github/authorize")
    assert answer.status_code == 400
    assert "WorkloadAccessToken" in answer.json()["detail"]
    refused = _complete(app, alice, "a.b.c.d", {})
    assert refused.status_code == 400 and "WorkloadAccessToken" in refused.json()["detail"]
    assert agentcore.calls == []


def test_agentcores_refusal_reaches_the_user_in_words(app: Api, agentcore: Recorded) -> None:
    alice = app.sign_up("alice@example.com")
    agentcore.stub.add_client_error(
        "get_resource_oauth2_token",
        service_error_code="AccessDeniedException",
        service_message="The return URL is not allowed for this workload identity",
        http_status_code=403,
    )
    with app.client(alice) as http:
        answer = http.get(
            "/github/authorize",
            headers={"x-amzn-bedrock-agentcore-runtime-workload-accesstoken": "w"},
        )
    assert answer.status_code == 502
    assert "return URL is not allowed" in answer.json()["detail"]


def test_settings_need_both_or_neither(tmp_path: Path) -> None:
    base = {"DATA_DIR": str(tmp_path)}
    for partial in (
        {"GITHUB_PROVIDER_NAME": PROVIDER},
        {"GITHUB_RETURN_URL": RETURN_URL},
        {"GITHUB_PROVIDER_NAME": "bad name", "GITHUB_RETURN_URL": RETURN_URL},
        {"GITHUB_PROVIDER_NAME": PROVIDER, "GITHUB_RETURN_URL": "not a url"},
    ):
        with pytest.raises(SettingsError) as raised:
            load_settings({**base, **partial})
        assert "GITHUB_" in json.dumps(str(raised.value))
    settings = load_settings(
        {**base, "GITHUB_PROVIDER_NAME": PROVIDER, "GITHUB_RETURN_URL": RETURN_URL}
    )
    assert (settings.github_provider_name, settings.github_return_url) == (PROVIDER, RETURN_URL)


def _user_ids(app: Api, *tokens: str) -> list[str]:
    found = []
    for token in tokens:
        with app.client(token) as http:
            found.append(str(http.get("/auth/me").json()["user_id"]))
    return found


def test_the_export_has_the_return_page_and_the_invocations_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_RETURN_PATH", raising=False)  # the default, /github/callback
    arn = "arn%3Aaws%3Abedrock-agentcore%3Aus-east-1%3A123456789012%3Aruntime%2Fagent_web-x"
    base = f"bedrock-agentcore.us-east-1.amazonaws.com/runtimes/{arn}"
    export = export_settings(
        {
            "AGENTCORE_WS_URL": f"wss://{base}/ws",
            "COGNITO_REGION": "us-east-1",
            "COGNITO_CLIENT_ID": "client",
        }
    )
    assert export is not None
    assert export.invocations_url == f"https://{base}/invocations"
    assert "https://bedrock-agentcore.us-east-1.amazonaws.com" in export.connect_origins
    write_sign_in(tmp_path, export)
    config = json.loads((tmp_path / "aw-config.json").read_text())
    assert config["invocationsUrl"] == export.invocations_url
    for page in ("github_return.html", "github/callback.html", "github/callback/index.html"):
        text = (tmp_path / page).read_text()
        assert "/github_return.js" in text and "RUNTIME_ORIGIN" not in text
        assert "connect-src 'self' https://bedrock-agentcore.us-east-1.amazonaws.com;" in text
    script = (tmp_path / "github_return.js").read_text()
    assert "/github/identity/complete" in script and "invocationsUrl" in script
    assert "agent-web-workspace-" in script and "aw_access" in script
