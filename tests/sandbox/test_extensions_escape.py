"""Attacks on skills and plugins from inside the agent (the real CLI, every tool allowed, the
scripted model's "run bash ..."): Bob's agent gets his enabled extension bound into its jail;
it must not change that folder (the app's copy, which every later session of his loads) and
must not find Ann's extensions, which hold a canary. Nor can it plant links in a project folder
Bob then installs to have the app copy what the agent cannot read (the app's signing key, Ann's
skill). A positive control shows his own skill is really there to read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, agent_bash, serve_api, settings_env

CANARY = f"canary{secrets.token_hex(6)}"
MINE = "/opt/agent/plugins/0"  # where the jail shows the first enabled plugin


@dataclass
class World:
    api: Api
    data: Path
    ann_extension: Path  # Ann's copy in the app's data
    bob_extension: Path
    bob_token: str
    bob_session: str
    bob_project: str

    def bash(self, command: str) -> str:
        """Run `command` through Bob's agent; the tool's output as the agent saw it."""
        with self.api.client(self.bob_token) as http:
            return agent_bash(http, self.bob_session, command)


def _skill_in_a_project(api: Api, http: httpx.Client, name: str, body: str) -> tuple[str, Path]:
    """A skill installed from a folder of a new project and enabled there; returns the
    project's id and the library's copy."""
    project_id = http.post("/projects", json={"name": f"{name}-project"}).json()["project_id"]
    user_id = http.get("/auth/me").json()["user_id"]
    folder = api.services.engine.project_dir(user_id, project_id) / "skill"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {name}'s\n---\n{body}\n")
    installed = http.post("/extensions", json={"project_id": project_id, "path": "skill"})
    assert installed.status_code == 201, installed.text
    extension_id = installed.json()["id"]
    enabled = http.put(f"/projects/{project_id}/extensions", json={"extension_ids": [extension_id]})
    assert enabled.status_code == 200, enabled.text
    data = Path(api.services.settings.data_dir)
    return project_id, data / "extensions" / user_id / extension_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> Iterator[World]:
    data = tmp_path_factory.mktemp("data")
    (data / "secret.key").write_text(f"{CANARY}-signing-key-{'x' * 32}")
    with serve_api(settings_env(data, model_server)) as api:
        ann_token, bob_token = api.sign_up("ann@example.com"), api.sign_up("bob@example.com")
        with api.client(ann_token) as http:
            _, ann_extension = _skill_in_a_project(api, http, "ann-skill", f"{CANARY}-ann")
        with api.client(bob_token) as http:
            project_id, bob_extension = _skill_in_a_project(api, http, "bob-skill", "Bob's own.")
            body = {"project_id": project_id, "permission_mode": "bypassPermissions"}
            session = http.post("/sessions", json=body)
            assert session.status_code == 201, session.text
        assert CANARY in (ann_extension / "skills" / "ann-skill" / "SKILL.md").read_text()
        session_id = session.json()["session_id"]
        yield World(api, data, ann_extension, bob_extension, bob_token, session_id, project_id)


def test_the_agent_reads_its_own_enabled_skill(world: World) -> None:
    said = world.bash(f"cat {MINE}/skills/bob-skill/SKILL.md; ls /opt/agent/plugins")
    assert "Bob's own." in said and said.split()[-1] == "0", said


@pytest.mark.parametrize(
    "command",
    [
        f"echo pwned > {MINE}/skills/bob-skill/SKILL.md",
        f"echo pwned >> {MINE}/.claude-plugin/plugin.json",
        f"touch {MINE}/skills/bob-skill/hook.sh",
        f"rm -rf {MINE}/skills",
        f"mkdir {MINE}/hooks",
        f"chmod 777 {MINE}/skills/bob-skill/SKILL.md",
        f"mv {MINE}/skills/bob-skill {MINE}/skills/gone",
    ],
)
def test_the_agent_cannot_change_its_enabled_extension(world: World, command: str) -> None:
    said = world.bash(f"{command}; echo exit=$?")
    refused = ("Read-only file system", "Permission denied", "Operation not permitted")
    assert any(r in said for r in refused) and "exit=0" not in said, said
    skill = world.bob_extension / "skills" / "bob-skill" / "SKILL.md"
    assert skill.read_text().endswith("Bob's own.\n")
    assert sorted(p.name for p in world.bob_extension.rglob("*")) == sorted(
        [".claude-plugin", "plugin.json", "skills", "bob-skill", "SKILL.md"]
    )


def test_the_extension_is_a_read_only_mount_not_owned_by_the_agent(world: World) -> None:
    """Two walls: the bind is read-only, and (the app running as root) the files belong to
    the app, not to the user's sandbox uid."""
    said = world.bash(f"grep ' {MINE} ' /proc/self/mounts; stat -c %u {MINE}/skills; id -u")
    mount, owner, me = said.split("\n")[:3]
    assert " ro," in mount or mount.split()[3].startswith("ro"), said
    assert owner != me, said


def test_the_agent_cannot_remount_its_extension_writable(world: World) -> None:
    said = world.bash(f"mount -o remount,rw {MINE}; echo pwned > {MINE}/x; echo exit=$?")
    assert "exit=0" not in said, said
    assert not (world.bob_extension / "x").exists()


@pytest.mark.parametrize(
    "command",
    [
        "cat {ann}/skills/ann-skill/SKILL.md",
        "ls {library}",
        "ls /opt/agent/plugins/1",
        # In halves: the command itself (kept in the session's transcript) never holds it.
        "grep -rls '{half}''{rest}' /opt /home /workspace /tmp /run; echo searched",
        "find / -path /proc -prune -o -path /usr -prune -o -name SKILL.md -print 2>/dev/null",
    ],
)
def test_the_agent_cannot_find_another_users_extension(world: World, command: str) -> None:
    said = world.bash(
        command.format(
            ann=world.ann_extension,
            library=world.ann_extension.parent,
            half=CANARY[:8],
            rest=CANARY[8:],
        )
    )
    assert CANARY not in said and world.ann_extension.name not in said.replace(
        str(world.ann_extension), ""
    ), said
    assert "ann-skill" not in said or "No such file" in said, said
    assert "searched" not in said or said.split() == ["searched"], said


def test_links_the_agent_plants_in_a_folder_are_not_copied_by_the_app(world: World) -> None:
    said = world.bash(
        "mkdir -p trap/deep && printf -- '---\\nname: trap\\ndescription: t\\n---\\nok\\n' "
        f"> trap/SKILL.md && ln -s {world.data}/secret.key trap/key && "
        f"ln -s {world.ann_extension}/skills/ann-skill/SKILL.md trap/stolen.md && "
        f"ln -s {world.ann_extension} trap/library && ln -s /proc/1/environ trap/env && "
        "ln -s ../../../../.. trap/deep/up && echo planted"
    )
    assert "planted" in said, said
    with world.api.client(world.bob_token) as http:
        installed = http.post("/extensions", json={"project_id": world.bob_project, "path": "trap"})
        assert installed.status_code == 201, installed.text
        copy = world.bob_extension.parent / installed.json()["id"]
        kept = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
        texts = "".join(p.read_text(errors="replace") for p in copy.rglob("*") if p.is_file())
        assert http.delete(f"/extensions/{installed.json()['id']}").status_code == 204
    assert kept == [
        ".claude-plugin",
        ".claude-plugin/plugin.json",
        "skills",
        "skills/trap",
        "skills/trap/SKILL.md",
        "skills/trap/deep",
    ], kept
    assert CANARY not in texts
