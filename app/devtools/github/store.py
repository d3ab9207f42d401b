"""The stand-in's state: users, tokens, OAuth codes, pull requests, and real bare repositories.

Everything here is shared between the test's thread and the server's; one lock guards it. Git
is the only source of truth for branches and commits (a push changes them behind our back).
Owners and repository names are matched case-insensitively, as on GitHub.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 60.0
CODE_LIFETIME_S = 600.0  # GitHub's OAuth codes expire after 10 minutes
SCOPE_REPO, SCOPE_PUBLIC_REPO = "repo", "public_repo"
PROTECTED_KEY = "github.protected"  # repository config read by the pre-receive hook
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")  # GitHub's user names
REPO_NAME = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}$")

# GitHub refuses updates of protected branches from its pre-receive hook; so does this one.
PRE_RECEIVE_HOOK = f"""#!/bin/sh
# Installed by the GitHub stand-in (app/devtools/github): protected branches, the default branch.
status=0
head=$(git symbolic-ref -q HEAD)
while read -r old new ref; do
    if git config --get-all {PROTECTED_KEY} | grep -qxF "$ref"; then
        echo "error: GH006: Protected branch update failed for $ref." >&2
        echo "error: Changes must be made through a pull request." >&2
        status=1
    elif [ "$new" = 0000000000000000000000000000000000000000 ] && [ "$ref" = "$head" ]; then
        echo "error: refusing to delete the current branch: $ref" >&2
        status=1
    fi
done
exit $status
"""


def now_iso(stamp: float) -> str:
    """GitHub's timestamps: ISO 8601 in UTC with a Z, to the second."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_env(root: Path) -> dict[str, str]:
    """A clean environment for the stand-in's own git processes: no user or system config."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(root),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


@dataclass(frozen=True)
class User:
    login: str
    id: int
    name: str


@dataclass(frozen=True)
class Token:
    value: str
    login: str
    scopes: tuple[str, ...]

    def can_read(self, repo: Repo) -> bool:
        return not repo.private or (self.owns(repo) and SCOPE_REPO in self.scopes)

    def can_write(self, repo: Repo) -> bool:
        """Push and open pull requests: the owner, with `repo` (or `public_repo` if public)."""
        if not self.owns(repo):
            return False
        return SCOPE_REPO in self.scopes or (not repo.private and SCOPE_PUBLIC_REPO in self.scopes)

    def can_open_pull(self, repo: Repo) -> bool:
        """Anyone who can read a repository opens pull requests in it, given a repo scope."""
        scoped = SCOPE_REPO in self.scopes or (
            not repo.private and SCOPE_PUBLIC_REPO in self.scopes
        )
        return self.can_read(repo) and scoped

    def owns(self, repo: Repo) -> bool:
        return self.login.lower() == repo.owner.lower()


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    private: bool
    default_branch: str
    path: Path
    created_at: float
    pushed_at: float
    protected: set[str] = field(default_factory=set)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Grant:
    """An OAuth authorization code waiting to be exchanged."""

    login: str
    scopes: tuple[str, ...]
    client_id: str
    redirect_uri: str
    expires_at: float


class GitError(RuntimeError):
    pass


class Store:
    """All the stand-in's state; methods are safe to call from any thread."""

    def __init__(self, root: Path, app_name: str) -> None:
        self.root = root
        self.app_name = app_name
        self.client_id = "Iv1." + secrets.token_hex(8)
        self.client_secret = secrets.token_hex(20)
        self.callback_url: str | None = None  # None: any redirect_uri is accepted
        self.code_lifetime_s = CODE_LIFETIME_S
        self.signed_in_as: str | None = None
        self.web_url = ""
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.tokens: dict[str, Token] = {}
        self.grants: dict[str, Grant] = {}
        self.pulls: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._next_id = 1000

    @property
    def api_url(self) -> str:
        return self.web_url + "/api/v3"

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    # ------------------------------------------------------------------ users and tokens

    def add_user(self, login: str) -> None:
        if not LOGIN.match(login):
            raise ValueError(f"{login!r}: not a GitHub user name")
        with self.lock:
            if login.lower() in self.users:
                raise ValueError(f"user {login!r} exists")
            self.users[login.lower()] = User(login=login, id=self.new_id(), name=login)

    def user(self, login: str) -> User | None:
        with self.lock:
            return self.users.get(login.lower())

    def issue_token(self, login: str, scopes: tuple[str, ...]) -> str:
        user = self.user(login)
        if user is None:
            raise ValueError(f"no user {login!r}")
        value = "gho_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "z")[:36]
        with self.lock:
            self.tokens[value] = Token(value=value, login=user.login, scopes=scopes)
        return value

    def token(self, value: str) -> Token | None:
        with self.lock:
            return self.tokens.get(value)

    def revoke(self, value: str) -> None:
        with self.lock:
            self.tokens.pop(value, None)

    def grant_code(self, login: str, scopes: tuple[str, ...], redirect_uri: str) -> str:
        code = secrets.token_hex(10)
        expires = time.monotonic() + self.code_lifetime_s
        with self.lock:
            self.grants[code] = Grant(login, scopes, self.client_id, redirect_uri, expires)
        return code

    def take_grant(self, code: str) -> Grant | None:
        """The code's grant, once: codes are single use, and worthless once expired."""
        with self.lock:
            grant = self.grants.pop(code, None)
        if grant is None or time.monotonic() >= grant.expires_at:
            return None
        return grant

    # ------------------------------------------------------------------ repositories

    def repo(self, owner: str, name: str) -> Repo | None:
        with self.lock:
            return self.repos.get((owner.lower(), name.lower()))

    def repos_of(self, login: str) -> list[Repo]:
        with self.lock:
            return [r for r in self.repos.values() if r.owner.lower() == login.lower()]

    def all_repos(self) -> list[Repo]:
        with self.lock:
            return list(self.repos.values())

    def add_repo(
        self,
        owner: str,
        name: str,
        files: dict[str, str],
        *,
        default_branch: str,
        private: bool,
        branches: dict[str, dict[str, str]] | None,
    ) -> Repo:
        user = self.user(owner)
        if user is None:
            raise ValueError(f"no user {owner!r}: add_user first")
        if not REPO_NAME.match(name) or name.lower().endswith(".git"):
            raise ValueError(f"{name!r}: not a GitHub repository name")
        if self.repo(owner, name) is not None:
            raise ValueError(f"repository {owner}/{name} exists")
        path = self.root / user.login / f"{name}.git"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.git(
            path.parent,
            "init",
            "--quiet",
            "--bare",
            f"--initial-branch={default_branch}",
            str(path),
        )
        self.git(path, "config", "http.receivepack", "true")
        hook = path / "hooks" / "pre-receive"
        hook.write_text(PRE_RECEIVE_HOOK)
        hook.chmod(0o755)
        self.git(
            path,
            "fast-import",
            "--quiet",
            stdin=_fast_import(user, default_branch, files, branches or {}),
        )
        stamp = time.time()
        repo = Repo(self.new_id(), user.login, name, private, default_branch, path, stamp, stamp)
        with self.lock:
            self.repos[(owner.lower(), name.lower())] = repo
        return repo

    def protect(self, repo: Repo, branch: str) -> None:
        with self.lock:
            repo.protected.add(branch)
        self.git(repo.path, "config", "--add", PROTECTED_KEY, f"refs/heads/{branch}")

    # ------------------------------------------------------------------ reading with git

    def git(self, cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
        result = self.run_git(cwd, *args, stdin=stdin)
        if result.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def run_git(
        self, cwd: Path, *args: str, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        env = git_env(self.root)
        if cwd.suffix == ".git":
            env["GIT_DIR"] = str(cwd)
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )

    def head_of(self, repo: Repo, branch: str) -> str | None:
        ref = f"refs/heads/{branch}^{{commit}}"
        result = self.run_git(repo.path, "rev-parse", "--verify", "--quiet", ref)
        if result.returncode != 0:
            return None
        return result.stdout.decode().strip() or None

    def file_at(self, repo: Repo, branch: str, path: str) -> str | None:
        result = self.run_git(repo.path, "cat-file", "blob", f"refs/heads/{branch}:{path}")
        return result.stdout.decode() if result.returncode == 0 else None

    def branches(self, repo: Repo) -> list[tuple[str, str]]:
        """(name, head sha) of every branch, sorted by name as GitHub lists them."""
        out = self.git(
            repo.path, "for-each-ref", "--format=%(refname:strip=2)%00%(objectname)", "refs/heads"
        )
        pairs = [line.split("\0", 1) for line in out.decode().splitlines() if line]
        return sorted((name, sha) for name, sha in pairs)

    def commits_between(self, repo: Repo, base: str, head: str) -> int:
        out = self.git(repo.path, "rev-list", "--count", f"refs/heads/{base}..refs/heads/{head}")
        return int(out.strip())


def _quote_path(path: str) -> str:
    if "\n" in path or not path or path.startswith("/"):
        raise ValueError(f"bad file path {path!r}")
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fast_import(
    user: User,
    default_branch: str,
    files: dict[str, str],
    branches: dict[str, dict[str, str]],
) -> bytes:
    """A `git fast-import` stream: `files` on the default branch, each extra branch one commit
    on top of it (its files added or replacing the default branch's), or the same commit if
    the branch brings no files."""
    stamp = int(time.time())
    who = f"{user.name} <{user.id}+{user.login}@users.noreply.github.com> {stamp} +0000"
    out: list[bytes] = []

    def commit(branch: str, message: str, changes: dict[str, str], *, first: bool) -> None:
        mark = "mark :1\n" if first else ""
        out.append(f"commit refs/heads/{branch}\n{mark}committer {who}\n".encode())
        out.append(_data(message))
        if not first and files:
            out.append(b"from :1\n")
        for path, content in changes.items():
            out.append(f"M 100644 inline {_quote_path(path)}\n".encode() + _data(content))

    if files:
        commit(default_branch, "Initial commit", files, first=True)
    for branch, changes in branches.items():
        if changes or not files:
            commit(branch, f"Changes on {branch}", changes, first=False)
        else:  # no changes: the branch points at the default branch's commit
            out.append(f"reset refs/heads/{branch}\nfrom :1\n\n".encode())
    return b"".join(out)


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"
