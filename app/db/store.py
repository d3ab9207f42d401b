"""Queries. Every read of a user's object takes the user's id, so scoping is never forgotten.

Functions are synchronous; async callers run them in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db.models import (
    AgentSession,
    Approval,
    GitHubLink,
    McpServer,
    ModelUsage,
    Project,
    ProjectEnvVar,
    RefreshToken,
    RevokedToken,
    RuntimeSession,
    SandboxAccount,
    Turn,
    User,
    utcnow,
)
from app.errors import Conflict, Forbidden, NotFound

# The e-mail of a Cognito user whose address we have not seen yet (access tokens carry none).
PLACEHOLDER_DOMAIN = "@cognito"


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- users and projects -------------------------------------------------------------

    def find_user(self, email: str) -> User | None:
        with Session(self.engine) as db:
            return db.exec(select(User).where(User.email == email.strip().lower())).first()

    def add_local_user(self, email: str, password_hash: str) -> User:
        email = email.strip().lower()
        with Session(self.engine) as db:
            if db.exec(select(User).where(User.email == email)).first() is not None:
                raise Conflict("An account with this e-mail already exists; sign in instead.")
            user = User(email=email, password_hash=password_hash)
            db.add(user)
            db.commit()
            db.refresh(user)
            return user

    def ensure_external_user(self, external_id: str, email: str | None) -> User:
        """The user signed in elsewhere (Cognito `sub`), created on first sight."""
        with Session(self.engine) as db:
            user = db.exec(select(User).where(User.external_id == external_id)).first()
            if user is None:
                user = User(
                    email=(email or f"{external_id}{PLACEHOLDER_DOMAIN}").lower(),
                    external_id=external_id,
                )
                db.add(user)
                db.commit()
                db.refresh(user)
            return user

    def set_email(self, user_id: str, email: str) -> None:
        with Session(self.engine) as db:
            db.execute(
                update(User).where(col(User.id) == user_id).values(email=email.strip().lower())
            )
            db.commit()

    def add_refresh_token(self, token: RefreshToken) -> None:
        with Session(self.engine) as db:
            db.add(token)
            db.commit()

    def use_refresh_token(self, token_id: str) -> str | None:
        """Revoke the token if it is live and return its user id; None if unusable."""
        with Session(self.engine) as db:
            token = db.get(RefreshToken, token_id)
            if (
                token is None
                or token.revoked
                or token.expires_at.timestamp() < utcnow().timestamp()
            ):
                return None
            result = db.execute(
                update(RefreshToken)
                .where(col(RefreshToken.id) == token_id, col(RefreshToken.revoked).is_(False))
                .values(revoked=True)
            )
            db.commit()
            return token.user_id if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def bind_runtime_session(self, runtime_session_id: str, user_id: str) -> None:
        """An AgentCore runtime session id belongs to the first user who used it."""
        with Session(self.engine) as db:
            bound = db.get(RuntimeSession, runtime_session_id)
            if bound is None:
                db.add(RuntimeSession(id=runtime_session_id, user_id=user_id))
                try:
                    db.commit()
                except Exception:  # a concurrent first use: read who won
                    db.rollback()
                    bound = db.get(RuntimeSession, runtime_session_id)
            if bound is not None and bound.user_id != user_id:
                raise Forbidden("This runtime session belongs to another user.")

    def sandbox_uid(self, user_id: str, base: int) -> int:
        """The user's own host uid for sandboxed agents, allocated on first use (>= base) and
        never reused for anyone else (a unique index settles concurrent allocations)."""
        for _ in range(20):
            with Session(self.engine) as db:
                account = db.get(SandboxAccount, user_id)
                if account is not None:
                    return account.uid
                highest = db.exec(select(func.max(SandboxAccount.uid))).one()
                uid = max(base, int(highest or 0) + 1)
                db.add(SandboxAccount(user_id=user_id, uid=uid))
                try:
                    db.commit()
                    return uid
                except IntegrityError:
                    db.rollback()
        raise Conflict("Could not allocate a sandbox user id; try again.")

    def revoke_token(self, token_id: str, *, user_id: str, expires_at: datetime) -> None:
        """Refuse this access token (by jti) from now until it would have expired."""
        with Session(self.engine) as db:
            if db.get(RevokedToken, token_id) is None:
                db.add(RevokedToken(id=token_id, user_id=user_id, expires_at=expires_at))
                try:
                    db.commit()
                except IntegrityError:  # revoked concurrently: the same outcome
                    db.rollback()
            db.execute(delete(RevokedToken).where(col(RevokedToken.expires_at) < utcnow()))
            db.commit()

    def is_revoked(self, token_id: str) -> bool:
        with Session(self.engine) as db:
            return db.get(RevokedToken, token_id) is not None

    def get_user(self, user_id: str) -> User:
        with Session(self.engine) as db:
            user = db.get(User, user_id)
            if user is None:
                raise NotFound("No such user.")
            return user

    def ensure_project(self, *, user_id: str, name: str) -> Project:
        """The user's project of that name, made on first use (concurrent first uses agree:
        the unique index decides, the loser reads the winner's row)."""
        query = select(Project).where(Project.user_id == user_id, Project.name == name)
        with Session(self.engine) as db:
            project = db.exec(query).first()
            if project is not None:
                return project
            db.add(Project(user_id=user_id, name=name))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
            return db.exec(query).one()

    def get_project(self, *, user_id: str, project_id: str) -> Project:
        with Session(self.engine) as db:
            project = db.get(Project, project_id)
            if project is None or project.user_id != user_id:
                raise NotFound("No such project.")
            return project

    def set_project_repo(self, *, user_id: str, project_id: str, full_name: str) -> None:
        with Session(self.engine) as db:
            db.execute(
                update(Project)
                .where(col(Project.id) == project_id, col(Project.user_id) == user_id)
                .values(github_repo=full_name)
            )
            db.commit()

    def list_projects(self, *, user_id: str) -> Sequence[Project]:
        with Session(self.engine) as db:
            query = select(Project).where(Project.user_id == user_id).order_by(Project.name)
            return db.exec(query).all()

    # --- MCP servers ---------------------------------------------------------------------

    def mcp_servers(self, *, user_id: str) -> Sequence[McpServer]:
        with Session(self.engine) as db:
            query = select(McpServer).where(McpServer.user_id == user_id)
            return db.exec(query.order_by(McpServer.name)).all()

    def save_mcp_server(self, server: McpServer) -> McpServer:
        """Add or replace (a server's name is unique among the user's, per project)."""
        with Session(self.engine) as db:
            same = select(McpServer).where(
                McpServer.user_id == server.user_id,
                McpServer.name == server.name,
                McpServer.id != server.id,
            )
            for other in db.exec(same).all():
                if other.project_id == server.project_id:
                    raise Conflict(f"You already have an MCP server named {server.name!r} here.")
            db.merge(server)
            db.commit()
        return server

    def delete_mcp_server(self, *, user_id: str, server_id: str) -> None:
        with Session(self.engine) as db:
            found = db.get(McpServer, server_id)
            if found is None or found.user_id != user_id:
                raise NotFound("No such MCP server.")
            db.delete(found)
            db.commit()

    # --- GitHub links --------------------------------------------------------------------

    def github_link(self, user_id: str) -> GitHubLink | None:
        with Session(self.engine) as db:
            return db.get(GitHubLink, user_id)

    def put_github_link(self, link: GitHubLink) -> None:
        """Link (or relink: a new token replaces the old one)."""
        with Session(self.engine) as db:
            db.merge(link)
            db.commit()

    def delete_github_link(self, user_id: str) -> bool:
        with Session(self.engine) as db:
            link = db.get(GitHubLink, user_id)
            if link is None:
                return False
            db.delete(link)
            db.commit()
            return True

    # --- sessions ------------------------------------------------------------------------

    def add_session(self, session: AgentSession) -> AgentSession:
        with Session(self.engine) as db:
            db.add(session)
            db.commit()
            db.refresh(session)
            return session

    def get_session(self, *, user_id: str, session_id: str) -> AgentSession:
        """The session if it exists and is the user's; NotFound otherwise (never 'forbidden',
        which would confirm that someone else's id exists)."""
        with Session(self.engine) as db:
            session = db.get(AgentSession, session_id)
            if session is None or session.user_id != user_id:
                raise NotFound("No such session.")
            return session

    def session_by_id(self, session_id: str) -> AgentSession:
        """Unscoped read, for the engine's own bookkeeping only (never with a user's input)."""
        with Session(self.engine) as db:
            session = db.get(AgentSession, session_id)
            if session is None:
                raise NotFound("No such session.")
            return session

    def list_sessions(
        self, *, user_id: str, limit: int = 50, offset: int = 0, search: str = ""
    ) -> tuple[Sequence[AgentSession], int]:
        """A page of the user's sessions, most recently active first, and the total count."""
        where = [col(AgentSession.user_id) == user_id]
        if search:
            where.append(col(AgentSession.title).ilike(f"%{search}%"))
        with Session(self.engine) as db:
            total = db.exec(select(func.count()).select_from(AgentSession).where(*where)).one()
            query = (
                select(AgentSession)
                .where(*where)
                .order_by(col(AgentSession.updated_at).desc(), col(AgentSession.id))
                .offset(offset)
                .limit(limit)
            )
            return db.exec(query).all(), total

    def update_session(self, session_id: str, **fields: Any) -> None:
        fields.setdefault("updated_at", utcnow())
        with Session(self.engine) as db:
            db.execute(
                update(AgentSession).where(col(AgentSession.id) == session_id).values(**fields)
            )
            db.commit()

    def add_turn(self, turn: Turn, *, messages: int) -> None:
        """Record a finished turn and count it (and its messages) on its session."""
        with Session(self.engine) as db:
            db.add(turn)
            db.execute(
                update(AgentSession)
                .where(col(AgentSession.id) == turn.session_id)
                .values(
                    turns=AgentSession.turns + 1,
                    message_count=AgentSession.message_count + messages,
                    updated_at=utcnow(),
                )
            )
            db.commit()
            db.refresh(turn)

    def turns_of(self, session_id: str) -> Sequence[Turn]:
        """The session's finished turns, oldest first."""
        with Session(self.engine) as db:
            query = select(Turn).where(Turn.session_id == session_id)
            return db.exec(query.order_by(col(Turn.started_at))).all()

    def add_usage(self, usage: ModelUsage) -> AgentSession:
        """Record one relayed model request and add it to its session's totals, atomically;
        returns the session with its new totals."""
        with Session(self.engine) as db:
            db.add(usage)
            db.execute(
                update(AgentSession)
                .where(col(AgentSession.id) == usage.session_id)
                .values(
                    cost_usd=AgentSession.cost_usd + usage.cost_usd,
                    input_tokens=AgentSession.input_tokens
                    + usage.input_tokens
                    + usage.cache_creation_tokens
                    + usage.cache_read_tokens,
                    output_tokens=AgentSession.output_tokens + usage.output_tokens,
                )
            )
            db.commit()
            session = db.get(AgentSession, usage.session_id)
            if session is None:
                raise NotFound("No such session.")
            return session

    def reserve_seq(self, session_id: str, block: int) -> int:
        """Reserve the next `block` sequence numbers; returns the first one."""
        with Session(self.engine) as db:
            db.execute(
                update(AgentSession)
                .where(col(AgentSession.id) == session_id)
                .values(seq_reserved=AgentSession.seq_reserved + block)
            )
            end = db.exec(
                select(AgentSession.seq_reserved).where(AgentSession.id == session_id)
            ).one()
            db.commit()
            return int(end) - block + 1

    def delete_session(self, *, user_id: str, session_id: str) -> None:
        self.get_session(user_id=user_id, session_id=session_id)
        with Session(self.engine) as db:
            for approval in db.exec(select(Approval).where(Approval.session_id == session_id)):
                db.delete(approval)
            for turn in db.exec(select(Turn).where(Turn.session_id == session_id)):
                db.delete(turn)
            session = db.get(AgentSession, session_id)
            if session is not None:
                db.delete(session)
            db.commit()

    def mark_unfinished_sessions(
        self, user_id: str | None = None, error: str = "The app restarted while this ran."
    ) -> list[str]:
        """At start-up (or when a user's agents' app instance is found gone): sessions that
        were running become idle again, with an honest note; returns their ids."""
        with Session(self.engine) as db:
            busy = ("running", "waiting", "starting")
            query = select(AgentSession.id).where(col(AgentSession.status).in_(busy))
            if user_id is not None:
                query = query.where(AgentSession.user_id == user_id)
            ids = list(db.exec(query).all())
            if ids:
                db.execute(
                    update(AgentSession)
                    .where(col(AgentSession.id).in_(ids))
                    .values(status="interrupted", error=error)
                )
                db.commit()
            return ids

    # --- approvals -----------------------------------------------------------------------

    def add_approval(self, approval: Approval) -> Approval:
        with Session(self.engine) as db:
            db.add(approval)
            db.commit()
            db.refresh(approval)
            return approval

    def get_approval(self, *, user_id: str, session_id: str, approval_id: str) -> Approval:
        with Session(self.engine) as db:
            approval = db.get(Approval, approval_id)
            if approval is None or approval.user_id != user_id or approval.session_id != session_id:
                raise NotFound("No such permission request.")
            return approval

    def pending_approvals(self, *, user_id: str, session_id: str) -> Sequence[Approval]:
        with Session(self.engine) as db:
            query = (
                select(Approval)
                .where(
                    Approval.user_id == user_id,
                    Approval.session_id == session_id,
                    Approval.status == "pending",
                )
                .order_by(col(Approval.created_at))
            )
            return db.exec(query).all()

    def resolve_approval(self, approval_id: str, *, status: str, decision: dict[str, Any]) -> None:
        """Record the answer, once: a second answer to the same request is a Conflict."""
        with Session(self.engine) as db:
            result = db.execute(
                update(Approval)
                .where(col(Approval.id) == approval_id, col(Approval.status) == "pending")
                .values(status=status, decision_json=json.dumps(decision), resolved_at=utcnow())
            )
            db.commit()
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("This permission request was already answered.")

    def mark_lost_approval(self, approval_id: str) -> None:
        """One pending request whose asker is gone (the others may still be waited on)."""
        with Session(self.engine) as db:
            db.execute(
                update(Approval)
                .where(col(Approval.id) == approval_id, col(Approval.status) == "pending")
                .values(status="lost", resolved_at=utcnow())
            )
            db.commit()

    def mark_lost_approvals(self, session_id: str | None = None) -> int:
        """Pending requests whose agent process is gone can never be answered: say so."""
        where = [col(Approval.status) == "pending"]
        if session_id is not None:
            where.append(col(Approval.session_id) == session_id)
        with Session(self.engine) as db:
            result = db.execute(
                update(Approval).where(*where).values(status="lost", resolved_at=utcnow())
            )
            db.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    # --- budgets -------------------------------------------------------------------------

    def spent_since(self, user_id: str, since: datetime) -> float:
        """What the user's model requests cost from `since` on (the relay's own count)."""
        with Session(self.engine) as db:
            total = db.exec(
                select(func.coalesce(func.sum(ModelUsage.cost_usd), 0.0)).where(
                    ModelUsage.user_id == user_id, col(ModelUsage.created_at) >= since
                )
            ).one()
            return float(total)

    def set_monthly_budget(self, user_id: str, budget_usd: float | None) -> None:
        with Session(self.engine) as db:
            db.execute(
                update(User).where(col(User.id) == user_id).values(monthly_budget_usd=budget_usd)
            )
            db.commit()

    # --- project environment variables ---------------------------------------------------

    def env_vars(self, *, user_id: str, project_id: str) -> Sequence[ProjectEnvVar]:
        with Session(self.engine) as db:
            query = (
                select(ProjectEnvVar)
                .where(ProjectEnvVar.user_id == user_id, ProjectEnvVar.project_id == project_id)
                .order_by(ProjectEnvVar.name)
            )
            return db.exec(query).all()

    def put_env_var(self, *, user_id: str, project_id: str, name: str, value_sealed: str) -> None:
        """Set (or replace) one variable; concurrent first sets agree through the unique
        index: the loser replaces the winner's value."""
        where = (
            col(ProjectEnvVar.user_id) == user_id,
            col(ProjectEnvVar.project_id) == project_id,
            col(ProjectEnvVar.name) == name,
        )
        change = (
            update(ProjectEnvVar)
            .where(*where)
            .values(value_sealed=value_sealed, updated_at=utcnow())
        )
        with Session(self.engine) as db:
            if db.execute(change).rowcount == 1:  # type: ignore[attr-defined]
                db.commit()
                return
            db.add(
                ProjectEnvVar(
                    user_id=user_id, project_id=project_id, name=name, value_sealed=value_sealed
                )
            )
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                db.execute(change)
                db.commit()

    def delete_env_var(self, *, user_id: str, project_id: str, name: str) -> bool:
        with Session(self.engine) as db:
            result = db.execute(
                delete(ProjectEnvVar).where(
                    col(ProjectEnvVar.user_id) == user_id,
                    col(ProjectEnvVar.project_id) == project_id,
                    col(ProjectEnvVar.name) == name,
                )
            )
            db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]
