"""A user's workspace on a new machine: the engine restores the project and the CLI home from
S3 before the agent starts, and the conversation written on the old machine goes on."""

from __future__ import annotations

import json
from pathlib import Path

from app.agent.engine import AgentEngine
from app.agent.schemas import HistoryQuery, NewSession
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.workspace.bucket import BucketConfig
from app.workspace.sync import SyncConfig, WorkspaceSync
from tests.agent.helpers import Follower, say
from tests.conftest import ensure_user, new_engine
from tests.s3 import S3Server
from tests.workspace.test_sync import FixedKeys


def machine(
    data: Path, database: Path, server: ModelServer, s3: S3Server, bucket: str
) -> AgentEngine:
    """An app on its own disk (`data`), sharing the database and the bucket."""
    config = SyncConfig(
        BucketConfig(bucket=bucket, endpoint_url=s3.endpoint, region="us-east-1"),
        state_dir=data / "sync",
    )
    engine = new_engine(data, Store(open_database(f"sqlite:///{database}")), server)
    engine.workspaces = engine.pool.workspaces = WorkspaceSync(config, FixedKeys(config.bucket))
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
