"""GitHub in the rail: link and unlink an account, pick a repository and a branch, and clone
it into a new project with git's own progress.

Everything that talks to GitHub (or runs git) is a background event that enters the state lock
only to show what it found: a slow GitHub never freezes the page. The token itself never
reaches the state: the page holds names, descriptions and progress, nothing more.

On AgentCore (GITHUB_PROVIDER_NAME set) the link goes through AgentCore Identity: "Link GitHub"
asks it for GitHub's consent URL with the workload access token AgentCore put on this tab's
socket (kept on the server, never in the state), and the page then offers that URL as a link
to click; when AgentCore already holds the user's token, the account is linked at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import reflex as rx
from reflex.utils.prerequisites import get_app

from app.agent.schemas import NewProject
from app.github.git import Progress, valid_branch
from app.github.identity import WORKLOAD_TOKEN_KEY
from app.github.oauth import CALLBACK_PATH
from app.github.service import GitHubService, LinkStatus
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState, connected

LINK_POLL_S = 1.5  # how often a tab waiting for the user to authorize asks whether it happened
LINK_WAIT_S = 600.0  # an authorize URL's life: after that the waiting tab stops asking
URL_REFRESH_S = 300.0  # the link's URL is made again this often (it expires after ten minutes)
PROGRESS_TICK_S = 0.2  # git's progress reaches the page at most this often
MAX_BRANCH_PAGES = 10  # 100 branches a page: the picker lists up to 1,000
SCOPE_WORDS = {"repo": "clone, push and open pull requests on your repositories"}


@dataclass
class Repo:
    """A repository as the picker shows it."""

    full_name: str = ""
    name: str = ""
    private: bool = False
    description: str = ""
    default_branch: str = ""


class GitHubState(BaseState):
    loaded: bool = False
    configured: bool = False
    linked: bool = False
    login: str = ""
    web_url: str = ""
    asks_for: str = ""
    callback_url: str = ""
    authorize_url: str = ""
    waiting_for_link: bool = False
    through_identity: bool = False  # on AgentCore: the consent URL is asked for on a click
    starting_link: bool = False
    confirming_unlink: bool = False
    error: str = ""
    # the picker
    search: str = ""
    repos: list[Repo] = []
    repos_page: int = 0
    repos_more: bool = False
    loading_repos: bool = False
    chosen: Repo = Repo()
    branches: list[str] = []
    branch: str = ""
    new_branch: str = ""
    project_name: str = ""
    loading_branches: bool = False
    # the clone
    cloning: bool = False
    clone_text: str = ""
    clone_percent: int = 0
    cloned_into: str = ""
    _url_made_at: float = 0.0
    _link_deadline: float = 0.0
    _query: int = 0  # bumped by each new search: late answers to older ones are dropped
    _choice: int = 0  # likewise for the branches of the repository picked

    @rx.var
    def scope_words(self) -> str:
        return SCOPE_WORDS.get(self.asks_for, "")

    @rx.var
    def show_progress(self) -> bool:
        return self.cloning or self.cloned_into != ""

    # --- linking ------------------------------------------------------------------------

    @rx.event
    async def load(self) -> Any:
        """The Projects tab opened: where GitHub stands for this user (a database read only)."""
        if not self._user_id:
            return None
        self.callback_url = self._backend_url() + CALLBACK_PATH
        try:
            status = await _github().status(self.user_id)
        except Shown as error:
            self.error = ui_text(error)
            return None
        first_link = status.linked and not self.linked
        if self.linked and not status.linked:  # unlinked meanwhile (another tab, the API)
            self._forget_picker()
        self._show_status(status)
        if status.configured and not status.linked:
            self._fresh_authorize_url()
        if first_link or (status.linked and not self.repos and not self.loading_repos):
            return GitHubState.find_repositories
        return None

    @rx.event(background=True)
    async def watch_link(self) -> AsyncIterator[Any]:
        """The user clicked "Link GitHub" (GitHub's page opens in a new tab): notice when the
        callback has linked the account, without a reload. Ends once linked, when this tab
        goes away, or when the last authorize URL it opened has expired."""
        async with self:
            self._link_deadline = time.monotonic() + LINK_WAIT_S  # each click waits anew
            if self.waiting_for_link or not self._user_id:
                return
            self.waiting_for_link, self.error = True, ""
            user_id, token = self.user_id, self.router.session.client_token
        try:
            while connected(token):
                await asyncio.sleep(LINK_POLL_S)
                try:
                    status = await _github().status(user_id)
                except Shown as error:
                    async with self:
                        self.error = ui_text(error)
                    return
                async with self:
                    if self._user_id != user_id or time.monotonic() > self._link_deadline:
                        return
                    if status.linked:
                        self._show_status(status)
                        break
                    if time.monotonic() - self._url_made_at > URL_REFRESH_S:
                        self._fresh_authorize_url()
            else:
                return
            yield GitHubState.find_repositories
        finally:
            async with self:
                self.waiting_for_link = False

    @rx.event(background=True)
    async def start_identity_link(self) -> AsyncIterator[Any]:
        """On AgentCore, "Link GitHub": GitHub's consent URL from AgentCore Identity (asked
        outside the lock, one consent session per click rather than per visit), shown as the
        link the user clicks next, so the click itself opens GitHub's tab. When AgentCore
        already holds the user's token there is nothing to consent to: linked at once."""
        async with self:
            if self.starting_link or self.linked or not self._user_id:
                return
            if not _github().through_identity:
                return  # the local flow's URL is made ahead, with no click to wait for
            self.starting_link, self.error = True, ""
            user_id, sid = self.user_id, self.router.session.session_id
        url, linked, problem = "", None, ""
        try:
            url, linked = await _identity_link(user_id, socket_workload_token(sid))
        except Shown as error:
            problem = ui_text(error)
        finally:
            async with self:
                self.starting_link = False
        async with self:
            if self._user_id != user_id:
                return
            if linked is None:
                self.authorize_url, self.error = url, problem
                self._url_made_at = time.monotonic()
                return
            self._show_status(linked)
        yield GitHubState.find_repositories

    @rx.event
    def ask_unlink(self) -> None:
        self.confirming_unlink = True

    @rx.event
    def cancel_unlink(self) -> None:
        self.confirming_unlink = False

    @rx.event
    async def unlink(self) -> None:
        """Forget the token here (GitHub's grant itself is revoked in GitHub's settings)."""
        self.confirming_unlink, self._url_made_at = False, 0.0
        try:
            await _github().unlink(self.user_id)
            status = await _github().status(self.user_id)
        except Shown as error:
            self.error = ui_text(error)
            return
        self._forget_picker()
        self.cloned_into = self.clone_text = ""
        self._show_status(status)
        self._fresh_authorize_url()

    def _show_status(self, status: LinkStatus) -> None:
        self.loaded, self.configured, self.linked = True, status.configured, status.linked
        self.login, self.web_url, self.asks_for = status.login, status.web_url, status.asks_for
        self.through_identity, self.error = _github().through_identity, ""

    def _fresh_authorize_url(self) -> None:
        """The URL "Link GitHub" opens, made ahead so the click itself opens the tab (a tab
        opened later, from the server's answer, is what popup blockers stop). Through
        AgentCore Identity the URL comes from `start_identity_link`: a stale one is dropped
        here, and the page offers to start again."""
        if _github().through_identity:
            if time.monotonic() - self._url_made_at > URL_REFRESH_S:
                self.authorize_url = ""
            return
        try:
            self.authorize_url = _github().authorize_url(self.user_id, self.callback_url)
        except Shown as error:
            self.authorize_url, self.error = "", ui_text(error)
            return
        self._url_made_at = time.monotonic()

    def _backend_url(self) -> str:
        """Where this tab reaches the backend (GitHub sends the browser back there): its
        socket's host under the page's scheme, which also holds when the page was opened at
        another address than the configured one (a phone on the local network)."""
        headers = self.router.headers
        if not headers.host:
            return str(rx.config.get_config().api_url).rstrip("/")
        scheme = "https" if headers.origin.startswith("https:") else "http"
        return f"{scheme}://{headers.host}"

    # --- the repository picker ----------------------------------------------------------

    @rx.event
    def set_search(self, value: str) -> Any:
        self.search = value
        return GitHubState.find_repositories

    @rx.event(background=True)
    async def find_repositories(self) -> None:
        """The first page of the user's repositories (or of those matching the search)."""
        await self._fetch_repositories(more=False)

    @rx.event(background=True)
    async def more_repositories(self) -> None:
        await self._fetch_repositories(more=True)

    async def _fetch_repositories(self, *, more: bool) -> None:
        async with self:
            if not self._user_id or not self.linked or (more and self.loading_repos):
                return
            if not more:
                self._query += 1
            query, user_id, search = self._query, self.user_id, self.search
            page = self.repos_page + 1 if more else 1
            self.loading_repos = True
        try:
            found = await _github().repositories(user_id, search, page)
        except Shown as error:
            async with self:
                if self._query == query:
                    self.error, self.loading_repos = ui_text(error), False
            return
        async with self:
            if self._query != query or self._user_id != user_id:
                return
            repos = [
                Repo(
                    full_name=r.full_name,
                    name=r.full_name.split("/", 1)[1],
                    private=r.private,
                    description=r.description,
                    default_branch=r.default_branch,
                )
                for r in found.repositories
            ]
            self.repos = [*self.repos, *repos] if more else repos
            self.repos_page, self.repos_more = found.page, found.has_next
            self.loading_repos, self.error = False, ""

    @rx.event
    def choose(self, full_name: str) -> Any:
        """A repository picked: its branches load (the default one preselected), and the new
        project is named after it unless the user says otherwise."""
        repo = next((r for r in self.repos if r.full_name == full_name), None)
        if repo is None or self.cloning:
            return None
        self._choice += 1
        self.chosen, self.branches, self.branch = repo, [repo.default_branch], repo.default_branch
        self.new_branch, self.project_name, self.error = "", repo.name, ""
        self.cloned_into = self.clone_text = ""
        return GitHubState.load_branches

    @rx.event
    def unchoose(self) -> None:
        if not self.cloning:
            self._choice += 1
            self.chosen, self.branches, self.branch = Repo(), [], ""

    @rx.event(background=True)
    async def load_branches(self) -> None:
        async with self:
            if not self._user_id or not self.chosen.full_name:
                return
            choice, user_id, full_name = self._choice, self.user_id, self.chosen.full_name
            self.loading_branches = True
        names: list[str] = []
        try:
            for page in range(1, MAX_BRANCH_PAGES + 1):
                found, has_next = await _github().branches(user_id, full_name, page)
                names += [b.name for b in found]
                if not has_next:
                    break
        except Shown as error:
            async with self:
                if self._choice == choice:
                    self.error, self.loading_branches = ui_text(error), False
            return
        async with self:
            if self._choice != choice:
                return
            default = self.chosen.default_branch
            self.branches = sorted(names, key=lambda name: (name != default, name.lower()))
            if self.branch not in self.branches and self.branches:
                self.branch = self.branches[0]
            self.loading_branches = False

    @rx.event
    def set_branch(self, value: str) -> None:
        self.branch = value

    @rx.event
    def set_new_branch(self, value: str) -> None:
        self.new_branch = value

    @rx.event
    def set_project_name(self, value: str) -> None:
        self.project_name = value

    def _forget_picker(self) -> None:
        self._query += 1
        self._choice += 1
        self.search, self.repos, self.repos_page, self.repos_more = "", [], 0, False
        self.loading_repos = self.loading_branches = False
        self.chosen, self.branches, self.branch = Repo(), [], ""
        self.new_branch = self.project_name = ""

    # --- cloning ------------------------------------------------------------------------

    @rx.event
    def clone(self) -> Any:
        """Runs after the names' keystrokes (app/ui/state/__init__.py)."""
        return GitHubState.start_clone

    @rx.event(background=True)
    async def start_clone(self) -> AsyncIterator[Any]:
        """Clone the chosen repository into a new project, showing git's progress as it
        comes, then open that project (a new session in it)."""
        from app.ui.state.sessions import SessionsState
        from app.ui.state.workspace import WorkspaceState

        async with self:
            if self.cloning or not self._user_id or not self.chosen.full_name:
                return
            user_id, full_name = self.user_id, self.chosen.full_name
            branch, new_branch = self.branch or None, self.new_branch.strip() or None
            name = self.project_name.strip() or self.chosen.name
            self.cloning, self.error, self.cloned_into = True, "", ""
            self._show_progress(Progress("Starting", 0.0, ""))
        try:
            project_id = await self._clone(user_id, full_name, branch, new_branch, name)
        except Shown as error:
            async with self:
                self.error, self.clone_text, self.cloning = ui_text(error), "", False
            return
        except BaseException:
            async with self:
                self.cloning = False
            raise
        async with self:
            self.cloning, self.cloned_into = False, name
            self.clone_text, self.clone_percent = f"Cloned {full_name} into {name}", 100
        yield [
            WorkspaceState.load,
            WorkspaceState.choose_project(project_id),
            SessionsState.set_rail_open(False),
        ]

    async def _clone(
        self, user_id: str, full_name: str, branch: str | None, new_branch: str | None, name: str
    ) -> str:
        """The clone itself, outside the lock; git's latest progress is shown every tick.
        Returns the new project's id."""
        if new_branch is not None:
            valid_branch(new_branch)  # refused before a project is made for it
        engine = services().engine
        project = await engine.create_project(user_id, NewProject(name=name))
        destination = engine.project_dir(user_id, project.project_id)
        latest: list[Progress] = []
        job = asyncio.ensure_future(
            _github().clone(
                user_id,
                project.project_id,
                full_name,
                branch,
                destination,
                latest.append,
                new_branch,
            )
        )
        try:
            while not job.done():
                await asyncio.wait({job}, timeout=PROGRESS_TICK_S)
                if latest:
                    progress = latest[-1]
                    latest.clear()
                    async with self:
                        self._show_progress(progress)
            job.result()
        finally:
            job.cancel()  # this event was cancelled (the server stops): so is git
        return project.project_id

    def _show_progress(self, progress: Progress) -> None:
        """git's own phase and its percent ("Receiving objects 45% (9/20)"); the bar shows
        the whole clone."""
        percent = _phase_percent(progress)
        self.clone_text = f"{progress.phase} {percent}%" if percent is not None else progress.phase
        if progress.detail:
            self.clone_text += f" ({progress.detail})"
        self.clone_percent = round(progress.fraction * 100)

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""


async def _identity_link(user_id: str, workload_token: str) -> tuple[str, LinkStatus | None]:
    """(GitHub's consent URL, None), or ("", the status now linked) when AgentCore Identity
    already held the user's token."""
    url, login = await _github().start_link(user_id, "", workload_token)
    return url, (await _github().status(user_id) if login else None)


def socket_workload_token(sid: str) -> str:
    """The workload access token AgentCore put on this tab's socket, or "" (not on AgentCore,
    or AgentCore sent none). ContainerGate took it off the socket's headers (Reflex sends its
    copy of those to the page) into the connection's ASGI scope, which Reflex's socket server
    keeps in the connection's environ."""
    app = get_app().app
    namespace = app.event_namespace
    if app.sio is None or namespace is None or not sid:
        return ""
    environ = app.sio.get_environ(sid, namespace.namespace) or {}
    return str(environ.get("asgi.scope", {}).get(WORKLOAD_TOKEN_KEY) or "")


def _phase_percent(progress: Progress) -> int | None:
    done, _, total = progress.detail.partition("/")
    if done.isdigit() and total.isdigit() and int(total):
        return round(100 * int(done) / int(total))
    return 100 if progress.phase == "Done" else None


def _github() -> GitHubService:
    return services().github
