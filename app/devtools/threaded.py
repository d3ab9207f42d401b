"""An ASGI app served by uvicorn on a daemon thread: the dev tools' servers (the scripted model,
the AgentCore emulator, the static site) run inside tests, benches and `make aws-local`."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

logger = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 1  # open streams and WebSockets are cut this soon after stop()


class ThreadedServer:
    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self._host, self._port = host, port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url = ""

    @property
    def base_url(self) -> str:
        """Like "http://127.0.0.1:54321"; only known once started (port 0 picks a free port)."""
        if not self._base_url:
            raise RuntimeError(f"{self.name} is not started")
        return self._base_url

    def start(self, app: ASGIApp, *, lifespan: Literal["on", "off"] = "off") -> str:
        """Bind, serve on a daemon thread, and return the base URL once connections are taken."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        # Binding here (not inside uvicorn) makes the real port known before serving starts.
        sock = socket.create_server((self._host, self._port))
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan=lifespan,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.01)
        self._socket, self._server, self._thread = sock, server, thread
        host, port = sock.getsockname()[:2]
        self._base_url = f"http://{host}:{port}"
        logger.info("%s listening on %s", self.name, self._base_url)
        return self._base_url

    def stop(self, timeout_s: float = 5.0) -> None:
        """Shut down and wait for the thread (up to timeout_s more); safe to call twice."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(GRACEFUL_SHUTDOWN_S + timeout_s)
        if self._thread.is_alive():
            logger.warning("%s did not stop in time", self.name)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._base_url = ""
