"""Machines that keep a project in S3 and never share a disk: the sync tests' cast."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from app.workspace.bucket import BucketConfig, KeyRing, Keys
from app.workspace.sync import Scope, SyncConfig, WorkspaceSync
from tests.s3 import ACCESS_KEY, SECRET_KEY, S3Server


class FixedKeys(KeyRing):
    """The test server's keys (no AssumeRole here; see test_scoped_credentials)."""

    def for_user(self, user_key: str) -> Keys:
        return Keys(ACCESS_KEY, SECRET_KEY)


class Machine:
    """One machine: its own disk (project folder, sync state) and the shared bucket."""

    def __init__(self, root: Path, server: S3Server, bucket: str, user: str = "u1") -> None:
        config = SyncConfig(
            BucketConfig(bucket=bucket, endpoint_url=server.endpoint, region="us-east-1"),
            state_dir=root / "state",
        )
        self.sync = WorkspaceSync(config, FixedKeys(config.bucket))
        self.scope = Scope(user, user, "projects/demo", root / "project")
        self.root = self.scope.root

    def write(self, path: str, content: bytes | str, executable: bool = False) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        if executable:
            target.chmod(0o755)

    def files(self) -> dict[str, str]:
        found = {}
        for folder, _, names in os.walk(self.root):
            for name in names:
                full = Path(folder) / name
                relative = str(full.relative_to(self.root))
                found[relative] = (
                    f"-> {os.readlink(full)}"
                    if full.is_symlink()
                    else hashlib.sha256(full.read_bytes()).hexdigest()
                )
        return found
