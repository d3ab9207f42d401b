"""The Git tab: the open session's project as git sees it (branch, changes, a file's diff),
and the few things a user does with it from the page: commit the checked files, discard a
file's changes or all of them (once confirmed: there is no undo), switch or create a branch,
push to GitHub, open a pull request.

Every git command runs in the user's jail (`ProjectGit`), which takes a moment, and a push or a
pull request waits for GitHub: so each action is a background event that reads what it needs
under the state lock, works outside it and enters it again only to show the answer. The page
never freezes and a chat's stream keeps flowing meanwhile.

The view follows the agent: while the tab is showing, a watcher refreshes it when a turn ends
(the agent may have changed files, or committed), when another session is opened, and every
little while besides (a change made some other way).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import reflex as rx

from app.errors import AppError
from app.github.git import GitFailed
from app.github.repo import FileChange
from app.services import services
from app.ui.errors import Shown, ui_text
from app.ui.state.base import BaseState
from app.ui.state.chat import ChatState
from app.ui.state.files import FilesState
from app.ui.state.follow import follow_turns
from app.workspace import files
from app.workspace.place import ProjectPlace

MAX_DIFF_LINES = 3000  # a longer diff shows its start and says how much is left out
MAX_PR_COMMITS = 30  # commits listed in a drafted pull request's body
NOT_A_REPOSITORY = (
    "This project is not a git repository yet: ask the agent to run `git init`, or clone one "
    "from GitHub in the Projects tab."
)


@dataclass
class GitFile:
    """A changed file as the list shows it: one letter (M, A, D, R, ?) and its path."""

    path: str = ""
    code: str = ""


@dataclass
class DiffLine:
    text: str = ""
    kind: str = "ctx"  # add | del | hunk | meta | ctx (context)


@dataclass
class Said:
    """What an action answered, shown under its button: done, or why not."""

    text: str = ""
    failed: bool = False


UNEXPECTED = Said("Something went wrong; try again.", True)  # an error not ours to word


class GitState(BaseState):
    showing: bool = False  # the Git tab is the one open
    loading: bool = False
    project_id: str = ""
    project_name: str = ""
    github_repo: str = ""  # owner/name when the project was cloned from GitHub
    branch: str = ""
    branches: list[str] = []
    files: list[GitFile] = []
    unchecked: list[str] = []  # changed files left out of the next commit (new ones are in)
    selected: str = ""  # the file whose diff shows
    diff: list[DiffLine] = []
    error: str = ""
    # actions
    working: str = ""  # "Committing…", "Switching…": one change to the repository at a time
    commit_message: str = ""
    commit_said: Said = Said()
    discarding: list[str] = []  # the files whose discard waits to be confirmed
    discard_said: Said = Said()
    new_branch: str = ""
    branch_said: Said = Said()
    pushing: bool = False
    pulling: bool = False
    push_said: Said = Said()
    # the pull request
    pr_open: bool = False
    drafting: bool = False
    pr_title: str = ""
    pr_body: str = ""
    pr_base: str = ""
    opening_pr: bool = False
    pr_said: Said = Said()
    pr_url: str = ""
    pr_number: int = 0
    _session_id: str = ""  # the session whose project is shown
    _asked: int = 0  # bumped by each refresh: a late answer to an older one is dropped
    _watching: bool = False

    @rx.var
    def has_project(self) -> bool:
        return self.project_id != ""

    @rx.var
    def checked_count(self) -> int:
        return sum(f.path not in self.unchecked for f in self.files)

    # --- the tab ------------------------------------------------------------------------

    @rx.event
    def tab_changed(self, tab: str) -> Any:
        """The rail's tabs moved: the Git tab opened (refresh, and follow the agent) or
        closed (the watcher stops)."""
        self.showing = tab == "git"
        if self.showing:
            return [GitState.refresh, GitState.watch]
        return None

    @rx.event(background=True)
    async def refresh(self) -> None:
        await self._refresh()

    @rx.event(background=True)
    async def watch(self) -> None:
        """While the tab shows, refresh as the agent works (see app/ui/state/follow.py)."""
        await follow_turns(self, self._refresh)

    async def _refresh(self) -> None:
        """Branch, branches and changes of the open session's project, and the shown file's
        diff again. Called from background events (takes the lock itself)."""
        async with self:
            if not self._user_id:
                return
            self._asked += 1
            asked, user_id = self._asked, self.user_id
            session_id = (await self.get_state(ChatState)).session_id
            known = self.project_id if session_id == self._session_id else ""
            selected = self.selected
            self.loading = True
        view, failure = None, UNEXPECTED.text
        try:
            view = await _look(user_id, session_id, known, selected)
            failure = ""
        except Shown as error:
            failure = _words(error)
        finally:
            async with self:
                if self._asked == asked and self._user_id == user_id:
                    self.loading = False
                    self._answer(session_id, view, failure, selected)

    def _answer(self, session_id: str, view: _View | None, failure: str, selected: str) -> None:
        """A refresh's answer: what git said, or why it could not say (nothing of another
        project stays shown); no session open, nothing."""
        if failure:
            if session_id != self._session_id:
                self._forget_project()
            self.error = failure
            return
        if view is None:
            self._forget_project()
            self.error = ""
            return
        if view.project_id != self.project_id:
            self._forget_project()
        self._session_id = session_id
        self._show(view, selected)

    def _show(self, view: _View, selected: str) -> None:
        """Only what changed is set: a quiet refresh that found nothing new sends nothing."""
        fresh: dict[str, Any] = {
            "project_id": view.project_id,
            "project_name": view.project_name,
            "github_repo": view.github_repo,
            "branch": view.branch,
            "branches": view.branches,
            "files": view.files,
            "error": "",
        }
        if self.selected == selected:
            fresh["diff"] = view.diff
        if self.selected and all(f.path != self.selected for f in view.files):
            fresh["selected"], fresh["diff"] = "", []  # committed or reverted meanwhile
        fresh["unchecked"] = [p for p in self.unchecked if any(f.path == p for f in view.files)]
        for name, value in fresh.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    def _forget_project(self) -> None:
        self._session_id = ""
        self.project_id = self.project_name = self.github_repo = self.branch = ""
        self.branches, self.files, self.selected, self.diff = [], [], "", []
        self.unchecked, self.discarding = [], []
        self.commit_said = self.discard_said = Said()
        self.branch_said = self.push_said = self.pr_said = Said()
        self.pr_open, self.pr_url, self.pr_number = False, "", 0

    # --- a file's diff ------------------------------------------------------------------

    @rx.event(background=True)
    async def show_diff(self, path: str) -> None:
        """Clicking a changed file shows its diff (clicking it again hides it)."""
        async with self:
            if self.selected == path:
                self.selected, self.diff = "", []
                return
            change = next((f for f in self.files if f.path == path), None)
            if change is None:
                return
            self.selected, self.diff = path, []
            user_id, project_id = self.user_id, self.project_id
        try:
            diff = await _diff(await services().engine.project_place(user_id, project_id), change)
        except Shown as error:
            diff = [DiffLine(_words(error), "meta")]
        async with self:
            if self.selected == path:
                self.diff = diff

    # --- discard ------------------------------------------------------------------------

    @rx.event
    def ask_discard(self, path: str) -> None:
        self.discarding, self.discard_said = [path], Said()

    @rx.event
    def ask_discard_all(self) -> None:
        """Every change listed: exactly these are discarded once confirmed (a file the agent
        changes meanwhile, unseen, is not)."""
        self.discarding, self.discard_said = [f.path for f in self.files], Said()

    @rx.event
    def cancel_discard(self) -> None:
        self.discarding = []

    @rx.event(background=True)
    async def confirm_discard(self) -> Any:
        """The confirmed files back to the last commit (new ones deleted)."""
        async with self:
            paths = self.discarding
            if self.working or not self.project_id or not paths:
                return
            user_id, project_id = self.user_id, self.project_id
            self.discarding, self.working, self.discard_said = [], "Discarding…", Said()
        said = UNEXPECTED
        try:
            where = await services().engine.project_place(user_id, project_id)
            gone = await services().github.repos.discard(where, paths)
            await services().engine.project_changed(where)
            what = gone[0] if len(gone) == 1 else f"{len(gone)} files"
            said = Said(f"Discarded the changes to {what}.")
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                self.working, self.discard_said = "", said
        async for event in self._after_change():
            yield event

    async def _after_change(self) -> AsyncIterator[Any]:
        """After a commit or a discard: this tab again, and the Files tab's tree when it shows
        (a discard changes files on disk); it looks again itself whenever it opens."""
        await self._refresh()
        async with self:
            files_showing = (await self.get_state(FilesState)).showing
        if files_showing:
            yield FilesState.refresh

    # --- commit and branches ------------------------------------------------------------

    @rx.event
    def set_commit_message(self, value: str) -> None:
        self.commit_message = value

    @rx.event
    def check_file(self, path: str, checked: bool) -> None:
        """A changed file in (checked) or out of the next commit."""
        others = [p for p in self.unchecked if p != path]
        self.unchecked = others if checked else [*others, path]

    @rx.event
    def commit(self) -> Any:
        """Runs after the message's keystrokes (app/ui/state/__init__.py)."""
        return GitState.make_commit

    @rx.event(background=True)
    async def make_commit(self) -> Any:
        """Commit the checked files (every change when none is unchecked, as "Commit all"
        says), as the user; the new commit's sha is shown."""
        async with self:
            if self.working or not self.project_id:
                return
            user_id, project_id, message = self.user_id, self.project_id, self.commit_message
            paths = None
            if self.unchecked:
                paths = [f.path for f in self.files if f.path not in self.unchecked]
            self.working, self.commit_said = "Committing…", Said()
        said, sha = UNEXPECTED, ""
        try:
            where = await services().engine.project_place(user_id, project_id)
            name, email = await services().github.author(user_id)
            sha = await services().github.repos.commit(where, message, name, email, paths=paths)
            await services().engine.project_changed(where)
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                if sha:
                    said = Said(f"Committed {sha[:7]} on {self.branch}.")
                    self.commit_message = ""
                self.working, self.commit_said = "", said
        async for event in self._after_change():
            yield event

    @rx.event
    def set_new_branch(self, value: str) -> None:
        self.new_branch = value

    @rx.event(background=True)
    async def switch_branch(self, name: str) -> None:
        await self._switch(name, create=False)

    @rx.event
    def create_branch(self, _form: dict[str, Any]) -> Any:
        """A new branch from the current one, checked out; the changes come along (the
        form's input is the state's `new_branch`, read here: app/ui/state/__init__.py)."""
        name = self.new_branch.strip()
        return GitState.make_branch(name) if name else None  # type: ignore[misc]

    @rx.event(background=True)
    async def make_branch(self, name: str) -> None:
        await self._switch(name, create=True)

    async def _switch(self, name: str, *, create: bool) -> None:
        async with self:
            if self.working or not self.project_id or (name == self.branch and not create):
                return
            user_id, project_id = self.user_id, self.project_id
            self.working, self.branch_said = "Switching…", Said()
        said, switched = UNEXPECTED, False
        try:
            where = await services().engine.project_place(user_id, project_id)
            await services().github.repos.switch(where, name, create=create)
            switched = True
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                if switched:
                    said = Said(f"Made {name} and switched to it." if create else "")
                    self.branch = name
                    if create:
                        self.new_branch = ""
                    self.pr_open, self.pr_url, self.pr_said = False, "", Said()  # another head
                self.working, self.branch_said = "", said
        await self._refresh()

    # --- GitHub -------------------------------------------------------------------------

    @rx.event(background=True)
    async def push(self) -> None:
        """Send the current branch to the repository the project was cloned from."""
        async with self:
            if self.pushing or not self.project_id:
                return
            user_id, project_id = self.user_id, self.project_id
            self.pushing, self.push_said = True, Said()
        said = UNEXPECTED
        try:
            where = await services().engine.project_place(user_id, project_id)
            repository, branch = await services().github.push(where)
            said = Said(f"Pushed {branch} to {repository}.")
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                self.pushing, self.push_said = False, said

    @rx.event(background=True)
    async def pull(self) -> Any:
        """Bring GitHub's commits on the current branch in (a conflict merges nothing)."""
        async with self:
            if self.pulling or self.pushing or not self.project_id:
                return
            user_id, project_id = self.user_id, self.project_id
            self.pulling, self.push_said = True, Said()
        said = UNEXPECTED
        try:
            said = Said(
                await services().github.pull(
                    await services().engine.project_place(user_id, project_id)
                )
            )
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                self.pulling, self.push_said = False, said
        yield GitState.refresh

    @rx.event(background=True)
    async def start_pull_request(self) -> None:
        """Open the pull request form, drafted from the session: its title (or first
        prompt), the commits the branch adds to the base, the repository's default branch
        as base. Clicking again closes the form."""
        async with self:
            if self.pr_open:
                self.pr_open = False
                return
            if not self.project_id:
                return
            self.pr_open, self.drafting, self.pr_url, self.pr_said = True, True, "", Said()
            user_id, project_id, session_id = self.user_id, self.project_id, self._session_id
        said, draft = UNEXPECTED, None
        try:
            draft = await _draft(user_id, project_id, session_id)
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                if draft is None:
                    self.pr_said = said
                else:
                    self.pr_title, self.pr_body, self.pr_base = draft
                self.drafting = False

    @rx.event
    def set_pr_title(self, value: str) -> None:
        self.pr_title = value

    @rx.event
    def set_pr_body(self, value: str) -> None:
        self.pr_body = value

    @rx.event
    def set_pr_base(self, value: str) -> None:
        self.pr_base = value

    @rx.event
    def open_pull_request(self) -> Any:
        """Runs after the title's keystrokes (app/ui/state/__init__.py)."""
        return GitState.send_pull_request

    @rx.event(background=True)
    async def send_pull_request(self) -> None:
        """From the current branch into the base; GitHub's link, or its refusal in words."""
        async with self:
            if self.opening_pr or not self.project_id:
                return
            user_id, project_id = self.user_id, self.project_id
            title, body, base = self.pr_title, self.pr_body, self.pr_base.strip()
            self.opening_pr, self.pr_said, self.pr_url = True, Said(), ""
        said, made = UNEXPECTED, None
        try:
            where = await services().engine.project_place(user_id, project_id)
            made = await services().github.open_pull(
                where, title=title, body=body, head=None, base=base or None
            )
            said = Said(f"Opened pull request #{made.number}: {made.title}")
        except Shown as error:
            said = Said(_words(error), True)
        finally:
            async with self:
                if made is not None:
                    self.pr_url, self.pr_number = made.html_url, made.number
                self.opening_pr, self.pr_said = False, said

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""


@dataclass(frozen=True)
class _View:
    project_id: str
    project_name: str
    github_repo: str
    branch: str
    branches: list[str]
    files: list[GitFile]
    diff: list[DiffLine]


async def _look(user_id: str, session_id: str, project_id: str, selected: str) -> _View | None:
    """What the tab shows for the session's project (its project looked up unless known);
    None when no session is open."""
    if not session_id:
        return None
    if not project_id:
        project_id = (await services().engine.get(user_id, session_id)).project_id
    where = await services().engine.project_place(user_id, project_id)
    project = await asyncio.to_thread(
        services().store.get_project, user_id=user_id, project_id=project_id
    )
    repos = services().github.repos
    status = await repos.status(where)
    branches = await _branches(where, status.branch)
    changes = [_file(f) for f in status.files]
    diff: list[DiffLine] = []
    shown = next((f for f in changes if f.path == selected), None)
    if shown is not None:
        try:
            diff = await _diff(where, shown)
        except Shown as error:
            diff = [DiffLine(_words(error), "meta")]
    return _View(
        project_id=project_id,
        project_name=where.project_name,
        github_repo=project.github_repo or "",
        branch=status.branch,
        branches=branches,
        files=changes,
        diff=diff,
    )


async def _branches(where: ProjectPlace, current: str) -> list[str]:
    """The project's local branches, the current one included even before its first
    commit (git lists a branch only once it points somewhere)."""
    text = await services().github.repos.run(
        where, "for-each-ref", "--format=%(refname:short)", "refs/heads"
    )
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if current and current not in names:
        names.append(current)
    return sorted(names, key=str.lower)


def _file(change: FileChange) -> GitFile:
    """git's two letters (staged, unstaged) as one: what the commit will record for the file
    (a file added and then edited is still "A"; "?" is new to git)."""
    return GitFile(path=change.path, code=change.staged or change.unstaged or "M")


async def _diff(where: ProjectPlace, change: GitFile) -> list[DiffLine]:
    """A tracked file's diff against the last commit; a new file, which git has no diff for
    until it is added, as all its lines added."""
    path = change.path
    if change.code == "?":
        if path.endswith("/"):
            return [DiffLine("A new folder: git lists its files once they are committed.", "meta")]
        text = await asyncio.to_thread(files.read_text, where.project, path)
        added = [f"+{line}" for line in text.splitlines()]
        return _diff_lines([f"new file {path}", f"@@ -0,0 +1,{len(added)} @@", *added])
    text = await services().github.repos.diff(where, path)
    if not text.strip():
        return [DiffLine("No difference in the text (only the file's mode changed).", "meta")]
    return _diff_lines(text.splitlines())


def _diff_lines(lines: list[str]) -> list[DiffLine]:
    """Each line with its kind, for colouring: git's header lines up to the first hunk, then
    added, removed and context lines. A long diff is cut with a word of how much."""
    shown, in_hunk = [], False
    for line in lines[:MAX_DIFF_LINES]:
        if line.startswith("@@"):
            in_hunk, kind = True, "hunk"
        elif not in_hunk or line.startswith("\\"):  # "\ No newline at end of file"
            kind = "meta"
        else:
            kind = {"+": "add", "-": "del"}.get(line[:1], "ctx")
        shown.append(DiffLine(line, kind))
    if len(lines) > MAX_DIFF_LINES:
        shown.append(DiffLine(f"… {len(lines) - MAX_DIFF_LINES:,} more lines", "meta"))
    return shown


async def _draft(user_id: str, project_id: str, session_id: str) -> tuple[str, str, str]:
    """A pull request's (title, body, base) for the user to edit."""
    where = await services().engine.project_place(user_id, project_id)
    base = await _default_branch(where)
    commits = await _commits_since(where, base)
    title = ""
    if session_id:
        row = await services().engine.get(user_id, session_id)
        title = row.title or row.first_message
    title = (title.strip().splitlines() or [""])[0][:200]
    if not title and commits:
        title = commits[0].partition(" ")[2]
    listed = "\n".join(f"- {c.partition(' ')[2]} ({c.partition(' ')[0]})" for c in commits)
    body = f"Commits on this branch:\n\n{listed}\n" if listed else ""
    return title, body, base


async def _default_branch(where: ProjectPlace) -> str:
    """The branch the repository's HEAD named when it was cloned ("" when unknown: GitHub's
    default branch is then taken when the pull request is opened)."""
    try:
        said = await services().github.repos.run(
            where, "symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"
        )
    except GitFailed:
        return ""
    return said.strip().removeprefix("origin/")


async def _commits_since(where: ProjectPlace, base: str) -> list[str]:
    """ "<short sha> <subject>" of the commits the current branch has and the base (as cloned)
    lacks, newest first; without a base, the latest few."""
    repos = services().github.repos
    if base:
        try:
            text = await repos.run(
                where, "log", f"-n{MAX_PR_COMMITS}", "--format=%h %s",
                f"refs/remotes/origin/{base}..HEAD", "--",
            )  # fmt: skip
            return [line for line in text.splitlines() if line.strip()]
        except GitFailed:
            pass
    return [f"{c.sha[:7]} {c.subject}" for c in await repos.log(where, 5)]


def _words(error: Exception) -> str:
    """The error as the page says it; git's "not a git repository" as what to do about it."""
    text = ui_text(error)
    if isinstance(error, AppError) and "not a git repository" in text:
        return NOT_A_REPOSITORY
    return text
