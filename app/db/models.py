"""Tables, as SQLModel classes mirroring the migrations in `migrations.py`.

Portable to Aurora DSQL: text primary keys, no foreign keys (relations are enforced in code),
JSON kept as text.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True)
    email: str
    password_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    external_id: str | None = None  # the Cognito `sub`, for users who sign in there


class RefreshToken(SQLModel, table=True):
    """A local sign-in's refresh token, stored only as a hash; used once, then replaced."""

    __tablename__ = "refresh_tokens"

    id: str = Field(primary_key=True)  # sha256 of the token
    user_id: str
    expires_at: datetime
    revoked: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class RuntimeSession(SQLModel, table=True):
    """An AgentCore runtime session id, bound to the first user who used it."""

    __tablename__ = "runtime_sessions"

    id: str = Field(primary_key=True)
    user_id: str
    created_at: datetime = Field(default_factory=utcnow)


class Project(SQLModel, table=True):
    __tablename__ = "projects"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    name: str
    created_at: datetime = Field(default_factory=utcnow)


class AgentSession(SQLModel, table=True):
    """One conversation with the agent. `id` is also the CLI's own session id."""

    __tablename__ = "sessions"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    project_id: str
    title: str = ""
    model: str = ""
    mode: str = "default"
    status: str = "idle"
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    turns: int = 0
    # Event sequence numbers are handed out in blocks; the end of the last block is kept here
    # so numbers keep growing after a restart without a write per event.
    seq_reserved: int = 0
    has_transcript: bool = False
    rules_json: str = "[]"
    forked_from: str | None = None


class Approval(SQLModel, table=True):
    """A tool call waiting for (or answered by) the user."""

    __tablename__ = "approvals"

    id: str = Field(default_factory=new_id, primary_key=True)
    session_id: str
    user_id: str
    tool_name: str
    tool_use_id: str | None = None
    input_json: str = "{}"
    suggestions_json: str = "[]"
    status: str = "pending"
    decision_json: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
