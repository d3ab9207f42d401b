"""GitHub through the API, against the local stand-in (OAuth, REST with GitHub's shapes, real
repositories over git's smart HTTP): link and unlink, repositories and branches, a clone into a
new project with git's progress, and the token nowhere it must not be."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.devtools.github import GitHubStandIn
from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env

FILES = {"README.md": "# demo\n", "src/app.py": "print('hello')\n"}


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path / "github") as stand_in:
        stand_in.add_user("alice")
        stand_in.add_user("mallory")
        stand_in.add_repo("alice", "demo", FILES, branches={"feature": {"NEW.md": "new\n"}})
        for n in range(35):
            stand_in.add_repo("alice", f"extra-{n:02}", {"x.txt": str(n)})
        stand_in.add_repo("mallory", "secret", {"s.txt": "s"})
        yield stand_in


@pytest.fixture
def app(tmp_path: Path, model_server: ModelServer, github: GitHubStandIn) -> Iterator[Api]:
    env = settings_env(
        tmp_path / "data",
        model_server,
        GITHUB_URL=github.web_url,
        GITHUB_API_URL=github.api_url,
        GITHUB_OAUTH_CLIENT_ID=github.client_id,
        GITHUB_OAUTH_CLIENT_SECRET=github.client_secret,
    )
    with serve_api(env) as running:
        yield running


def link(app: Api, github: GitHubStandIn, token: str, as_login: str = "alice") -> httpx.Response:
    """The whole web flow: the app's authorize URL, GitHub's page and button, the callback."""
    with app.client(token) as http:
        url = http.get("/github/authorize").json()["url"]
    github.signed_in_as = as_login
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and "repo" in page.text  # the scope, said
        form = dict(re.findall(r"name='(\w+)' value='([^']*)'", page.text))
        granted = browser.post(
            f"{github.web_url}/login/oauth/authorize", data={**form, "authorize": "1"}
        )
        assert granted.status_code == 302
        return browser.get(granted.headers["location"])


def test_link_list_clone_and_unlink(
    app: Api, github: GitHubStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = app.sign_up("alice@example.com")
    with app.client(token) as http:
        before = http.get("/github/status").json()
        assert before["configured"] and not before["linked"] and before["asks_for"] == "repo"
        assert http.get("/github/repositories").status_code == 400  # link first

    linked = link(app, github, token)
    assert linked.status_code == 200 and "Linked as alice" in linked.text

    with app.client(token) as http:
        assert http.get("/github/status").json()["login"] == "alice"
        first = http.get("/github/repositories").json()
        assert len(first["repositories"]) == 30 and first["has_next"]
        second = http.get("/github/repositories", params={"page": 2}).json()
        assert len(second["repositories"]) == 6 and not second["has_next"]
        names = {r["full_name"] for r in first["repositories"] + second["repositories"]}
        assert "alice/demo" in names and "mallory/secret" not in names
        found = http.get("/github/repositories", params={"search": "demo"}).json()
        assert [r["full_name"] for r in found["repositories"]] == ["alice/demo"]
        branches = http.get("/github/repositories/alice/demo/branches").json()["branches"]
        assert sorted(b["name"] for b in branches) == ["feature", "main"]

        with http.stream(
            "POST",
            "/workspace/clone-git",
            json={"repository": "alice/demo", "branch": "feature", "new_branch": "work"},
            headers={"Accept": "text/event-stream"},
        ) as streamed:
            frames = [
                json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")
            ]
        progress = [f["fraction"] for f in frames if f["type"] == "progress"]
        assert progress and progress == sorted(progress) and progress[-1] == 1.0
        assert frames[-1]["type"] == "cloned" and frames[-1]["branch"] == "work"
        project = frames[-1]["project"]
        assert project["name"] == "demo"

        again = http.post("/workspace/clone-git", json={"repository": "alice/demo"})
        assert again.status_code == 409 and "already has files" in again.json()["detail"]
        refused = http.post("/workspace/clone-git", json={"repository": "mallory/secret"})
        assert refused.status_code == 404

    folder = app.services.engine.project_dir(_user_id(app, token), project["project_id"])
    assert (folder / "src" / "app.py").read_text() == FILES["src/app.py"]
    assert (folder / "NEW.md").read_text() == "new\n"  # from `feature`
    head = (folder / ".git" / "HEAD").read_text()
    assert head.strip() == "ref: refs/heads/work"

    github_token = _github_token(app, token)
    assert github_token.startswith("gho_")
    _assert_nowhere(github_token, [folder, tmp_path / "data"])  # .git/config, the database
    assert github_token not in caplog.text  # the app's logs (and git's, which it logs)
    assert github_token not in json.dumps(frames) + json.dumps(first) + linked.text

    with app.client(token) as http:
        assert http.delete("/github/link").status_code == 204
        assert not http.get("/github/status").json()["linked"]
        assert http.get("/github/repositories").status_code == 400


def test_a_forged_or_stale_state_links_nobody(app: Api, github: GitHubStandIn) -> None:
    token = app.sign_up("bob@example.com")
    with app.client(token) as http:
        url = http.get("/github/authorize").json()["url"]
    state = parse_qs(urlsplit(url).query)["state"][0]
    user, expires, nonce, signature = state.split(".")
    for forged in (
        f"someone-else.{expires}.{nonce}.{signature}",
        f"{user}.{int(expires) + 999}.{nonce}.{signature}",
        "",
    ):
        with httpx.Client(base_url=app.url) as browser:
            page = browser.get("/oauth/github/callback", params={"code": "x", "state": forged})
        assert page.status_code == 400 and "stale or not yours" in page.text
    with app.client(token) as http:
        assert not http.get("/github/status").json()["linked"]


def test_githubs_refusals_reach_the_user_in_words(app: Api, github: GitHubStandIn) -> None:
    token = app.sign_up("carol@example.com")
    assert link(app, github, token).status_code == 200
    github.revoke(_github_token(app, token))
    with app.client(token) as http:
        answer = http.get("/github/repositories")
    assert answer.status_code == 401
    assert "link GitHub again" in answer.json()["detail"]


def _user_id(app: Api, token: str) -> str:
    with app.client(token) as http:
        return str(http.get("/auth/me").json()["user_id"])


def _github_token(app: Api, token: str) -> str:
    """The token as the app holds it: only through its own vault."""
    user_id = _user_id(app, token)
    link_row = app.services.store.github_link(user_id)
    assert link_row is not None
    return app.services.github._vault.open(link_row.token_sealed)


def _assert_nowhere(secret: str, roots: list[Path]) -> None:
    """Not in any file under the roots: the clone's .git/config, the database, logs."""
    needle = secret.encode()
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert needle not in path.read_bytes(), f"the token is in {path}"
