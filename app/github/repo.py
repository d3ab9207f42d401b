"""A project's git repository, worked on for the user from the page (and the agent's tools).

The repository is the agent's to shape, `.git/config` and hooks included, so no git command
of the app runs on it with the app's privileges: status, diff, log, commit, discard and branches
run in the user's jail (`Sandbox.command`), as the agent itself would run them. Paths the user
names reach git after `--` and as literal paths (no `*` or `:(magic)`), and only paths git lists
as changed are acted on. A push fetches the branch out of the jail (git's upload-pack runs in
there) into a mirror the app owns, and pushes from that mirror with the token, to the
repository the project was cloned from; whatever the project's own config says about remotes,
URLs, proxies or credentials plays no part.
"""

from __future__ import annotations

import asyncio
import shlex
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.errors import Conflict, Forbidden, InvalidInput
from app.github.git import GitFailed, owned, safety, valid_branch
from app.sandbox.service import Sandbox
from app.workspace.place import ProjectPlace

MAX_DIFF = 400_000
_JAIL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
LITERAL = "--literal-pathspecs"  # a path named "*" or ":(top)" means that file, nothing more


@dataclass(frozen=True)
class FileChange:
    path: str
    staged: str  # git's one-letter codes: M modified, A added, D deleted, R renamed, ? new
    unstaged: str
    origin: str = ""  # a rename's old path: committed or discarded together with `path`


@dataclass(frozen=True)
class Status:
    branch: str
    files: list[FileChange]
    unborn: bool = False  # no commit yet: there is no HEAD to go back to


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    date: int  # unix time
    subject: str


class ProjectGit:
    def __init__(self, sandbox: Sandbox, mirrors_dir: Path) -> None:
        self.sandbox = sandbox
        self.mirrors_dir = mirrors_dir

    async def run(self, where: ProjectPlace, *args: str) -> str:
        """`git <args>` in the user's jail, on the project; its stdout."""
        code, out, err = await self._jailed(where, ["git", "-c", "core.quotePath=false", *args])
        if code != 0:
            said = err.strip().splitlines()
            command = next(a for a in args if not a.startswith("-") and "=" not in a)
            raise GitFailed(f"git {command}: {' '.join(said[-2:])[:300] or 'failed'}")
        return out

    async def _jailed(
        self, where: ProjectPlace, argv: list[str], stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        async with self.sandbox.command(
            user_id=where.user_id,
            project=where.project,
            project_name=where.project_name,
            home=where.home,
            argv=argv,
        ) as jailed:
            process = await asyncio.create_subprocess_exec(
                *jailed.argv,
                cwd=jailed.cwd,
                env={**_JAIL_ENV, "HOME": jailed.home},
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate(stdin)
        assert process.returncode is not None
        return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    async def status(self, where: ProjectPlace) -> Status:
        text = await self.run(where, "status", "--porcelain=v1", "--branch", "-z")
        entries = text.split("\0")
        branch = entries[0].removeprefix("## ").split("...")[0] if entries else ""
        files, rest = [], iter(entries[1:])
        for entry in rest:
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            source = next(rest, "") if code[0] in "RC" else ""  # a copy's source is untouched
            origin = source if code[0] == "R" else ""
            files.append(FileChange(path, code[0].strip(), code[1].strip(), origin))
        unborn = branch.startswith("No commits yet on ")
        return Status(branch.removeprefix("No commits yet on "), files, unborn)

    async def log(self, where: ProjectPlace, limit: int = 50) -> list[Commit]:
        text = await self.run(
            where, "log", f"-n{limit}", "--format=%H%x1f%an%x1f%at%x1f%s%x1e", "--"
        )
        commits = []
        for record in filter(None, (r.strip() for r in text.split("\x1e"))):
            sha, author, date, subject = record.split("\x1f", 3)
            commits.append(Commit(sha, author, int(date), subject))
        return commits

    async def diff(self, where: ProjectPlace, path: str) -> str:
        text = await self.run(where, "diff", "HEAD", "--", _path(path))
        return text if len(text) <= MAX_DIFF else text[:MAX_DIFF] + "\n… (cut: the diff is long)"

    async def commit(
        self,
        where: ProjectPlace,
        message: str,
        name: str,
        email: str,
        *,
        paths: list[str] | None = None,
    ) -> str:
        """Commit every change, or only `paths` as they are on disk; the new commit's sha.

        With paths, `git commit --only` builds the commit from HEAD and those paths alone: a
        file the agent staged earlier but the user left out stays staged, not committed."""
        if not message.strip():
            raise InvalidInput("Say what the commit does: the message is empty.")
        chosen: list[str] = []
        if paths is None:
            await self.run(where, "add", "-A")
            if not (await self.status(where)).files:
                raise Conflict("Nothing to commit: the project has no changes.")
        else:
            named = _paths(paths, "commit")
            status = await self.status(where)
            chosen = _among(status, named, "commit")
            new = [f.path for f in status.files if f.staged == "?" and f.path in chosen]
            if new:  # `--only` takes the files git knows as they are on disk; these it learns
                await self.run(where, LITERAL, "add", "--", *new)
        only = ["--only", "--", *chosen] if chosen else []
        await self.run(
            where, LITERAL, "-c", f"user.name={name}", "-c", f"user.email={email}",
            "commit", "-q", "--no-verify", "-m", message, *only,
        )  # fmt: skip
        return (await self.run(where, "rev-parse", "HEAD")).strip()

    async def discard(self, where: ProjectPlace, paths: list[str] | None) -> list[str]:
        """Throw away the changes to `paths` (None: every change), staged and unstaged alike:
        a file git knows goes back to the last commit, a new one is deleted. There is no undo,
        so the page asks first. Returns the paths discarded."""
        named = None if paths is None else _paths(paths, "discard")
        status = await self.status(where)
        if named is None:
            chosen = [p for f in status.files for p in (f.path, f.origin) if p]
            if not chosen:
                raise Conflict("Nothing to discard: the project has no changes.")
        else:
            chosen = _among(status, named, "discard")
        new = {f.path for f in status.files if f.staged == "?"}
        known, untracked = [p for p in chosen if p not in new], [p for p in chosen if p in new]
        if known and status.unborn:  # nothing to go back to: out of the index, then deleted
            await self.run(where, LITERAL, "rm", "-r", "-q", "-f", "--cached", "--", *known)
            known, untracked = [], chosen
        if known:
            await self.run(
                where, LITERAL, "restore", "--source=HEAD", "--staged", "--worktree", "--", *known
            )
        if untracked:
            await self.run(where, LITERAL, "clean", "-f", "-d", "-q", "--", *untracked)
        return [f.path for f in status.files if f.path in chosen]

    async def switch(self, where: ProjectPlace, branch: str, *, create: bool) -> None:
        await self.run(where, "switch", *(["-c"] if create else []), valid_branch(branch))

    async def push(
        self, where: ProjectPlace, web_url: str, full_name: str, branch: str, token: str
    ) -> None:
        """Send `branch` to GitHub's `full_name` (a new branch there, or a fast-forward)."""
        valid_branch(branch)
        mirror = await self._mirror(where)
        ref = f"refs/heads/{branch}"
        async with self.sandbox.command(
            user_id=where.user_id,
            project=where.project,
            project_name=where.project_name,
            home=where.home,
            argv=["git-upload-pack", "."],
        ) as jailed:
            with tempfile.TemporaryDirectory(prefix="agent-web-upload-pack-") as scratch:
                # git runs "<this> '<path>'": the path is ignored, the jail serves the project.
                wrapper = Path(scratch) / "upload-pack"
                variables = {**_JAIL_ENV, "HOME": jailed.home}
                env = " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
                argv = " ".join(shlex.quote(a) for a in jailed.argv)
                wrapper.write_text(
                    f"#!/bin/sh\ncd {shlex.quote(str(jailed.cwd))} && exec env -i {env} {argv}\n"
                )
                wrapper.chmod(stat.S_IRWXU)
                await _git(
                    mirror, None, "-c", "protocol.file.allow=always", "fetch", "--no-tags",
                    "--upload-pack", str(wrapper), str(where.project), f"+{ref}:{ref}",
                )  # fmt: skip
        await _git(
            mirror, token, *safety(web_url), "push", "--porcelain",
            f"{web_url}/{full_name}.git", f"{ref}:{ref}",
        )  # fmt: skip

    async def pull(
        self,
        where: ProjectPlace,
        web_url: str,
        full_name: str,
        branch: str,
        token: str,
        author: tuple[str, str],
    ) -> str:
        """Bring GitHub's `branch` into the project's branch of that name: fetched with the
        token into the app's mirror, handed into the jail as a bundle (the project's git never
        talks to GitHub), merged there. Returns what happened, in words."""
        valid_branch(branch)
        mirror = await self._mirror(where)
        ref = f"refs/heads/{branch}"
        await _git(
            mirror, token, *safety(web_url), "fetch", "--no-tags",
            f"{web_url}/{full_name}.git", f"+{ref}:refs/github/{branch}",
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="agent-web-bundle-") as scratch:
            bundle = Path(scratch) / "pull.bundle"
            await _git(mirror, None, "bundle", "create", str(bundle), f"refs/github/{branch}")
            data = await asyncio.to_thread(bundle.read_bytes)
        script = "\n".join(
            [
                "cat > /tmp/pull.bundle || exit 2",
                'git fetch -q /tmp/pull.bundle "refs/github/$1:refs/remotes/github/$1" || exit 2',
                'git -c user.name="$2" -c user.email="$3" merge --no-edit "refs/remotes/github/$1"'
                " && exit 0",
                "git merge --abort 2>/dev/null; exit 3",
            ]
        )
        argv = ["/bin/sh", "-c", script, "pull", branch, *author]
        code, out, err = await self._jailed(where, argv, data)
        if code == 3:
            raise Conflict(
                f"GitHub's {branch} and the project's changes conflict: nothing was merged. "
                "Commit or move the conflicting changes, then pull again (or ask the agent)."
            )
        if code != 0:
            raise GitFailed(f"The pull failed: {' '.join(err.strip().splitlines()[-2:])[:300]}")
        return "Already up to date." if "Already up to date" in out else f"Pulled {branch}."

    async def _mirror(self, where: ProjectPlace) -> Path:
        mirror = self.mirrors_dir / where.user_id / f"{where.project_id}.git"
        if not (mirror / "HEAD").exists():
            await asyncio.to_thread(mirror.mkdir, parents=True, exist_ok=True, mode=0o700)
            await _git(mirror, None, "init", "-q", "--bare")
        return mirror


async def _git(repository: Path, token: str | None, *args: str) -> str:
    """git on the mirror; a failure is GitHub's refusal, in words."""
    code, out, err = await owned(repository, token, *args)
    if code != 0:
        raise _refusal(err + out, token)
    return out


def _refusal(said: str, token: str | None) -> Exception:
    """GitHub's refusal of a push, in words (and never with the token)."""
    if token:
        said = said.replace(token, "***")
    lines = [line.removeprefix("remote: ").strip() for line in said.splitlines() if line.strip()]
    text = " ".join(lines[-4:])[:400]
    if "GH006" in said or "protected branch" in said.lower():
        return Forbidden(f"GitHub refused the push: the branch is protected ({text}).")
    if "non-fast-forward" in said or "fetch first" in said:
        return Conflict(
            "GitHub has commits on that branch that the project does not: pull them first, "
            "or push to a new branch."
        )
    if "403" in said or "401" in said or "Authentication failed" in said:
        return Forbidden(f"GitHub refused the push: link GitHub again or check access ({text}).")
    return GitFailed(f"The push failed: {text or 'git gave no reason'}.")


def _path(path: str) -> str:
    """A path inside the project, which git cannot take for an option."""
    if not path or path.startswith(("/", "-")) or ".." in Path(path).parts or "\0" in path:
        raise InvalidInput(f"{path[:200]!r} is not a path inside the project, such as src/app.py.")
    return path


def _paths(paths: list[str], doing: str) -> list[str]:
    """The paths a user chose, checked before git runs at all (and each once)."""
    if not paths:
        raise InvalidInput(f"Choose at least one file to {doing}.")
    return list(dict.fromkeys(_path(p) for p in paths))


def _among(status: Status, paths: list[str], doing: str) -> list[str]:
    """`paths`, each one a change git lists, with a rename's old path beside its new one (the
    two halves of one change); a path that is no change is refused, nothing is guessed."""
    changes = {f.path: f for f in status.files}
    missing = [p for p in paths if p not in changes]
    if missing:
        raise Conflict(
            f"{', '.join(missing[:5])[:300]}: no changes to {doing} (refresh and choose again)."
        )
    return list(dict.fromkeys(p for path in paths for p in (path, changes[path].origin) if p))
