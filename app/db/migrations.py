"""Schema migrations: an ordered list of single DDL statements, each applied once.

One statement per step because Aurora DSQL allows one DDL per transaction; steps are never
edited once released, only appended, so existing databases keep their data.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

STEPS: list[tuple[str, str]] = [
    (
        "0001_users",
        "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL, password_hash TEXT, "
        "created_at TIMESTAMPTZ NOT NULL)",
    ),
    ("0002_users_email", "CREATE UNIQUE INDEX users_email ON users (email)"),
    (
        "0003_projects",
        "CREATE TABLE projects (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0004_projects_user_name",
        "CREATE UNIQUE INDEX projects_user_name ON projects (user_id, name)",
    ),
    (
        "0005_sessions",
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "project_id TEXT NOT NULL, title TEXT NOT NULL, model TEXT NOT NULL, mode TEXT NOT NULL, "
        "status TEXT NOT NULL, error TEXT, created_at TIMESTAMPTZ NOT NULL, "
        "updated_at TIMESTAMPTZ NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, "
        "input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, turns INTEGER NOT NULL, "
        "seq_reserved BIGINT NOT NULL)",
    ),
    ("0006_sessions_user", "CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at)"),
    (
        "0007_approvals",
        "CREATE TABLE approvals (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
        "user_id TEXT NOT NULL, tool_name TEXT NOT NULL, tool_use_id TEXT, "
        "input_json TEXT NOT NULL, suggestions_json TEXT NOT NULL, status TEXT NOT NULL, "
        "decision_json TEXT, created_at TIMESTAMPTZ NOT NULL, resolved_at TIMESTAMPTZ)",
    ),
    ("0008_approvals_session", "CREATE INDEX approvals_session ON approvals (session_id, status)"),
    (
        "0009_sessions_has_transcript",
        "ALTER TABLE sessions ADD COLUMN has_transcript BOOLEAN NOT NULL DEFAULT FALSE",
    ),
    (
        "0010_sessions_rules",
        "ALTER TABLE sessions ADD COLUMN rules_json TEXT NOT NULL DEFAULT '[]'",
    ),
    ("0011_sessions_forked_from", "ALTER TABLE sessions ADD COLUMN forked_from TEXT"),
    ("0012_users_external_id", "ALTER TABLE users ADD COLUMN external_id TEXT"),
    ("0013_users_external_id", "CREATE UNIQUE INDEX users_external_id ON users (external_id)"),
    (
        "0014_refresh_tokens",
        "CREATE TABLE refresh_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "expires_at TIMESTAMPTZ NOT NULL, revoked BOOLEAN NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0015_runtime_sessions",
        "CREATE TABLE runtime_sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0016_sandbox_accounts",
        "CREATE TABLE sandbox_accounts (user_id TEXT PRIMARY KEY, uid INTEGER NOT NULL)",
    ),
    (
        "0017_sandbox_accounts_uid",
        "CREATE UNIQUE INDEX sandbox_accounts_uid ON sandbox_accounts (uid)",
    ),
    (
        "0018_model_usage",
        "CREATE TABLE model_usage (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
        "user_id TEXT NOT NULL, model TEXT NOT NULL, input_tokens BIGINT NOT NULL, "
        "output_tokens BIGINT NOT NULL, cache_creation_tokens BIGINT NOT NULL, "
        "cache_read_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, "
        "created_at TIMESTAMPTZ NOT NULL)",
    ),
    ("0019_model_usage_user", "CREATE INDEX model_usage_user ON model_usage (user_id, created_at)"),
    (
        "0020_revoked_tokens",
        "CREATE TABLE revoked_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "expires_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0021_sessions_first_message",
        "ALTER TABLE sessions ADD COLUMN first_message TEXT NOT NULL DEFAULT ''",
    ),
    (
        "0022_sessions_message_count",
        "ALTER TABLE sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "0023_turns",
        "CREATE TABLE turns (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
        "status TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL, "
        "cost_usd DOUBLE PRECISION NOT NULL, input_tokens BIGINT NOT NULL, "
        "output_tokens BIGINT NOT NULL, duration_ms BIGINT NOT NULL)",
    ),
    ("0024_turns_session", "CREATE INDEX turns_session ON turns (session_id, started_at)"),
    (
        "0025_github_links",
        "CREATE TABLE github_links (user_id TEXT PRIMARY KEY, login TEXT NOT NULL, "
        "token_sealed TEXT NOT NULL, scopes TEXT NOT NULL, linked_at TIMESTAMPTZ NOT NULL)",
    ),
    ("0026_projects_github_repo", "ALTER TABLE projects ADD COLUMN github_repo TEXT"),
    (
        "0027_project_env",
        "CREATE TABLE project_env (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "project_id TEXT NOT NULL, name TEXT NOT NULL, value_sealed TEXT NOT NULL, "
        "updated_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0028_project_env_unique",
        "CREATE UNIQUE INDEX project_env_name ON project_env (project_id, name)",
    ),
    (
        "0029_users_monthly_budget",
        "ALTER TABLE users ADD COLUMN monthly_budget_usd DOUBLE PRECISION",
    ),
    ("0030_sessions_max_budget", "ALTER TABLE sessions ADD COLUMN max_budget_usd DOUBLE PRECISION"),
    (
        "0031_mcp_servers",
        "CREATE TABLE mcp_servers (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, project_id TEXT, "
        "name TEXT NOT NULL, config_json TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
    ),
    ("0032_sessions_mcp", "ALTER TABLE sessions ADD COLUMN mcp_json TEXT NOT NULL DEFAULT '[]'"),
    (
        "0033_extensions",
        "CREATE TABLE extensions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "kind TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, "
        "source TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
    ),
    (
        "0034_project_extensions",
        "CREATE TABLE project_extensions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, "
        "project_id TEXT NOT NULL, extension_id TEXT NOT NULL)",
    ),
    (
        "0035_project_extensions_unique",
        "CREATE UNIQUE INDEX project_extensions_one ON project_extensions "
        "(project_id, extension_id)",
    ),
]

WAIT_S = 15.0  # for a step another process is applying
_LEDGER = "CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT)"


def migrate(engine: Engine, *, upto: str | None = None) -> list[str]:
    """Apply every step not yet applied (stopping after `upto`); returns the ids applied.

    Several processes may start at once on one database (app instances, a server's
    workers): a step another one is applying fails here, and is then waited for in the
    ledger instead."""
    _apply_or_wait(engine, _LEDGER, lambda: _has_ledger(engine))
    done = _done(engine)
    applied = []
    for step_id, ddl in STEPS:
        if step_id not in done and _apply_or_wait(
            engine, ddl, functools.partial(_recorded, engine, step_id)
        ):
            try:
                with engine.begin() as conn:
                    conn.execute(
                        text("INSERT INTO schema_migrations (id, applied_at) VALUES (:id, :at)"),
                        {"id": step_id, "at": _now()},
                    )
            except DBAPIError:
                if not _recorded(engine, step_id):
                    raise
            logger.info("applied migration %s", step_id)
            applied.append(step_id)
        if step_id == upto:
            break
    return applied


def _apply_or_wait(engine: Engine, ddl: str, done_elsewhere: Callable[[], bool]) -> bool:
    """Run `ddl`: True. If it fails because another process did it meanwhile (as
    `done_elsewhere` comes to say within WAIT_S): False. Otherwise the error."""
    try:
        with engine.begin() as conn:
            conn.execute(text(ddl))
        return True
    except DBAPIError:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if done_elsewhere():
                return False
            time.sleep(0.1)
        raise


def _has_ledger(engine: Engine) -> bool:
    try:
        _done(engine)
        return True
    except DBAPIError:
        return False


def _recorded(engine: Engine, step_id: str) -> bool:
    return step_id in _done(engine)


def _done(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT id FROM schema_migrations"))}


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
