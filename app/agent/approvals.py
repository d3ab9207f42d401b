"""Answers to permission requests, and how they become SDK permission results.

A request waits for a person for as long as it takes: there is no timer here on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, PermissionUpdate

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
