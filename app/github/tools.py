"""The agent's GitHub tools: commit, push and open a pull request, as an in-process MCP server
(the SDK's), so they run in the app, outside the sandbox, where the token is; the agent sees
their names and results, never the token. Each asks the user's approval like any risky tool
(they are not on any allow-list), and says GitHub's refusals in words."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from claude_agent_sdk import McpServerConfig, create_sdk_mcp_server, tool

from app.db.models import AgentSession
from app.errors import AppError
from app.github.service import GitHubService
from app.workspace.place import ProjectPlace

Place = Callable[[str, str], Awaitable[ProjectPlace]]  # engine.project_place
SERVER = "github"


def github_tools(
    github: GitHubService, place: Place
) -> Callable[[AgentSession], Awaitable[dict[str, McpServerConfig]]]:
    """For each session starting in a project cloned from GitHub: the tools, bound to its
    user and project."""

    async def for_session(row: AgentSession) -> dict[str, McpServerConfig]:
        project = await asyncio.to_thread(
            github.store.get_project, user_id=row.user_id, project_id=row.project_id
        )
        if not project.github_repo:
            return {}  # not cloned from GitHub: nothing to push to

        async def where() -> ProjectPlace:
            return await place(row.user_id, row.project_id)

        @tool(
            "git_commit",
            "Commit every change in the project, as the user, with this message.",
            {"message": str},
        )
        async def commit(args: dict[str, Any]) -> dict[str, Any]:
            async def run() -> str:
                name, email = await github.author(row.user_id)
                sha = await github.repos.commit(
                    await where(), str(args.get("message", "")), name, email
                )
                return f"Committed {sha[:12]}."

            return await _answer(run)

        @tool(
            "git_push",
            "Push a branch (default: the current one) to the project's GitHub repository. "
            "The app does it with the user's GitHub link; you never need credentials.",
            _schema(required={}, optional={"branch": "the branch (default: the current one)"}),
        )
        async def push(args: dict[str, Any]) -> dict[str, Any]:
            async def run() -> str:
                repository, branch = await github.push(await where(), args.get("branch") or None)
                return f"Pushed {branch} to {repository}."

            return await _answer(run)

        @tool(
            "github_pull_request",
            "Open a pull request on the project's GitHub repository from a pushed branch "
            "(default: the current one) into `base` (default: the repository's default).",
            _schema(
                required={"title": "the pull request's title"},
                optional={
                    "body": "what it changes and why (Markdown)",
                    "head": "the branch with the changes (default: the current one)",
                    "base": "the branch to merge into (default: the repository's default)",
                },
            ),
        )
        async def pull_request(args: dict[str, Any]) -> dict[str, Any]:
            async def run() -> str:
                made = await github.open_pull(
                    await where(),
                    title=str(args.get("title", "")),
                    body=str(args.get("body", "")),
                    head=args.get("head") or None,
                    base=args.get("base") or None,
                )
                return f"Opened pull request #{made.number}: {made.html_url}"

            return await _answer(run)

        return {SERVER: create_sdk_mcp_server(SERVER, tools=[commit, push, pull_request])}

    return for_session


async def _answer(run: Callable[[], Awaitable[str]]) -> dict[str, Any]:
    try:
        text, failed = await run(), False
    except AppError as error:
        text, failed = error.message, True
    return {"content": [{"type": "text", "text": text}], "is_error": failed}


def _schema(required: dict[str, str], optional: dict[str, str]) -> dict[str, Any]:
    """A JSON schema of string arguments (the SDK's short form makes every one required)."""
    fields = {**required, **optional}
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": d} for name, d in fields.items()},
        "required": list(required),
    }
