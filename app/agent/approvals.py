"""Answers to permission requests, and how they become SDK permission results.

A request waits for a person for as long as it takes: there is no timer here on purpose.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from claude_agent_sdk import (
    HookContext,
    PermissionResultAllow,
    PermissionResultDeny,
    PermissionUpdate,
    ToolPermissionContext,
)

from app.db.models import Approval
from app.db.store import Store
from app.errors import Conflict

if TYPE_CHECKING:
    from app.agent.journal import Journal
    from app.agent.live import LiveAgent

# Tools that exist to talk to the user; they reach the user in every permission mode.
USER_TOOLS = ("AskUserQuestion", "ExitPlanMode")

Kind = Literal["tool", "question", "plan"]


@dataclass(frozen=True)
class Answer:
    """The user's answer. `always` turns the CLI's suggested rules into session rules;
    `updated_input` carries form answers (AskUserQuestion) or an edited tool input."""

    allow: bool
    always: bool = False
    message: str = ""
    updated_input: dict[str, Any] | None = None


@dataclass
class PendingRequest:
    """A request an agent waits on: the future its answer resolves."""

    future: asyncio.Future[Answer]
    tool_input: dict[str, Any]
    suggestions: list[PermissionUpdate]


def kind_of(tool_name: str) -> Kind:
    return {"AskUserQuestion": "question", "ExitPlanMode": "plan"}.get(tool_name, "tool")  # type: ignore[return-value]


def describe_rule(update: PermissionUpdate) -> str:
    """A rule as the user reads it, e.g. `allow Bash(npm test)`."""
    if update.type == "setMode":
        return f"switch to {update.mode} mode"
    if update.type in ("addDirectories", "removeDirectories"):
        return f"{update.type} {', '.join(update.directories or [])}"
    rules = [
        f"{r.tool_name}({r.rule_content})" if r.rule_content else r.tool_name
        for r in update.rules or []
    ]
    return f"{update.behavior or 'allow'} {', '.join(rules)}"


def to_result(
    answer: Answer, suggestions: list[PermissionUpdate], tool_input: dict[str, Any]
) -> PermissionResultAllow | PermissionResultDeny:
    if not answer.allow:
        return PermissionResultDeny(message=answer.message or "The user denied this action.")
    return PermissionResultAllow(
        updated_input=answer.updated_input if answer.updated_input is not None else tool_input,
        updated_permissions=suggestions if answer.always and suggestions else None,
    )


def hook_output(answer: Answer, tool_input: dict[str, Any]) -> dict[str, Any]:
    """The same answer as a PreToolUse hook decision (used where can_use_tool is not asked)."""
    specific: dict[str, Any] = {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow" if answer.allow else "deny",
        "permissionDecisionReason": answer.message or ("Approved" if answer.allow else "Denied"),
    }
    if answer.allow:
        specific["updatedInput"] = (
            answer.updated_input if answer.updated_input is not None else tool_input
        )
    return {"hookSpecificOutput": specific}


class Approvals:
    """Permission requests: asked by an agent, stored, shown to every reader, answered once.

    A request waits (without a timer) until the user answers, the turn is interrupted, or the
    agent stops: then it is marked lost, and answering it is an error, never a fake success.
    """

    def __init__(self, store: Store, journal: Journal) -> None:
        self.store = store
        self.journal = journal

    async def ask(
        self,
        live: LiveAgent,
        tool_name: str,
        tool_input: dict[str, Any],
        suggestions: list[PermissionUpdate],
        tool_use_id: str | None,
    ) -> Answer:
        row = Approval(
            session_id=live.session_id,
            user_id=live.user_id,
            tool_name=tool_name,
            tool_use_id=tool_use_id,
            input_json=json.dumps(tool_input),
            suggestions_json=json.dumps([describe_rule(s) for s in suggestions]),
        )
        row = await asyncio.to_thread(self.store.add_approval, row)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        live.pending[row.id] = PendingRequest(future, tool_input, suggestions)
        self.journal.emit(live.session_id, "permission_request", view(row))
        await self.journal.set_status(live.session_id, "waiting", live=True)
        try:
            return await future
        finally:
            live.pending.pop(row.id, None)
            if live.busy and not live.pending and not live.closing:
                await self.journal.set_status(live.session_id, "running", live=True)

    async def answer(
        self, user_id: str, session_id: str, request_id: str, answer: Answer, live: LiveAgent | None
    ) -> None:
        """Answer a pending request. Unknown, foreign, answered or lost requests are errors."""
        approval = await asyncio.to_thread(
            lambda: self.store.get_approval(
                user_id=user_id, session_id=session_id, approval_id=request_id
            )
        )
        if approval.status != "pending":
            raise Conflict(answered_text(approval.status))
        if live is None or request_id not in live.pending:
            # Its asker is gone (another instance, or a restart): only this one is lost.
            await asyncio.to_thread(self.store.mark_lost_approval, request_id)
            raise Conflict(answered_text("lost"))
        await self.settle(live, request_id, answer, "allowed" if answer.allow else "denied")

    async def settle(self, live: LiveAgent, request_id: str, answer: Answer, status: str) -> None:
        request = live.pending.pop(request_id)
        rules: list[str] = []
        if answer.allow and answer.always:
            rules = [describe_rule(s) for s in request.suggestions]
            await self._add_rules(live.session_id, request.suggestions)
        decision = {"allow": answer.allow, "always": answer.always, "message": answer.message}
        await asyncio.to_thread(
            lambda: self.store.resolve_approval(request_id, status=status, decision=decision)
        )
        if not request.future.done():
            request.future.set_result(answer)
        self.journal.emit(
            live.session_id,
            "permission_resolved",
            {"request_id": request_id, "status": status, "message": answer.message, "rules": rules},
        )

    async def cancel_all(self, live: LiveAgent, message: str) -> None:
        """The turn is being interrupted: every open request is answered "no"."""
        for request_id in list(live.pending):
            await self.settle(live, request_id, Answer(allow=False, message=message), "cancelled")

    async def lose_all(self, live: LiveAgent) -> None:
        """The agent stopped: its open requests can never be answered."""
        for request_id, request in list(live.pending.items()):
            request.future.cancel()
            live.pending.pop(request_id, None)
            self.journal.emit(
                live.session_id, "permission_resolved", {"request_id": request_id, "status": "lost"}
            )
        await asyncio.to_thread(self.store.mark_lost_approvals, live.session_id)

    async def pending(self, user_id: str, session_id: str) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(
            lambda: self.store.pending_approvals(user_id=user_id, session_id=session_id)
        )
        return [view(row) for row in rows]

    def can_use_tool(self, live: LiveAgent) -> Callable[..., Any]:
        async def can_use_tool(
            tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
        ) -> PermissionResultAllow | PermissionResultDeny:
            # "Always allow" adds the CLI's suggested *rules*, to this session only: never a
            # settings file on disk, and never a silent switch of mode or extra directories.
            suggestions = [
                replace(s, destination="session")
                for s in context.suggestions
                if s.type == "addRules"
            ]
            answer = await self.ask(live, tool_name, tool_input, suggestions, context.tool_use_id)
            return to_result(answer, suggestions, tool_input)

        return can_use_tool

    def user_tool_hook(self, live: LiveAgent) -> Callable[..., Any]:
        """AskUserQuestion and ExitPlanMode go to the user in every mode, even where the CLI
        would not ask can_use_tool (bypassPermissions)."""

        async def hook(
            hook_input: Any, tool_use_id: str | None, _context: HookContext
        ) -> dict[str, Any]:
            if live.mode != "bypassPermissions":
                return {}  # can_use_tool asks, with the full input (the plan text included)
            tool_input = dict(hook_input.get("tool_input") or {})
            answer = await self.ask(live, hook_input["tool_name"], tool_input, [], tool_use_id)
            return hook_output(answer, tool_input)

        return hook

    async def _add_rules(self, session_id: str, suggestions: list[PermissionUpdate]) -> None:
        row = await asyncio.to_thread(self.store.session_by_id, session_id)
        rules = json.loads(row.rules_json or "[]")
        for update in suggestions:
            if update.type == "addRules" and update.behavior == "allow":
                rules += [
                    r.tool_name + (f"({r.rule_content})" if r.rule_content else "")
                    for r in update.rules or []
                ]
        await asyncio.to_thread(
            self.store.update_session, session_id, rules_json=json.dumps(sorted(set(rules)))
        )


def answered_text(status: str) -> str:
    if status == "lost":
        return (
            "This permission request was lost: the agent process that asked it has stopped. "
            "Send your message again."
        )
    return f"This permission request was already answered ({status})."


def view(row: Approval) -> dict[str, Any]:
    tool_input = json.loads(row.input_json)
    return {
        "request_id": row.id,
        "tool_name": row.tool_name,
        "tool_use_id": row.tool_use_id,
        "input": tool_input,
        "tool_input": tool_input,
        "suggestions": json.loads(row.suggestions_json),
        "kind": kind_of(row.tool_name),
        "created_at": row.created_at.isoformat(),
    }
