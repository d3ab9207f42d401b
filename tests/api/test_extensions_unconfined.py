"""Skills without a sandbox (AGENT_SANDBOX=off, a single-user laptop): an API of its own, so it
is not the sandboxed one of tests/api/test_extensions.py (one API per test process at a time)."""

from __future__ import annotations

from pathlib import Path

from app.devtools.model_server import ModelServer
from tests.api.conftest import serve_api, settings_env
from tests.api.test_extensions import SKILL, _project, _use_skill


def test_without_a_sandbox_the_cli_loads_the_library_copy_itself(
    tmp_path: Path, model_server: ModelServer
) -> None:
    """AGENT_SANDBOX=off (a single-user laptop): no jail to bind into, so the CLI is given the
    library's own folder."""
    env = settings_env(tmp_path / "data", model_server, AGENT_SANDBOX="off")
    with serve_api(env) as app, app.client(app.sign_up("solo@example.com")) as http:
        project_id, folder = _project(app, http, "solo")
        (folder / "hello").mkdir()
        (folder / "hello" / "SKILL.md").write_text(SKILL)
        skill = http.post("/extensions", json={"project_id": project_id, "path": "hello"}).json()
        http.put(f"/projects/{project_id}/extensions", json={"extension_ids": [skill["id"]]})
        said = _use_skill(http, project_id, "hello-world:hello-world")
        user_id = http.get("/auth/me").json()["user_id"]
        library = tmp_path / "data" / "extensions" / user_id / skill["id"]
        assert f"Base directory for this skill: {library}/skills/hello-world" in said, said
