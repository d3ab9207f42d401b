"""The GitHub stand-in: OAuth web flow, REST API, and real git clones and pushes over HTTP."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.devtools.github import GitHubStandIn

CALLBACK = "http://app.example/auth/github/callback"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path / "github") as server:
        server.add_user("alice")
        server.add_user("bob")
        server.add_repo(
            "alice",
            "agent-web",
            {"README.md": "# Agent Web\n", "src/app.py": "print('hi')\n"},
            branches={"feature": {"src/app.py": "print('feature')\n"}, "same": {}},
        )
        server.add_repo("alice", "public-notes", {"notes.md": "hello\n"}, private=False)
        server.add_repo("bob", "secret", {"x.txt": "x\n"})
        yield server


def api(github: GitHubStandIn, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=github.api_url, headers=headers, timeout=10)


class _Forms(HTMLParser):
    """The page's form action, fields (hidden inputs) and buttons by id."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and "id" in a:
            self.buttons[a["id"]] = (a.get("name", ""), a.get("value", ""))


def forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def authorize(github: GitHubStandIn, scope: str, button: str = "authorize") -> httpx.Response:
    """Open the authorize page as the signed-in user and press a button; the redirect back."""
    params = {"client_id": github.client_id, "redirect_uri": CALLBACK, "scope": scope}
    with httpx.Client(base_url=github.web_url, timeout=10) as web:
        page = web.get("/login/oauth/authorize", params={**params, "state": "st4te"})
        assert page.status_code == 200, page.text
        form = forms(page.text)
        name, value = form.buttons[button]
        return web.post(form.action, data={**form.fields, name: value})


def exchange(github: GitHubStandIn, code: str, **overrides: str) -> httpx.Response:
    body = {
        "client_id": github.client_id,
        "client_secret": github.client_secret,
        "code": code,
        "redirect_uri": CALLBACK,
        **overrides,
    }
    return httpx.post(
        github.web_url + "/login/oauth/access_token",
        data=body,
        headers={"Accept": "application/json"},
        timeout=10,
    )


# --------------------------------------------------------------------------- OAuth


def test_oauth_web_flow_gives_a_token_once_per_code(github: GitHubStandIn) -> None:
    params = {"client_id": github.client_id, "redirect_uri": CALLBACK, "scope": "repo read:user"}
    signed_out = httpx.get(github.web_url + "/login/oauth/authorize", params=params)
    assert signed_out.status_code == 200
    assert "Sign in to GitHub" in signed_out.text
    assert "authorize" not in forms(signed_out.text).buttons

    github.signed_in_as = "alice"
    page = httpx.get(github.web_url + "/login/oauth/authorize", params=params)
    assert "Authorize Agent Web" in page.text and "authorize" in forms(page.text).buttons
    assert "data-scope='repo'" in page.text and "data-scope='read:user'" in page.text
    unknown = httpx.get(
        github.web_url + "/login/oauth/authorize", params={**params, "client_id": "nope"}
    )
    assert unknown.status_code == 404

    back = authorize(github, "repo read:user")
    assert back.status_code == 302
    location = urlsplit(back.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    code = query["code"][0]

    answer = exchange(github, code)
    assert answer.status_code == 200
    grant = answer.json()
    assert grant["token_type"] == "bearer" and grant["scope"] == "repo,read:user"
    with api(github, grant["access_token"]) as client:
        me = client.get("/user")
    assert me.json()["login"] == "alice"
    assert me.headers["X-OAuth-Scopes"] == "repo, read:user"

    again = exchange(github, code)
    assert again.status_code == 200
    assert again.json()["error"] == "bad_verification_code"
    assert "access_token" not in again.json()


def test_oauth_errors_are_githubs(github: GitHubStandIn) -> None:
    github.signed_in_as = "alice"
    denied = parse_qs(urlsplit(authorize(github, "repo", "cancel").headers["location"]).query)
    assert denied["error"] == ["access_denied"] and denied["state"] == ["st4te"]

    code = parse_qs(urlsplit(authorize(github, "repo").headers["location"]).query)["code"][0]
    wrong_secret = exchange(github, code, client_secret="guess")
    assert wrong_secret.json()["error"] == "incorrect_client_credentials"

    github.code_lifetime_s = 0
    late = parse_qs(urlsplit(authorize(github, "repo").headers["location"]).query)["code"][0]
    assert exchange(github, late).json()["error"] == "bad_verification_code"

    github.code_lifetime_s = 600
    code = parse_qs(urlsplit(authorize(github, "").headers["location"]).query)["code"][0]
    form = httpx.post(  # without Accept: application/json, GitHub answers form-encoded
        github.web_url + "/login/oauth/access_token",
        data={"client_id": github.client_id, "client_secret": github.client_secret, "code": code},
    )
    assert form.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(form.text, keep_blank_values=True)
    assert fields["token_type"] == ["bearer"] and fields["scope"] == [""]
    with api(github, fields["access_token"][0]) as client:  # no scope: public repos only
        names = [r["name"] for r in client.get("/user/repos").json()]
    assert names == ["public-notes"]


# --------------------------------------------------------------------------- REST


def test_user_and_bad_credentials(github: GitHubStandIn) -> None:
    token = github.token_for("alice")
    me = httpx.get(github.api_url + "/user", headers={"Authorization": f"token {token}"})
    assert me.status_code == 200
    body = me.json()
    assert body["login"] == "alice" and isinstance(body["id"], int)
    assert body["html_url"] == f"{github.web_url}/alice" and body["avatar_url"] and body["name"]

    bad = httpx.get(github.api_url + "/user", headers={"Authorization": "Bearer gho_nope"})
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials"
    assert bad.json()["documentation_url"] == "https://docs.github.com/rest"
    assert httpx.get(github.api_url + "/user").status_code == 401


def test_user_repos_pages_with_link_headers(github: GitHubStandIn) -> None:
    for n in range(4):
        github.add_repo("alice", f"extra-{n}", {"f.txt": str(n)})
    names, url, pages = [], "/user/repos?per_page=2&sort=full_name", 0
    with api(github, github.token_for("alice")) as client:
        first = client.get(url)
        assert set(first.links) == {"next", "last"}
        assert "page=3" in first.links["last"]["url"] and "per_page=2" in first.links["last"]["url"]
        while url:
            answer = client.get(url)
            names += [r["full_name"] for r in answer.json()]
            pages += 1
            if pages == 2:
                assert set(answer.links) == {"prev", "next", "last", "first"}
            url = answer.links.get("next", {}).get("url", "")
    assert pages == 3
    assert names == sorted(names, key=str.lower) and len(names) == 6
    assert "bob/secret" not in names


def test_search_repositories(github: GitHubStandIn) -> None:
    with api(github, github.token_for("alice")) as client:
        found = client.get("/search/repositories", params={"q": "agent user:alice"}).json()
        assert found["total_count"] == 1 and found["incomplete_results"] is False
        assert found["items"][0]["full_name"] == "alice/agent-web"
        everything = client.get("/search/repositories", params={"q": "user:alice", "per_page": 1})
        assert everything.json()["total_count"] == 2 and len(everything.json()["items"]) == 1
        assert "next" in everything.links
        assert client.get("/search/repositories").status_code == 422
    with api(github, github.token_for("bob")) as client:  # alice's private repo stays hidden
        found = client.get("/search/repositories", params={"q": "user:alice"}).json()
    assert [r["full_name"] for r in found["items"]] == ["alice/public-notes"]


def test_repository_branches_and_visibility(github: GitHubStandIn) -> None:
    github.protect("alice", "agent-web", "main")
    with api(github, github.token_for("alice")) as client:
        repo = client.get("/repos/alice/agent-web").json()
        branches = client.get("/repos/alice/agent-web/branches", params={"per_page": 2})
    assert repo["full_name"] == "alice/agent-web" and repo["private"] is True
    assert repo["owner"]["login"] == "alice" and repo["default_branch"] == "main"
    assert repo["clone_url"] == f"{github.web_url}/alice/agent-web.git"
    assert repo["html_url"] == f"{github.web_url}/alice/agent-web"
    assert repo["permissions"] == {
        "admin": True,
        "maintain": True,
        "push": True,
        "triage": True,
        "pull": True,
    }
    assert [(b["name"], b["protected"]) for b in branches.json()] == [
        ("feature", False),
        ("main", True),
    ]
    assert branches.json()[1]["commit"]["sha"] == github.head_of("alice", "agent-web", "main")
    assert "next" in branches.links

    with api(github, github.token_for("bob")) as client:
        hidden = client.get("/repos/alice/agent-web")
        public = client.get("/repos/alice/public-notes").json()
    assert hidden.status_code == 404 and hidden.json()["message"] == "Not Found"
    assert public["permissions"]["push"] is False and public["permissions"]["pull"] is True
    with api(github, github.token_for("alice", scopes=("read:user",))) as client:
        assert client.get("/repos/alice/agent-web").status_code == 404


def test_pull_requests(github: GitHubStandIn) -> None:
    pull = {"title": "Feature", "head": "feature", "base": "main", "body": "Please merge."}
    with api(github, github.token_for("alice")) as client:
        created = client.post("/repos/alice/agent-web/pulls", json=pull)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["html_url"] == f"{github.web_url}/alice/agent-web/pull/1"
        assert body["number"] == 1 and body["state"] == "open" and body["title"] == "Feature"
        assert body["head"]["ref"] == "feature" and body["base"]["ref"] == "main"
        assert body["head"]["sha"] == github.head_of("alice", "agent-web", "feature")
        assert github.pulls == [body]
        assert httpx.get(body["html_url"]).status_code == 404  # private, nobody signed in

        duplicate = client.post("/repos/alice/agent-web/pulls", json=pull)
        assert duplicate.status_code == 422
        assert duplicate.json()["message"] == "Validation Failed"
        assert duplicate.json()["errors"] == [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for alice:feature.",
            }
        ]
        empty = client.post("/repos/alice/agent-web/pulls", json={**pull, "head": "same"})
        assert empty.json()["errors"][0]["message"] == "No commits between main and same"
        missing = client.post("/repos/alice/agent-web/pulls", json={**pull, "head": "nope"})
        assert missing.status_code == 422
        assert missing.json()["errors"][0] == {
            "resource": "PullRequest",
            "field": "head",
            "code": "invalid",
        }
        assert client.post("/repos/alice/nope/pulls", json=pull).status_code == 404
        listed = client.get("/repos/alice/agent-web/pulls", params={"state": "open"}).json()
        assert [p["number"] for p in listed] == [1]
    with api(github, github.token_for("bob")) as client:
        assert client.post("/repos/alice/agent-web/pulls", json=pull).status_code == 404
    assert len(github.pulls) == 1


# --------------------------------------------------------------------------- git over HTTP


def git_env(home: Path, token: str | None) -> dict[str, str]:
    """git with no user or system config; the token, if any, only in this environment."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@example.com",
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@example.com",
    }
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    return env


def git(
    cwd: Path, *args: str, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    home = next(p for p in (cwd, *cwd.parents) if p.name == "home")
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=git_env(home, token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_clone_commit_push_with_the_token_only_in_the_environment(
    github: GitHubStandIn, home: Path
) -> None:
    token = github.token_for("alice")
    url = f"{github.web_url}/alice/agent-web.git"
    git(home, "clone", "--quiet", url, "work", token=token)
    work = home / "work"
    assert (work / "src" / "app.py").read_text() == "print('hi')\n"
    config = (work / ".git" / "config").read_text()
    assert token not in config and "Authorization" not in config and "extraHeader" not in config

    (work / "src" / "app.py").write_text("print('changed')\n")
    (work / "big.bin").write_bytes(os.urandom(2_000_000))  # a pack larger than git's buffer
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "Change the app")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/agent/change", token=token)
    local = git(work, "rev-parse", "HEAD").stdout.strip()
    assert github.head_of("alice", "agent-web", "agent/change") == local
    assert (
        github.file_at("alice", "agent-web", "agent/change", "src/app.py") == "print('changed')\n"
    )
    assert github.head_of("alice", "agent-web", "main") != local

    git(work, "push", "--quiet", "origin", ":refs/heads/agent/change", token=token)
    assert github.head_of("alice", "agent-web", "agent/change") is None

    git_requests = [r for r in github.requests if r["path"].startswith("/alice/agent-web.git/")]
    assert {r["path"].rsplit("/", 1)[-1] for r in git_requests} >= {
        "refs",
        "git-upload-pack",
        "git-receive-pack",
    }
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert all(r["authorization"] == f"Basic {basic}" for r in git_requests)
    assert not any(token in r["path"] + r["query"] for r in github.requests)


def test_push_to_a_protected_branch_fails_with_gh006(github: GitHubStandIn, home: Path) -> None:
    github.protect("alice", "agent-web", "main")
    token = github.token_for("alice")
    git(home, "clone", "--quiet", f"{github.web_url}/alice/agent-web.git", "work", token=token)
    work = home / "work"
    (work / "README.md").write_text("changed\n")
    git(work, "commit", "--quiet", "-am", "Straight to main")
    before = github.head_of("alice", "agent-web", "main")
    pushed = git(work, "push", "origin", "HEAD:main", token=token, check=False)
    assert pushed.returncode != 0
    assert "GH006: Protected branch update failed for refs/heads/main." in pushed.stderr
    assert github.head_of("alice", "agent-web", "main") == before


def test_clone_needs_the_owners_token(github: GitHubStandIn, home: Path) -> None:
    url = f"{github.web_url}/alice/agent-web.git"
    anonymous = git(home, "clone", url, "anonymous", check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr
    assert any(r["status"] == 401 for r in github.requests)

    bob = git(home, "clone", url, "bob", token=github.token_for("bob"), check=False)
    assert bob.returncode != 0 and "Repository not found." in bob.stderr

    public = f"{github.web_url}/alice/public-notes.git"
    git(home, "clone", "--quiet", public, "notes")  # public: anyone reads
    refused = git(
        home / "notes",
        "push",
        "origin",
        "HEAD:refs/heads/bob",
        token=github.token_for("bob"),
        check=False,
    )
    assert "Permission to alice/public-notes.git denied to bob." in refused.stderr
    assert "403" in refused.stderr
    assert github.head_of("alice", "public-notes", "bob") is None
