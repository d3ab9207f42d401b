"""Fixtures of the sync tests: a fresh bucket on the session's S3 server, two machines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3 import S3Server
from tests.workspace.machines import Machine


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def machines(tmp_path: Path, s3_server: S3Server, bucket: str) -> Iterator[tuple[Machine, Machine]]:
    yield Machine(tmp_path / "a", s3_server, bucket), Machine(tmp_path / "b", s3_server, bucket)
