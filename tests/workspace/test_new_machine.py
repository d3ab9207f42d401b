"""A user's workspace on a new machine: the engine restores the project and the CLI home from
S3 before the agent starts, and the conversation written on the old machine goes on."""

from __future__ import annotations

import json
from pathlib import Path

from app.agent.engine import AgentEngine
from app.agent.extensions import ExtensionInstall, Extensions
from app.agent.schemas import HistoryQuery, NewProject, NewSession
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.workspace.bucket import BucketConfig
from app.workspace.sync import SyncConfig, WorkspaceSync
from tests.agent.helpers import Follower, say
from tests.conftest import ensure_user, new_engine
from tests.s3 import S3Server
from tests.workspace.machines import FixedKeys


def machine(
    data: Path,
    database: Path,
    server: ModelServer,
    s3: S3Server,
    bucket: str,
    *,
    library: bool = False,
) -> AgentEngine:
    """An app on its own disk (`data`), sharing the database and the bucket; with `library`,
    the users' skills and plugins too."""
    config = SyncConfig(
        BucketConfig(bucket=bucket, endpoint_url=s3.endpoint, region="us-east-1"),
        state_dir=data / "sync",
    )
    store = Store(open_database(f"sqlite:///{database}"))
    extensions = data / "extensions"
    engine = new_engine(data, store, server, extensions_dir=extensions if library else None)
    engine.workspaces = engine.pool.workspaces = WorkspaceSync(config, FixedKeys(config.bucket))
    if library:
        engine.use_extensions(Extensions(store, extensions, engine.project_place, engine.sandbox))
    return engine


async def test_a_conversation_goes_on_on_a_new_machine(
    tmp_path: Path, model_server: ModelServer, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    database = tmp_path / "shared.db"
    old = machine(tmp_path / "old", database, model_server, s3_server, bucket)
    await old.start()
    user_id = ensure_user(old.store, "ann@example.com").id
    session = await old.create(user_id, NewSession(permission_mode="bypassPermissions"))
    follow = await Follower.start(old, user_id, session.session_id)
    await say(old, user_id, session.session_id, "echo the secret word is walrus")
    await follow.turn_end()
    await say(
        old, user_id, session.session_id, "run bash printf 'made on the old machine' > notes.txt"
    )
    await follow.turn_end()
    await old.shutdown()  # the microVM goes; what it had is in S3

    new = machine(tmp_path / "new", database, model_server, s3_server, bucket)
    await new.start()
    try:
        assert not (tmp_path / "new" / "projects").exists(), "a fresh disk"
        follow = await Follower.start(new, user_id, session.session_id)
        await say(new, user_id, session.session_id, "echo and again")
        await follow.turn_end()
        request = [r for r in model_server.requests if "and again" in json.dumps(r)][-1]
        assert "the secret word is walrus" in json.dumps(request["messages"]), "resumed"
        notes = new.project_dir(user_id, session.project_id) / "notes.txt"
        assert notes.read_text() == "made on the old machine"
        page = await new.history(user_id, session.session_id, HistoryQuery())
        assert page.messages[-1]["content"] == "You said: and again"
        statuses = {s.scope: s for s in await new.sync_status(user_id)}
        assert set(statuses) == {"projects/default", "claude"}
        assert not any(s.error for s in statuses.values())
    finally:
        await new.shutdown()


async def test_skills_installed_on_one_machine_reach_the_agent_on_the_next(
    tmp_path: Path, model_server: ModelServer, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    database = tmp_path / "shared.db"
    old = machine(tmp_path / "old", database, model_server, s3_server, bucket, library=True)
    await old.start()
    user_id = ensure_user(old.store, "ann@example.com").id
    project = await old.create_project(user_id, NewProject(name="skilled"))
    skill = old.project_dir(user_id, project.project_id) / "greeter"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: hello-world\ndescription: Greets warmly\n---\nSay hello, walrus.\n"
    )
    install = ExtensionInstall(project_id=project.project_id, path="greeter")
    view = await old.install_extension(user_id, install)
    old.library().set_enabled(user_id, project.project_id, [view.id])
    await old.shutdown()  # the microVM goes before any agent ran: the install alone was sent

    new = machine(tmp_path / "new", database, model_server, s3_server, bucket, library=True)
    await new.start()
    try:
        assert not (tmp_path / "new" / "extensions").exists(), "a fresh disk"
        request = NewSession(project_id=project.project_id, permission_mode="bypassPermissions")
        session = await new.create(user_id, request)
        follow = await Follower.start(new, user_id, session.session_id)
        await say(new, user_id, session.session_id, "use skill hello-world:hello-world")
        await follow.turn_end()
        asked = [r for r in model_server.requests if "Say hello, walrus." in json.dumps(r)]
        assert asked, "the agent on the new machine loaded the skill from the restored library"
        statuses = {s.scope for s in await new.sync_status(user_id)}
        assert statuses == {"projects/skilled", "claude", "extensions"}
    finally:
        await new.shutdown()
