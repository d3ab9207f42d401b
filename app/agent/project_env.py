"""A project's environment variables for its agents (API keys for the tools they run, ...).

Values go one way: set from the page, sealed at rest with the install's key (the vault GitHub
tokens use), unsealed only to launch a sandboxed process. Nothing here returns a value to a
caller that shows things to users (`list` gives names), logs one, or puts one in an error.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from app.db.store import Store
from app.errors import InvalidInput, NotFound, Unauthorized
from app.github.vault import Vault

logger = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_VALUE_BYTES = 32 * 1024
MAX_VARIABLES = 100
# Names the sandbox sets itself, or that would change how it is wired (where commands and
# libraries come from, where traffic goes, which model and credentials the CLI uses).
RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "COLORTERM",
        "TMPDIR",
        "LANG",
        "PWD",
        "OLDPWD",
        "HOSTNAME",
        "IFS",
        "ENV",
        "BASH_ENV",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "PROMPT_COMMAND",
        "NODE_OPTIONS",
        "IS_SANDBOX",
        "DISABLE_AUTOUPDATER",
        "DISABLE_TELEMETRY",
        "DISABLE_ERROR_REPORTING",
        "DISABLE_PROMPT_CACHING",
        "MAX_THINKING_TOKENS",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    }
)
RESERVED_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "AWS_", "LD_", "LC_", "BASH_FUNC_", "MCP_")


@dataclass(frozen=True)
class EnvName:
    """A variable as the page sees it: its name and when it was last set, never its value."""

    name: str
    updated_at: datetime


def check_name(name: str) -> str:
    """`name`, if a project may set it; InvalidInput saying why not otherwise."""
    if not NAME.match(name):
        raise InvalidInput(
            "A variable name is 1-64 letters, digits and underscores, not starting with a digit."
        )
    upper = name.upper()
    if upper in RESERVED or upper.startswith(RESERVED_PREFIXES):
        raise InvalidInput(
            f"{name} is set by the sandbox itself (its paths, proxy, model or credentials): "
            "choose another name."
        )
    return name


def check_value(value: str) -> str:
    """`value`, if it fits in an environment (the message never quotes it)."""
    if "\x00" in value:
        raise InvalidInput("A value cannot contain a NUL character.")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise InvalidInput(f"A value is at most {MAX_VALUE_BYTES // 1024} KB.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("A value must be valid text (UTF-8).") from None
    return value


class ProjectEnv:
    """The variables of each user's projects; every call is scoped to the user."""

    def __init__(self, store: Store, install_key: str) -> None:
        self.store = store
        self._vault = Vault(install_key)

    async def list(self, user_id: str, project_id: str) -> list[EnvName]:
        await self._project(user_id, project_id)
        rows = await asyncio.to_thread(
            lambda: self.store.env_vars(user_id=user_id, project_id=project_id)
        )
        return [EnvName(row.name, row.updated_at) for row in rows]

    async def set(self, user_id: str, project_id: str, name: str, value: str) -> None:
        """Set (or replace) a variable; agents started from now on get it."""
        check_name(name)
        check_value(value)
        known = {v.name for v in await self.list(user_id, project_id)}
        if name not in known and len(known) >= MAX_VARIABLES:
            raise InvalidInput(f"A project has at most {MAX_VARIABLES} variables.")
        sealed = self._vault.seal(value)
        await asyncio.to_thread(
            lambda: self.store.put_env_var(
                user_id=user_id, project_id=project_id, name=name, value_sealed=sealed
            )
        )
        logger.info("project %s: variable %s set", project_id, name)

    async def delete(self, user_id: str, project_id: str, name: str) -> None:
        await self._project(user_id, project_id)
        deleted = await asyncio.to_thread(
            lambda: self.store.delete_env_var(user_id=user_id, project_id=project_id, name=name)
        )
        if not deleted:
            raise NotFound("No such variable.")
        logger.info("project %s: variable %s deleted", project_id, name)

    async def values(self, user_id: str, project_id: str) -> dict[str, str]:
        """The variables unsealed, for launching one of the user's sandboxed processes only."""
        rows = await asyncio.to_thread(
            lambda: self.store.env_vars(user_id=user_id, project_id=project_id)
        )
        values = {}
        for row in rows:
            try:
                values[row.name] = self._vault.open(row.value_sealed)
            except Unauthorized:
                raise InvalidInput(
                    f"The stored value of {row.name} can no longer be read (the app's secret "
                    "key changed): set it again in the Projects tab."
                ) from None
        return values

    async def _project(self, user_id: str, project_id: str) -> None:
        """NotFound unless the project is the user's (another user's looks like none)."""
        await asyncio.to_thread(
            lambda: self.store.get_project(user_id=user_id, project_id=project_id)
        )
