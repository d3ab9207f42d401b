"""Skills and plugins over HTTP, with the sandbox on and the real CLI: a skill installed from a
project folder and enabled in one project is a skill the agent of that project can use, and
not one of another project's; a plugin is cloned from a git URL (HTTPS, through the egress
allowlist); bad sources are refused with a clear 4xx; another user sees and touches nothing."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.devtools.github import GitHubStandIn
from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, free_port, serve_api, settings_env
from tests.api.test_sessions import stream_turn

SKILL = "---\nname: hello-world\ndescription: Greets the user warmly\n---\nSay hello.\n"
PLUGIN = {
    ".claude-plugin/plugin.json": '{"name": "house-style", "description": "Our conventions"}',
    "skills/tidy/SKILL.md": "---\nname: tidy\ndescription: Tidies code\n---\nTidy it.\n",
}


class TlsFront:
    """HTTPS in front of a plain HTTP server (the GitHub stand-in), with a certificate of its
    own that git is told to trust (GIT_SSL_CAINFO, as an operator's own CA would be)."""

    def __init__(self, backend_port: int, folder: Path) -> None:
        self.backend_port = backend_port
        self.cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.cert, key)
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        threading.Thread(target=_pump, args=(backend, secure), daemon=True).start()
        _pump(secure, backend)

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            end.close()


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(tmp_path_factory.mktemp("github")) as stand_in:
        stand_in.add_user("octo")
        stand_in.add_repo("octo", "house-style", PLUGIN, private=False)
        stand_in.add_repo("octo", "nothing", {"README.md": "# no skill here\n"}, private=False)
        yield stand_in


@pytest.fixture(scope="module")
def front(github: GitHubStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    port = int(github.web_url.rsplit(":", 1)[1])
    tls = TlsFront(port, tmp_path_factory.mktemp("tls"))
    yield tls
    tls.close()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer, front: TlsFront
) -> Iterator[Api]:
    os.environ["GIT_SSL_CAINFO"] = str(front.cert)
    env = settings_env(
        tmp_path_factory.mktemp("extensions"),
        model_server,
        AGENT_ALLOWED_HOSTS=f"default,127.0.0.1:{front.port}",
    )
    try:
        with serve_api(env) as running:
            yield running
    finally:
        del os.environ["GIT_SSL_CAINFO"]


def _project(app: Api, http: httpx.Client, name: str) -> tuple[str, Path]:
    project_id = http.post("/projects", json={"name": name}).json()["project_id"]
    user_id = http.get("/auth/me").json()["user_id"]
    folder = app.services.engine.project_dir(user_id, project_id)
    folder.mkdir(parents=True, exist_ok=True)
    return project_id, folder


def _use_skill(http: httpx.Client, project_id: str, skill: str) -> str:
    """What the agent of a new session in the project says after calling the Skill tool (the
    scripted model repeats the prompt it gets next: a loaded skill's body, as the CLI sends it)."""
    body = {"project_id": project_id, "permission_mode": "bypassPermissions"}
    created = http.post("/sessions", json=body)
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    frames = stream_turn(
        http,
        f"/sessions/{session_id}/messages/stream",
        {"message": f"use skill {skill}"},
        lambda _permission: None,
    )
    http.delete(f"/sessions/{session_id}")
    return " ".join(str(f["content"]) for f in frames if f["type"] == "text")


def test_a_skill_from_a_project_folder_reaches_that_projects_agents_only(app: Api) -> None:
    token = app.sign_up("sky@example.com")
    with app.client(token) as http:
        project_id, folder = _project(app, http, "tools")
        other_project, _ = _project(app, http, "elsewhere")
        (folder / "skills" / "hello").mkdir(parents=True)
        (folder / "skills" / "hello" / "SKILL.md").write_text(SKILL)
        (folder / "skills" / "hello" / "greeting.txt").write_text("hi\n")

        installed = http.post(
            "/extensions", json={"project_id": project_id, "path": "skills/hello"}
        )
        assert installed.status_code == 201, installed.text
        skill = installed.json()
        assert (skill["kind"], skill["name"]) == ("skill", "hello-world")
        assert skill["description"] == "Greets the user warmly"
        assert skill["source"] == "tools/skills/hello"
        assert http.get("/extensions").json() == [skill]
        # A copy: changing the project's folder afterwards changes nothing installed.
        (folder / "skills" / "hello" / "SKILL.md").write_text("changed")

        assert http.get(f"/projects/{project_id}/extensions").json() == {"extension_ids": []}
        enabled = http.put(
            f"/projects/{project_id}/extensions", json={"extension_ids": [skill["id"]]}
        )
        assert enabled.json() == {"extension_ids": [skill["id"]]}
        assert http.get(f"/projects/{project_id}/extensions").json() == enabled.json()

        said = _use_skill(http, project_id, "hello-world:hello-world")
        assert "Base directory for this skill: /opt/agent/plugins/0/skills/hello-world" in said
        assert "Say hello." in said and "changed" not in said, said
        said = _use_skill(http, other_project, "hello-world:hello-world")
        assert "Unknown skill: hello-world:hello-world" in said, said

    # Another user: nothing to see, enable, or remove.
    other = app.sign_up("mal@example.com")
    with app.client(other) as http:
        mine, _ = _project(app, http, "mine")
        assert http.get("/extensions").json() == []
        assert http.delete(f"/extensions/{skill['id']}").status_code == 404
        taken = http.put(f"/projects/{mine}/extensions", json={"extension_ids": [skill["id"]]})
        assert taken.status_code == 404
        assert http.get(f"/projects/{project_id}/extensions").status_code == 404
        assert (
            http.put(f"/projects/{project_id}/extensions", json={"extension_ids": []}).status_code
            == 404
        )
        stolen = http.post("/extensions", json={"project_id": project_id, "path": "skills/hello"})
        assert stolen.status_code == 404

    with app.client(token) as http:
        assert http.delete(f"/extensions/{skill['id']}").status_code == 204
        assert http.get("/extensions").json() == []
        assert http.get(f"/projects/{project_id}/extensions").json() == {"extension_ids": []}
        assert http.delete(f"/extensions/{skill['id']}").status_code == 404
    library = Path(app.services.settings.data_dir) / "extensions"
    assert not any(p.name == skill["id"] for p in library.glob("*/*"))


def test_a_plugin_is_cloned_from_https_through_the_allowlist(
    app: Api, github: GitHubStandIn, front: TlsFront
) -> None:
    token = app.sign_up("gil@example.com")
    url = f"https://127.0.0.1:{front.port}/octo/house-style.git"
    with app.client(token) as http:
        installed = http.post("/extensions", json={"git_url": url})
        assert installed.status_code == 201, installed.text
        plugin = installed.json()
        assert (plugin["kind"], plugin["name"], plugin["source"]) == ("plugin", "house-style", url)
        user_id = http.get("/auth/me").json()["user_id"]
        folder = Path(app.services.settings.data_dir) / "extensions" / user_id / plugin["id"]
        assert (folder / "skills" / "tidy" / "SKILL.md").read_text().endswith("Tidy it.\n")
        assert not (folder / ".git").exists()
        assert http.post("/extensions", json={"git_url": url}).status_code == 409  # same name

        # A host the allowlist does not name is refused by the proxy, as for an agent.
        plain_port = github.web_url.rsplit(":", 1)[1]
        refused = http.post(
            "/extensions", json={"git_url": f"https://127.0.0.1:{plain_port}/octo/x.git"}
        )
        assert refused.status_code == 422, refused.text
        assert f"127.0.0.1:{plain_port} is not on your agents' egress allowlist" in refused.text
        empty = http.post(
            "/extensions", json={"git_url": f"https://127.0.0.1:{front.port}/octo/nothing.git"}
        )
        assert empty.status_code == 400 and "Neither a skill" in empty.text
        assert [e["id"] for e in http.get("/extensions").json()] == [plugin["id"]]


def test_bad_sources_are_refused_and_nothing_leads_out_of_the_project(app: Api) -> None:
    token = app.sign_up("bea@example.com")
    with app.client(token) as http:
        project_id, folder = _project(app, http, "odd")
        outside = Path(app.services.settings.data_dir) / "outside-secret.txt"
        outside.write_text("app secret\n")
        (folder / "plain").mkdir()
        (folder / "plain" / "notes.txt").write_text("no skill\n")
        (folder / "badname").mkdir()
        (folder / "badname" / "SKILL.md").write_text("---\nname: Bad Name!\ndescription: x\n---\n")
        (folder / "escape").symlink_to(Path(app.services.settings.data_dir))
        (folder / "leaky").mkdir()
        (folder / "leaky" / "SKILL.md").write_text(SKILL.replace("hello-world", "leaky"))
        (folder / "leaky" / "secret.txt").symlink_to(outside)
        (folder / "leaky" / "etc").symlink_to("/etc")
        (folder / "leaky" / "inner.md").symlink_to("SKILL.md")

        for body, status, words in (
            ({"project_id": project_id, "path": "../../.."}, 400, "out of the project"),
            ({"project_id": project_id, "path": "/etc"}, 400, "relative"),
            ({"project_id": project_id, "path": "escape"}, 400, "out of the project"),
            ({"project_id": project_id, "path": "missing"}, 400, "No folder"),
            ({"project_id": project_id, "path": "plain"}, 400, "Neither a skill"),
            ({"project_id": project_id, "path": "badname"}, 400, "name"),
            ({"project_id": "no-such-project", "path": "plain"}, 404, "project"),
            ({"git_url": "http://example.com/x.git"}, 400, "https"),
            ({"git_url": "https://me:pw@example.com/x.git"}, 400, "password"),
            ({"git_url": "file:///etc"}, 400, "https"),
            ({"git_url": "https://example.com/x.git", "project_id": project_id}, 400, "either"),
            ({}, 400, "either"),
        ):
            answer = http.post("/extensions", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert words in answer.json()["detail"], answer.text

        kept = http.post("/extensions", json={"project_id": project_id, "path": "leaky"})
        assert kept.status_code == 201, kept.text
        user_id = http.get("/auth/me").json()["user_id"]
        copy = Path(app.services.settings.data_dir) / "extensions" / user_id / kept.json()["id"]
        inside = copy / "skills" / "leaky"
        assert sorted(p.name for p in inside.iterdir()) == ["SKILL.md", "inner.md"]
        assert not any(p.is_symlink() for p in copy.rglob("*"))
        assert "app secret" not in "".join(p.read_text() for p in copy.rglob("*") if p.is_file())

        bogus = http.put(f"/projects/{project_id}/extensions", json={"extension_ids": ["nope"]})
        assert bogus.status_code == 404


def test_an_extension_over_the_size_cap_is_refused(app: Api) -> None:
    token = app.sign_up("big@example.com")
    with app.client(token) as http:
        project_id, folder = _project(app, http, "big")
        (folder / "many").mkdir()
        (folder / "many" / "SKILL.md").write_text(SKILL.replace("hello-world", "many"))
        for n in range(2001):
            (folder / "many" / f"{n}.txt").write_text("x")
        answer = http.post("/extensions", json={"project_id": project_id, "path": "many"})
        assert answer.status_code == 400 and "2000 files" in answer.text
        assert http.get("/extensions").json() == []
