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
    monthly_budget_usd: float | None = None  # None: the operator's default (if any) applies


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
    # The GitHub repository (owner/name) it was cloned from: where its pushes go, whatever
    # the project's own git config says.
    github_repo: str | None = None


class McpServer(SQLModel, table=True):
    """An MCP server a user added for their agents: for all their projects (`project_id`
    None) or one. `config_json` is its SDK config (stdio command, or a remote URL)."""

    __tablename__ = "mcp_servers"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    project_id: str | None = None
    name: str
    config_json: str
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
    mcp_json: str = "[]"  # the ids of the user's MCP servers this session uses
    first_message: str = ""  # the first prompt (up to 2,000 characters), as the seed lists it
    message_count: int = 0  # prompts, answers, tool calls and results so far
    max_budget_usd: float | None = None  # the CLI stops a turn once the session spent this


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


class SandboxAccount(SQLModel, table=True):
    """The unprivileged host uid a user's agents run as when the app runs as root."""

    __tablename__ = "sandbox_accounts"

    user_id: str = Field(primary_key=True)
    uid: int


class ModelUsage(SQLModel, table=True):
    """One model request relayed for an agent, with the usage the API itself reported."""

    __tablename__ = "model_usage"

    id: str = Field(default_factory=new_id, primary_key=True)
    session_id: str
    user_id: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class RevokedToken(SQLModel, table=True):
    """An access token signed out before it expired (by its `jti`), refused until then."""

    __tablename__ = "revoked_tokens"

    id: str = Field(primary_key=True)  # the token's jti
    user_id: str
    expires_at: datetime


class Turn(SQLModel, table=True):
    """A finished turn: how it ended and what it cost (its footer in the conversation)."""

    __tablename__ = "turns"

    id: str = Field(default_factory=new_id, primary_key=True)
    session_id: str
    status: str  # done | interrupted | failed
    started_at: datetime
    ended_at: datetime
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0


class GitHubLink(SQLModel, table=True):
    """A user's linked GitHub account. The token is sealed (app.github.vault): the database
    alone does not give it away."""

    __tablename__ = "github_links"

    user_id: str = Field(primary_key=True)
    login: str
    token_sealed: str
    scopes: str = ""
    linked_at: datetime = Field(default_factory=utcnow)


class ProjectEnvVar(SQLModel, table=True):
    """One environment variable of a project's agents. The value is sealed (app.github.vault,
    the install's key): the database alone does not give it away."""

    __tablename__ = "project_env"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    project_id: str
    name: str
    value_sealed: str
    updated_at: datetime = Field(default_factory=utcnow)


class Extension(SQLModel, table=True):
    """A skill or plugin in a user's library (app/agent/extensions.py); its files are in the
    app's data, outside any folder an agent can write."""

    __tablename__ = "extensions"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    kind: str  # "skill" or "plugin"
    name: str
    description: str
    source: str  # where it came from: "<project>/<path>" or a git URL
    created_at: datetime = Field(default_factory=utcnow)


class ProjectExtension(SQLModel, table=True):
    """An extension of the user's library enabled in one of their projects."""

    __tablename__ = "project_extensions"

    id: str = Field(default_factory=new_id, primary_key=True)
    user_id: str
    project_id: str
    extension_id: str
