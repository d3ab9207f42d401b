"""A project's files over HTTP, with the sandbox on: list, read, save, create, upload, rename
and delete; a save refused when the agent changed the file meanwhile (and forced); files the
editor cannot take. And attacks from inside the agent's world: links to `/etc/passwd`, to
another user's project and to a file in the app's data folder are never read, written,
renamed or deleted through (only a link itself can be renamed or deleted)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
CHANGED = "The file changed since you opened it (the agent may have edited it)"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[Api]:
    with serve_api(settings_env(tmp_path_factory.mktemp("files"), model_server)) as running:
        yield running


def project(app: Api, token: str, name: str) -> tuple[str, Path]:
    with app.client(token) as http:
        made = http.post("/projects", json={"name": name})
        assert made.status_code == 201, made.text
        project_id = made.json()["project_id"]
        user_id = http.get("/auth/me").json()["user_id"]
        assert http.get("/files", params={"project_id": project_id}).status_code == 200
    return project_id, app.services.engine.project_dir(user_id, project_id)


def as_agent(folder: Path, relative: str, data: bytes) -> Path:
    """Write a file as the agent would (owned by whoever owns the project)."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    owner = folder.stat()
    for made in [path, *path.relative_to(folder).parents]:
        os.lchown(folder / made, owner.st_uid, owner.st_gid)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names(http: httpx.Client, project_id: str, path: str = "") -> list[tuple[str, str]]:
    listed = http.get("/files", params={"project_id": project_id, "path": path})
    assert listed.status_code == 200, listed.text
    return [(e["name"], e["kind"]) for e in listed.json()["entries"]]


def test_list_read_save_create_upload_rename_and_delete(app: Api) -> None:
    token = app.sign_up("ann@example.com")
    project_id, folder = project(app, token, "editing")
    as_agent(folder, ".git/HEAD", b"ref: refs/heads/main\n")
    with app.client(token) as http:

        def post(route: str, **body: Any) -> httpx.Response:
            return http.post(f"/files/{route}", json={"project_id": project_id, **body})

        created = post("save", path="src/app.py", content="print(1)\n", version=None)
        assert created.status_code == 200, created.text
        assert created.json() == {"path": "src/app.py", "version": sha(b"print(1)\n"), "size": 9}
        assert (folder / "src" / "app.py").read_text() == "print(1)\n"
        sandbox = app.services.engine.sandbox
        assert sandbox.config.enabled and sandbox.problem is None
        if os.geteuid() == 0:  # written by the user's own uid in the jail, not by root
            assert (folder / "src" / "app.py").stat().st_uid >= sandbox.config.uid_base
        again = post("save", path="src/app.py", content="other", version=None)
        assert again.status_code == 409 and "already exists" in again.json()["detail"]

        assert post("folder", path="docs/img").status_code == 201
        assert post("folder", path="docs/img").status_code == 409
        upload = {"path": "docs/img/logo.png", "content_base64": base64.b64encode(PNG).decode()}
        assert post("upload", **upload).status_code == 201
        assert post("upload", **upload).status_code == 409
        assert post("upload", **upload, overwrite=True).status_code == 201
        assert (folder / "docs" / "img" / "logo.png").read_bytes() == PNG
        assert post("save", path="a.txt", content="a\n", version=None).status_code == 200

        root = http.get("/files", params={"project_id": project_id}).json()
        assert [(e["name"], e["kind"]) for e in root["entries"]] == [
            (".git", "folder"),
            ("docs", "folder"),
            ("src", "folder"),
            ("a.txt", "file"),
        ], "folders first"
        assert [e["name"] for e in root["entries"] if e["hidden"]] == [".git"]
        assert root["truncated"] is False
        [logo] = http.get("/files", params={"project_id": project_id, "path": "docs/img"}).json()[
            "entries"
        ]
        assert logo["path"] == "docs/img/logo.png" and logo["size"] == len(PNG)

        opened = http.get("/files/content", params={"project_id": project_id, "path": "src/app.py"})
        assert opened.json()["content"] == "print(1)\n"
        saved = post(
            "save", path="src/app.py", content="print(2)\n", version=opened.json()["version"]
        )
        assert saved.status_code == 200 and saved.json()["version"] == sha(b"print(2)\n")
        assert (folder / "src" / "app.py").read_text() == "print(2)\n"

        text = http.get("/files/raw", params={"project_id": project_id, "path": "src/app.py"})
        assert text.content == b"print(2)\n"
        assert text.headers["content-type"] == "text/x-python; charset=utf-8"
        assert text.headers["content-disposition"].startswith("inline")
        image = http.get(
            "/files/raw", params={"project_id": project_id, "path": "docs/img/logo.png"}
        )
        assert image.content == PNG and image.headers["content-type"] == "image/png"
        assert image.headers["content-disposition"] == (
            "attachment; filename=\"logo.png\"; filename*=UTF-8''logo.png"
        )

        assert post("rename", path="src/app.py", to="src/main.py").json() == {"path": "src/main.py"}
        assert not (folder / "src" / "app.py").exists()
        assert (folder / "src" / "main.py").read_text() == "print(2)\n"
        assert post("rename", path="a.txt", to="src/main.py").status_code == 409
        assert post("rename", path="src", to="src/inner").status_code == 400
        assert post("delete", path="docs").status_code == 204
        assert not (folder / "docs").exists()
        assert post("delete", path="docs").status_code == 404

        # The same through AgentCore's one entry point.
        invoked = http.post(
            "/invocations",
            json={
                "path": "/files/upload",
                "payload": {"project_id": project_id, "path": "up.txt", "content_base64": "aGk="},
            },
        )
        assert invoked.status_code == 201, invoked.text
        read = http.post(
            "/invocations",
            json={
                "path": "/files/content",
                "method": "GET",
                "query_params": {"project_id": project_id, "path": "up.txt"},
            },
        )
        assert read.status_code == 200 and read.json()["content"] == "hi"

    other = app.sign_up("ben@example.com")
    with app.client(other) as http:
        for route in ("/files", "/files/content", "/files/raw"):
            params = {"project_id": project_id, "path": "up.txt"}
            assert http.get(route, params=params).status_code == 404, "not someone else's"
        refused = http.post(
            "/files/delete", json={"project_id": project_id, "path": "up.txt"}
        ).status_code
        assert refused == 404 and (folder / "up.txt").exists()


def test_a_save_over_the_agents_edit_is_refused_unless_forced_and_what_the_editor_refuses(
    app: Api,
) -> None:
    token = app.sign_up("cleo@example.com")
    project_id, folder = project(app, token, "conflicts")
    with app.client(token) as http:

        def post(route: str, **body: Any) -> httpx.Response:
            return http.post(f"/files/{route}", json={"project_id": project_id, **body})

        def content(path: str) -> httpx.Response:
            return http.get("/files/content", params={"project_id": project_id, "path": path})

        post("save", path="notes.md", content="mine\n", version=None)
        opened = content("notes.md").json()["version"]
        as_agent(folder, "notes.md", b"the agent's edit\n")  # between opening and saving
        refused = post("save", path="notes.md", content="mine, edited\n", version=opened)
        assert refused.status_code == 409 and refused.json()["detail"].startswith(CHANGED)
        assert (folder / "notes.md").read_text() == "the agent's edit\n", "nothing lost"
        forced = post("save", path="notes.md", content="mine, edited\n", version=opened, force=True)
        assert forced.status_code == 200, forced.text
        assert (folder / "notes.md").read_text() == "mine, edited\n"

        opened = forced.json()["version"]
        (folder / "notes.md").unlink()  # the agent deleted it
        gone = post("save", path="notes.md", content="back\n", version=opened)
        assert gone.status_code == 409 and "deleted" in gone.json()["detail"]
        again = post("save", path="notes.md", content="back\n", version=opened, force=True)
        assert again.status_code == 200 and (folder / "notes.md").read_text() == "back\n"

        # A save that cannot be written leaves the old file whole (and no temporary file).
        (folder / "notes.md").chmod(0o755)
        folder.chmod(0o555)
        try:
            failed = post("save", path="notes.md", content="new\n", version=sha(b"back\n"))
        finally:
            folder.chmod(0o755)
        assert failed.status_code == 403, failed.text
        assert sorted(p.name for p in folder.iterdir()) == ["notes.md"]
        assert (folder / "notes.md").read_text() == "back\n"
        kept = post("save", path="notes.md", content="new\n", version=sha(b"back\n"))
        assert kept.status_code == 200 and (folder / "notes.md").stat().st_mode & 0o777 == 0o755

        as_agent(folder, "big.log", b"x" * (2 * 1024 * 1024 + 1))
        as_agent(folder, "blob.bin", b"\x7fELF\x00\x01")
        as_agent(folder, "latin1.txt", "café".encode("latin-1"))
        assert content("big.log").status_code == 413
        assert http.get("/files/raw", params={"project_id": project_id, "path": "big.log"}).content
        for binary in ("blob.bin", "latin1.txt"):
            answer = content(binary)
            assert answer.status_code == 415 and "download it" in answer.json()["detail"]
        assert content("nowhere.txt").status_code == 404
        assert content(".").status_code == 400
        too_big = post("save", path="huge.txt", content="y" * (2 * 1024 * 1024 + 1), version=None)
        assert too_big.status_code == 413
        huge = post("upload", path="huge.bin", content_base64="A" * (28 * 1024 * 1024))
        assert huge.status_code == 413
        assert post("upload", path="bad.bin", content_base64="not base64!").status_code == 400
        os.mkfifo(folder / "pipe")  # would block a plain open() forever
        assert content("pipe").status_code == 404
        for bad in ("../x", "/etc/passwd", "a/../../x", "a\x00b"):
            assert post("save", path=bad, content="", version=None).status_code == 400, bad
            assert content(bad).status_code == 400, bad
        assert content("a" * 1001).status_code == 422

        (folder / "many").mkdir()
        for i in range(2001):
            (folder / "many" / f"{i:04}.txt").touch()
        many = http.get("/files", params={"project_id": project_id, "path": "many"}).json()
        assert len(many["entries"]) == 2000 and many["truncated"] is True
        assert many["entries"][0]["path"] == "many/0000.txt"


def test_links_planted_by_the_agent_lead_nowhere(app: Api, tmp_path: Path) -> None:
    token = app.sign_up("dana@example.com")
    project_id, folder = project(app, token, "hostile")
    _, victim = project(app, app.sign_up("eve@example.com"), "victim")
    as_agent(victim, "secret.txt", b"eve's secret\n")
    data_dir = app.services.settings.data_dir
    canary = data_dir / "canary.txt"
    canary.write_bytes(b"the app's canary\n")
    as_agent(folder, "notes.txt", b"notes\n")
    (folder / "link").symlink_to("/etc/passwd")
    (folder / "dirlink").symlink_to(victim)
    (folder / "outside").symlink_to(canary)
    (folder / "db").symlink_to(data_dir / "app.db")
    targets = [Path("/etc/passwd"), victim / "secret.txt", canary]

    def state() -> dict[str, Any]:
        return {
            **{str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in targets},
            "victim": sorted(str(p) for p in victim.rglob("*")),
            "data": sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("app.db")),
            "db": (data_dir / "app.db").stat().st_ino,
        }

    before = state()
    secrets = [b"root:x:0:0", b"eve's secret", b"the app's canary", b"SQLite format 3"]
    with app.client(token) as http:

        def post(route: str, **body: Any) -> httpx.Response:
            return http.post(f"/files/{route}", json={"project_id": project_id, **body})

        listed = http.get("/files", params={"project_id": project_id}).json()["entries"]
        links = {e["name"]: e["target"] for e in listed if e["kind"] == "link"}
        assert links == {
            "link": "/etc/passwd",
            "dirlink": str(victim),
            "outside": str(canary),
            "db": str(data_dir / "app.db"),
        }
        assert (
            http.get("/files", params={"project_id": project_id, "path": "dirlink"}).status_code
            == 404
        )

        for path in ("link", "dirlink/secret.txt", "outside", "db", "dirlink/../secret.txt"):
            for route in ("/files/content", "/files/raw"):
                read = http.get(route, params={"project_id": project_id, "path": path})
                assert read.status_code in (400, 404), (route, path, read.status_code)
                assert not any(s in read.content for s in secrets), (route, path)

        attempts = [
            ("save", {"path": "dirlink/new.txt", "content": "x", "version": None}),
            (
                "save",
                {"path": "dirlink/secret.txt", "content": "x", "version": None, "force": True},
            ),
            ("save", {"path": "link", "content": "x", "version": None, "force": True}),
            ("save", {"path": "outside", "content": "x", "version": sha(b"the app's canary\n")}),
            ("upload", {"path": "dirlink/up.bin", "content_base64": "eA=="}),
            ("upload", {"path": "outside", "content_base64": "eA==", "overwrite": True}),
            ("upload", {"path": "db", "content_base64": "eA==", "overwrite": True}),
            ("folder", {"path": "dirlink/newdir"}),
            ("rename", {"path": "dirlink/secret.txt", "to": "stolen.txt"}),
            ("rename", {"path": "notes.txt", "to": "dirlink/notes.txt"}),
            ("rename", {"path": "notes.txt", "to": "../notes.txt"}),
            ("rename", {"path": "notes.txt", "to": str(tmp_path / "notes.txt")}),
            ("rename", {"path": "notes.txt", "to": "dirlink/../../notes.txt"}),
            ("delete", {"path": "dirlink/secret.txt"}),
        ]
        for route, body in attempts:
            answer = post(route, **body)
            assert answer.status_code in (400, 404), (route, body, answer.text)
        assert state() == before, "nothing outside the project changed"
        assert not (folder / "stolen.txt").exists() and (folder / "notes.txt").exists()
        assert not (tmp_path / "notes.txt").exists()

        # A link itself is the project's: it can be renamed and deleted; its target stays.
        assert post("rename", path="link", to="passwd-link").status_code == 200
        assert os.readlink(folder / "passwd-link") == "/etc/passwd"
        for link in ("passwd-link", "dirlink", "outside", "db"):
            assert post("delete", path=link).status_code == 204, link
        assert names(http, project_id) == [("notes.txt", "file")]
    assert state() == before, "the links went, not what they pointed to"
