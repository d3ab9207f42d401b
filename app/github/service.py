"""GitHub for one app: link and unlink accounts, list repositories and branches, and clone one
into a new project. Tokens stay in the app: sealed at rest (vault.py), sent only to the
configured GitHub's API and git host, handed to git per call (git.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.db.models import GitHubLink
from app.db.store import Store
from app.errors import Conflict, InvalidInput, NotFound
from app.github import git
from app.github.api import Branch, GitHubAPI, PullRequest, RepositoryPage
from app.github.git import valid_branch
from app.github.identity import AgentCoreGitHub, Consent
from app.github.oauth import SCOPES, GitHubOAuth
from app.github.repo import ProjectGit
from app.github.vault import Vault
from app.workspace.place import ProjectPlace

_REPO = r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"


@dataclass(frozen=True)
class LinkStatus:
    configured: bool  # an OAuth app is set up (GITHUB_OAUTH_CLIENT_ID/SECRET, or AgentCore's)
    linked: bool
    login: str
    scopes: str
    web_url: str
    asks_for: str  # the scopes a link asks for, said on the page


class GitHubService:
    def __init__(
        self,
        store: Store,
        *,
        web_url: str,
        api_url: str,
        install_key: str,
        client_id: str | None,
        client_secret: str | None,
        repos: ProjectGit,
    ) -> None:
        self.store = store
        self.repos = repos
        self.web_url, self.api_url = web_url, api_url
        self._vault = Vault(install_key)
        self._install_key = install_key
        self._oauth = (
            GitHubOAuth(web_url, client_id, client_secret, install_key)
            if client_id and client_secret
            else None
        )
        self.identity: AgentCoreGitHub | None = None

    def use_identity(self, provider_name: str, return_url: str) -> None:
        """Link through AgentCore Identity (its credential provider `provider_name`, the static
        site's return page `return_url`) instead of the web flow's callback route."""
        self.identity = AgentCoreGitHub(provider_name, return_url, self._install_key)

    @property
    def through_identity(self) -> bool:
        """Links go through AgentCore Identity (a consent URL asked for per link, with the
        workload access token), not a URL this app makes itself."""
        return self.identity is not None

    async def status(self, user_id: str) -> LinkStatus:
        link = await asyncio.to_thread(self.store.github_link, user_id)
        return LinkStatus(
            configured=self._oauth is not None or self.identity is not None,
            linked=link is not None,
            login=link.login if link else "",
            scopes=link.scopes if link else "",
            web_url=self.web_url,
            asks_for=SCOPES,
        )

    def authorize_url(self, user_id: str, redirect_uri: str) -> str:
        return self._configured().authorize_url(user_id, redirect_uri)

    async def start_link(
        self, user_id: str, redirect_uri: str, workload_token: str = ""
    ) -> tuple[str, str]:
        """(where to send the browser, "") or, when AgentCore Identity already holds the user's
        token, ("", the login now linked)."""
        if self.identity is None:
            return self.authorize_url(user_id, redirect_uri), ""
        started = await asyncio.to_thread(self.identity.start, user_id, workload_token)
        if isinstance(started, Consent):
            return started.url, ""
        return "", await self._keep(user_id, started, SCOPES)

    async def complete_identity(
        self, user_id: str, state: str, session_uri: str, user_jwt: str, workload_token: str
    ) -> str:
        """AgentCore's return page, signed in as `user_id`: finish the consent, keep the token."""
        if self.identity is None:
            raise InvalidInput("GitHub does not link through AgentCore Identity here.")
        token = await asyncio.to_thread(
            self.identity.complete, user_id, state, session_uri, user_jwt, workload_token
        )
        return await self._keep(user_id, token, SCOPES)

    async def complete(self, state: str, code: str, redirect_uri: str) -> str:
        """The callback: check whose link this is, take the token, keep it sealed."""
        oauth = self._configured()
        user_id = oauth.user_of(state)
        token, scopes = await oauth.exchange(code, redirect_uri)
        return await self._keep(user_id, token, scopes)

    async def _keep(self, user_id: str, token: str, scopes: str) -> str:
        """Link `token`'s GitHub account to the user (sealed at rest); its login."""
        await asyncio.to_thread(self.store.get_user, user_id)  # still an account here
        async with GitHubAPI(self.api_url, token) as api:
            login = str((await api.user())["login"])
        link = GitHubLink(
            user_id=user_id, login=login, token_sealed=self._vault.seal(token), scopes=scopes
        )
        await asyncio.to_thread(self.store.put_github_link, link)
        return login

    async def unlink(self, user_id: str) -> None:
        if not await asyncio.to_thread(self.store.delete_github_link, user_id):
            raise NotFound("No GitHub account is linked.")

    async def repositories(self, user_id: str, search: str, page: int) -> RepositoryPage:
        async with GitHubAPI(self.api_url, await self._token(user_id)) as api:
            return await api.repositories(search, page)

    async def branches(self, user_id: str, full_name: str, page: int) -> tuple[list[Branch], bool]:
        async with GitHubAPI(self.api_url, await self._token(user_id)) as api:
            return await api.branches(repository_name(full_name), page)

    async def clone(
        self,
        user_id: str,
        project_id: str,
        full_name: str,
        branch: str | None,
        destination: Path,
        on_progress: Callable[[git.Progress], None],
        new_branch: str | None = None,
    ) -> str:
        """Clone into `destination` (a new project's empty folder); returns the branch checked
        out. With `new_branch`, that branch is made from `branch` (or the default one)."""
        token = await self._token(user_id)
        async with GitHubAPI(self.api_url, token) as api:
            repository = await api.repository(repository_name(full_name))
        start = git.valid_branch(branch or repository.default_branch)
        if new_branch is not None:
            git.valid_branch(new_branch)
        await asyncio.to_thread(_make_room, destination)
        await git.clone(self.web_url, repository.full_name, start, destination, token, on_progress)
        await asyncio.to_thread(
            self.store.set_project_repo,
            user_id=user_id,
            project_id=project_id,
            full_name=repository.full_name,
        )
        if new_branch is None:
            return start
        await git.local(destination, "checkout", "-q", "-b", new_branch)
        return new_branch

    async def push(self, where: ProjectPlace, branch: str | None = None) -> tuple[str, str]:
        """Push the project's branch (default: the one checked out) to the repository it was
        cloned from; returns (repository, branch)."""
        full_name = await self._repository_of(where)
        token = await self._token(where.user_id)
        branch = branch or (await self.repos.status(where)).branch
        await self.repos.push(where, self.web_url, full_name, branch, token)
        return full_name, branch

    async def pull(self, where: ProjectPlace, branch: str | None = None) -> str:
        """GitHub's commits on the project's branch (default: the current one), merged in."""
        full_name = await self._repository_of(where)
        token = await self._token(where.user_id)
        branch = branch or (await self.repos.status(where)).branch
        author = await self.author(where.user_id)
        return await self.repos.pull(where, self.web_url, full_name, branch, token, author)

    async def author(self, user_id: str) -> tuple[str, str]:
        """Who commits for the user: their GitHub login (when linked) and e-mail."""
        account = await asyncio.to_thread(self.store.get_user, user_id)
        link = await asyncio.to_thread(self.store.github_link, user_id)
        return (link.login if link else account.email.split("@")[0]), account.email

    async def open_pull(
        self, where: ProjectPlace, *, title: str, body: str, head: str | None, base: str | None
    ) -> PullRequest:
        """A pull request from `head` (default: the branch checked out) into `base` (default:
        the repository's default branch)."""
        if not title.strip():
            raise InvalidInput("A pull request needs a title.")
        full_name = await self._repository_of(where)
        head = head or (await self.repos.status(where)).branch
        async with GitHubAPI(self.api_url, await self._token(where.user_id)) as api:
            base = base or (await api.repository(full_name)).default_branch
            return await api.create_pull(
                full_name, title=title.strip(), body=body, head=valid_branch(head), base=base
            )

    async def _repository_of(self, where: ProjectPlace) -> str:
        project = await asyncio.to_thread(
            self.store.get_project, user_id=where.user_id, project_id=where.project_id
        )
        if not project.github_repo:
            raise InvalidInput("This project was not cloned from GitHub: there is nowhere to push.")
        return project.github_repo

    async def _token(self, user_id: str) -> str:
        link = await asyncio.to_thread(self.store.github_link, user_id)
        if link is None:
            raise InvalidInput("Link a GitHub account first.")
        return self._vault.open(link.token_sealed)

    def _configured(self) -> GitHubOAuth:
        if self._oauth is None and self.identity is not None:
            raise InvalidInput(
                "GitHub links through AgentCore Identity here: start at /github/authorize "
                "through the runtime's /invocations."
            )
        if self._oauth is None:
            raise InvalidInput(
                "GitHub is not set up here: set GITHUB_OAUTH_CLIENT_ID and "
                "GITHUB_OAUTH_CLIENT_SECRET (an OAuth app whose callback is this app's "
                "/oauth/github/callback)."
            )
        return self._oauth


def repository_name(full_name: str) -> str:
    """`owner/name`, checked (it goes into URLs)."""
    if not re.match(_REPO, full_name) or ".." in full_name:
        raise InvalidInput("A repository is owner/name.")
    return full_name


def _make_room(destination: Path) -> None:
    """git clones into a folder that does not exist yet (or is empty)."""
    if destination.exists() and any(destination.iterdir()):
        raise Conflict("That project already has files: clone into a new project.")
    if destination.exists():
        destination.rmdir()
    destination.parent.mkdir(parents=True, exist_ok=True)
