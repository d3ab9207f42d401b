"""The engine's operations in and out: one set of typed models that every adapter uses (REST,
`/ws`, `/invocations`, the Reflex states), so a rule is written once and shows in OpenAPI.

Field names follow the seed's API where it had one; fields of ours come beside them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Mode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]
TurnStatus = Literal["done", "interrupted", "failed"]
MAX_OFFSET = 1_000_000_000
MAX_CURSOR = 2**53  # history cursors are byte offsets; JSON numbers stay exact below this


def _storable(value: str) -> str:
    """Text the database can keep: PostgreSQL refuses NUL characters."""
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\x00), which cannot be stored")
    return value


Text = Annotated[str, AfterValidator(_storable)]
Ident = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class NewSession(BaseModel):
    """`POST /sessions` (and `/ws` op `create`): a new session, or a stopped one resumed."""

    user_id: str | None = Field(
        None, max_length=400, description="Ignored: the user comes from the token (seed)."
    )
    resume_session_id: Ident | None = None
    model: Text | None = Field(None, max_length=200)
    background_model: str | None = Field(
        None, max_length=200, description="Accepted for seed compatibility; unused."
    )
    cwd: str | None = Field(
        None, max_length=4096, description="Accepted for seed compatibility; use project_id."
    )
    mcp_server_ids: list[Ident] | None = Field(
        None,
        max_length=100,
        description="MCP servers for this session (seed): ids from GET /mcp-servers, each the "
        "user's own and meant for the session's project; none: no MCP servers.",
    )
    project_id: Ident | None = None
    permission_mode: Mode = "default"
    title: Text = Field("", max_length=200)
    max_budget_usd: float | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="Stop a turn once this session has cost this many US dollars "
        "(the CLI's own count, per running agent).",
    )


class SendMessage(BaseModel):
    message: Text = Field(..., min_length=1)
    model: Text | None = Field(None, max_length=200)


class PermissionAnswer(BaseModel):
    request_id: Ident
    allowed: bool
    apply_suggestions: bool = False
    message: Text = Field("", max_length=10_000)
    updated_input: dict[str, Any] | None = None


class ModeChange(BaseModel):
    mode: Mode


class ModelChange(BaseModel):
    model: Text = Field(..., min_length=1, max_length=200)


class Rename(BaseModel):
    title: Text = Field(..., min_length=1, max_length=200)


class ListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    search: Text = Field("", max_length=200)


class HistoryQuery(BaseModel):
    before: int | None = Field(None, ge=0, le=MAX_CURSOR)
    limit: int = Field(100, ge=1, le=500)


class SessionView(BaseModel):
    """A session as every adapter shows it (the seed's fields and ours)."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    title: str
    project_id: str
    project: str  # the project's name (the seed's `project`)
    cwd: str  # the project as the agent sees it
    model: str
    current_model: str
    permission_mode: str
    status: str
    live: bool
    active: bool  # the seed's name for `live`
    error: str | None
    created_at: str
    updated_at: str
    modified: str  # the seed's name for `updated_at`
    first_message: str
    preview: str
    message_count: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    turns: int
    rules: list[str]
    forked_from: str | None
    last_seq: int
    max_budget_usd: float | None = None  # the session's own budget, if it has one


class SessionList(BaseModel):
    sessions: list[SessionView]
    has_more: bool
    total: int
    offset: int
    limit: int


class PendingApproval(BaseModel):
    request_id: str
    tool_name: str
    tool_use_id: str | None
    input: dict[str, Any]
    tool_input: dict[str, Any]  # the seed's name
    suggestions: list[str]
    kind: str
    created_at: str


class StatusView(SessionView):
    pending_permission: PendingApproval | None
    pending_permissions: list[PendingApproval]


class TurnSummary(BaseModel):
    """A finished turn's footer: its status, cost and tokens (the relay's count), duration."""

    status: str
    cost_usd: float
    input_tokens: int
    output_tokens: int
    duration_ms: int


class HistoryView(BaseModel):
    """A page of the conversation in the seed's shapes: text as `{role, content}`, tool calls
    with `tool_name` and `tool_input`; a turn's last message carries its `turn` summary."""

    messages: list[dict[str, Any]]
    message_count: int
    before: int | None  # pass as `before` for the page before this one
    has_more: bool
    metadata: dict[str, Any]  # session_id, cwd, git_branch, version (the seed's)


class Sent(BaseModel):
    """`send` accepted the message: its events start at `seq` (the prompt's own event)."""

    session_id: str
    seq: int


class TerminalView(BaseModel):
    running: bool
    exit_code: int | None = Field(None, description="once the shell has ended")
    start: int = Field(..., description="offset of the oldest output kept")
    end: int = Field(..., description="offset after the newest output")


class TerminalOutput(BaseModel):
    start: int = Field(..., description="where `data` begins: after `since` if output was dropped")
    end: int = Field(..., description="ask with since=end for what comes next")
    data: str
    running: bool
    exit_code: int | None = None


class ResumeInfo(BaseModel):
    """Where a view that just loaded the history starts following the session's events:
    before the running turn's prompt if a turn runs (its events replay whole), else after the
    newest event; and whether a turn runs."""

    resume_point: int
    last_seq: int
    busy: bool
    # From when on (UTC, ISO 8601) the events replay what a history read afterwards may
    # already hold: the running turn's start, or now. The transcript may or may not have
    # that turn's prompt yet.
    replay_since: str


class NewProject(BaseModel):
    name: Text = Field(..., min_length=1, max_length=100)


class ProjectView(BaseModel):
    project_id: str
    name: str
    created_at: str


class Restarted(BaseModel):
    """What "restart workspace" stopped (the files and conversations are kept)."""

    stopped_sessions: list[str]
    closed_terminals: int


class SyncStatus(BaseModel):
    """One folder's sync with S3: what it is doing, how far along, when it last succeeded."""

    scope: str  # "projects/<name>" or "claude" (the CLI home)
    phase: Literal["idle", "restoring", "backing_up", "failed"]
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    backed_up_at: str
    error: str
    warning: str


class TurnRef(BaseModel):
    """A turn, by its prompt's uuid (the `uuid` of a user message in the history)."""

    at: Ident


class ForkRequest(BaseModel):
    """`POST /sessions/{id}/fork`: the whole conversation, or (`at`) up to and including
    that turn."""

    at: Ident | None = None


class RewindView(BaseModel):
    """Files rewound (or, in a preview, that would be) to their state before turn `at`,
    paths relative to the project. Only the agent's edit tools' changes are tracked."""

    at: str
    can_rewind: bool
    applied: bool
    files: list[str]
    insertions: int
    deletions: int
    error: str | None = None
