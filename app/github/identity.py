"""Linking GitHub through AgentCore Identity, where the runtime has no public callback route.

AgentCore holds the GitHub OAuth app (the credential provider `GITHUB_PROVIDER_NAME`) and its
callback. `start` asks for the user's token with the workload access token AgentCore put on the
request; the first time, the answer is GitHub's consent URL and a session. After consent,
AgentCore sends the browser to `GITHUB_RETURN_URL` (a page on the static site) with
`?session_id=<sessionUri>&state=<customState>`; that page, signed in, calls
`/github/identity/complete`, and `complete` checks the state names the signed-in user, confirms
the session for that user's JWT (`CompleteResourceTokenAuth`) and asks for the token again.

The state is signed with the install's key and expires with the session (ten minutes), like the
local web flow's (oauth.py): nobody can finish a link for someone else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import AppError, Forbidden, InvalidInput
from app.github.oauth import SCOPES
from app.github.state import LinkState

# Where the workload access token arrives: the SDK reads the first two, the seed sample the
# third. All three are accepted (header names are case-insensitive).
WORKLOAD_TOKEN_HEADERS = (
    "WorkloadAccessToken",
    "X-Amz-Bedrock-AgentCore-Identity-WAT",
    "x-amzn-bedrock-agentcore-runtime-workload-accesstoken",
)
# Where ContainerGate keeps the page socket's workload token (in the connection's ASGI scope),
# for the page's GitHub link to find on the server.
WORKLOAD_TOKEN_KEY = "agent_web.workload_token"
NO_WORKLOAD_TOKEN = (
    "GitHub links through AgentCore Identity here, and this request carries no workload access "
    "token (the WorkloadAccessToken header AgentCore adds to what it forwards to the runtime: "
    "/invocations, and the page's socket): reach the app through the runtime's endpoint with "
    "your sign-in token."
)


class IdentityFailed(AppError):
    """AgentCore Identity refused or failed a call."""

    status = 502
    code = "identity_failed"


@dataclass(frozen=True)
class Consent:
    """The user has to consent at GitHub first: send the browser to `url`."""

    url: str
    session_uri: str


def boto_client() -> Any:
    """The AgentCore data-plane client (region and credentials from the runtime's environment)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "bedrock-agentcore",
        config=Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard"}),
    )


def workload_token_of(headers: Any) -> str:
    """The workload access token among a request's headers (a case-insensitive mapping)."""
    for name in WORKLOAD_TOKEN_HEADERS:
        value = str(headers.get(name) or headers.get(name.lower()) or "").strip()
        if value:
            return value
    return ""


class AgentCoreGitHub:
    """A small client over `bedrock-agentcore`'s token calls. Calls block: run them in a thread.

    `client_factory` makes the boto client on first use (tests put a stubbed one in)."""

    def __init__(
        self,
        provider_name: str,
        return_url: str,
        signing_key: str,
        client_factory: Callable[[], Any] = boto_client,
    ) -> None:
        self.provider_name = provider_name
        self.return_url = return_url
        self.client_factory = client_factory
        self._client: Any = None
        self._states = LinkState(signing_key, "github identity state")

    def start(self, user_id: str, workload_token: str) -> Consent | str:
        """The user's GitHub token when AgentCore already holds one, else where to consent."""
        answer = self._token_call(workload_token, customState=self._states.make(user_id))
        if answer.get("accessToken"):
            return str(answer["accessToken"])
        url, session = answer.get("authorizationUrl"), answer.get("sessionUri")
        if not (url and session):
            raise IdentityFailed("AgentCore Identity gave neither a token nor a consent URL.")
        return Consent(url=str(url), session_uri=str(session))

    def user_of(self, state: str) -> str:
        """The user a return's state was made for; refuses forged or stale ones."""
        return self._states.user_of(state)

    def complete(
        self, user_id: str, state: str, session_uri: str, user_jwt: str, workload_token: str
    ) -> str:
        """Finish the consent of `user_id` (the signed-in user, whose JWT this is); the token."""
        if not workload_token:
            raise InvalidInput(NO_WORKLOAD_TOKEN)
        if self.user_of(state) != user_id:
            raise Forbidden("This GitHub link was started by another account: start it again.")
        if not session_uri.startswith("urn:ietf:params:oauth:request_uri:"):
            raise InvalidInput("session_id must be the sessionUri AgentCore sent back.")
        self._call(
            "complete_resource_token_auth",
            sessionUri=session_uri,
            userIdentifier={"userToken": user_jwt},
        )
        answer = self._token_call(workload_token, sessionUri=session_uri)
        if not answer.get("accessToken"):
            raise InvalidInput("GitHub's consent is not complete yet: start the link again.")
        return str(answer["accessToken"])

    def _token_call(self, workload_token: str, **extra: str) -> dict[str, Any]:
        if not workload_token:
            raise InvalidInput(NO_WORKLOAD_TOKEN)
        return self._call(
            "get_resource_oauth2_token",
            workloadIdentityToken=workload_token,
            resourceCredentialProviderName=self.provider_name,
            scopes=[SCOPES],
            oauth2Flow="USER_FEDERATION",
            resourceOauth2ReturnUrl=self.return_url,
            **extra,
        )

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._client is None:
                self._client = self.client_factory()
            answer: dict[str, Any] = getattr(self._client, operation)(**params)
        except ClientError as error:
            info = error.response.get("Error", {})
            raise IdentityFailed(
                f"AgentCore Identity refused the GitHub link ({info.get('Code', '?')}): "
                f"{info.get('Message', '')}".rstrip(": ")
            ) from None
        except BotoCoreError as error:
            raise IdentityFailed(f"AgentCore Identity could not be reached: {error}") from None
        return answer
