"""Linking a GitHub account with OAuth's web flow (authlib's client against GitHub or GitHub
Enterprise Server).

The `state` names the user who started the link and expires in ten minutes, signed with the
install's key: the callback (a plain browser navigation, without the app's token) learns from
it whom to link, and nobody can forge one for someone else.
"""

from __future__ import annotations

from authlib.integrations.httpx_client import AsyncOAuth2Client

from app.errors import InvalidInput
from app.github.state import LinkState

CALLBACK_PATH = "/oauth/github/callback"  # on the app's backend; register it at GitHub
SCOPES = "repo"  # clone, push and open pull requests on the user's repositories: nothing more


class GitHubOAuth:
    def __init__(self, web_url: str, client_id: str, client_secret: str, signing_key: str) -> None:
        self.web_url = web_url
        self.client_id = client_id
        self._client_secret = client_secret
        self._states = LinkState(signing_key, "github state")

    def authorize_url(self, user_id: str, redirect_uri: str) -> str:
        client = AsyncOAuth2Client(self.client_id, redirect_uri=redirect_uri, scope=SCOPES)
        url, _ = client.create_authorization_url(
            f"{self.web_url}/login/oauth/authorize", state=self._states.make(user_id)
        )
        return str(url)

    def user_of(self, state: str) -> str:
        """The user a callback's state was made for; refuses forged or stale ones."""
        return self._states.user_of(state)

    async def exchange(self, code: str, redirect_uri: str) -> tuple[str, str]:
        """The access token and its scopes for a callback's code."""
        async with AsyncOAuth2Client(
            self.client_id,
            self._client_secret,
            redirect_uri=redirect_uri,
            token_endpoint_auth_method="client_secret_post",  # as GitHub documents it
            timeout=20,
        ) as client:
            try:
                token = await client.fetch_token(
                    f"{self.web_url}/login/oauth/access_token",
                    code=code,
                    headers={"Accept": "application/json"},
                )
            except Exception as error:  # authlib raises OAuthError and httpx errors alike
                raise InvalidInput(f"GitHub refused the link: {error}") from None
        access = str(token.get("access_token") or "")
        if not access:
            raise InvalidInput("GitHub gave no token: start the link again.")
        return access, str(token.get("scope") or "")
