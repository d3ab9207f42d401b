"""The emulator on a background uvicorn thread, for tests, benches and local development."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, urlencode

from app.devtools.agentcore.config import SESSION_HEADER, EmulatorSettings
from app.devtools.agentcore.containers import ContainerStart
from app.devtools.agentcore.proxy import EmulatorApp
from app.devtools.threaded import ThreadedServer

logger = logging.getLogger(__name__)


class AgentCoreEmulator:
    """A local AgentCore Runtime data plane; `start()` binds, `stop()` ends every session."""

    def __init__(self, settings: EmulatorSettings | None = None) -> None:
        self.settings = settings or EmulatorSettings()
        self.app = EmulatorApp(self.settings)
        self._serving = ThreadedServer("AgentCore emulator", self.settings.host, self.settings.port)

    @property
    def base_url(self) -> str:
        """Like "http://127.0.0.1:54321"; only known once started (port 0 picks a free port)."""
        return self._serving.base_url

    @property
    def starts(self) -> list[ContainerStart]:
        """Every container start so far, with its start-to-Healthy time."""
        return list(self.app.starts)

    def session_ids(self) -> list[str]:
        """The sessions whose containers are running now."""
        return self.app.pool.session_ids()

    def disk(self, session_id: str) -> Path | None:
        """A running session's disk, where tests and benches may plant files."""
        return self.app.pool.disk(session_id)

    def url(self, action: str = "invocations", **query: str) -> str:
        """The data plane URL of an action (invocations, stopruntimesession), ARN encoded."""
        arn = quote(self.settings.runtime_arn, safe="")
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.base_url}/runtimes/{arn}/{action}{suffix}"

    def ws_url(self, session_id: str | None = None, **query: str) -> str:
        """The WebSocket URL a browser would open, the session id in the query if given."""
        if session_id is not None:
            query = {SESSION_HEADER: session_id, **query}
        return "ws" + self.url("ws", **query).removeprefix("http")

    def start(self) -> str:
        """Bind, serve on a daemon thread, and return the base URL once connections are taken."""
        return self._serving.start(self.app, lifespan="on")

    def stop(self) -> None:
        """Shut down (ending every session: processes stopped, disks deleted); safe twice."""
        self._serving.stop(timeout_s=self.settings.stop_grace_s + 10)

    def __enter__(self) -> AgentCoreEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
