"""`python -m app.devtools.proxy --port 8000 --to 127.0.0.1:8001,127.0.0.1:8002`: a local TCP
proxy in front of several app instances (see "More than one instance" in the README), each
new connection to the next instance in turn. TCP, so WebSockets pass as they are. For trying
the setup on one machine and for the tests, which can also pin it to one instance and cut
every open connection (as a proxy restarting, or an instance going away, would)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import threading
from collections.abc import Sequence


class Proxy:
    def __init__(self, targets: Sequence[tuple[str, int]]) -> None:
        self.pinned: int | None = None  # every new connection to this target, if set
        self.route(targets)
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    def route(self, targets: Sequence[tuple[str, int]]) -> None:
        """Send new connections to these instances, in turn."""
        self.targets = list(targets)
        self.served = [0] * len(self.targets)  # connections opened to each target
        self._turn = itertools.cycle(range(len(self.targets)))

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()

    def cut(self) -> None:
        """Close every open connection; clients reconnect through the proxy."""
        for writer in list(self._open):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.pinned if self.pinned is not None else next(self._turn)
        host, port = self.targets[index]
        self.served[index] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class ThreadedProxy:
    """The proxy on a loop of its own, for synchronous callers (tests)."""

    def __init__(self, targets: Sequence[tuple[str, int]]) -> None:
        self.proxy = Proxy(targets)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> int:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)

    def route(self, targets: Sequence[tuple[str, int]]) -> None:
        self._loop.call_soon_threadsafe(self.proxy.route, targets)

    def pin(self, index: int | None) -> None:
        self.proxy.pinned = index

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self.proxy.cut)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--to", required=True, help="comma-separated host:port of the instances")
    args = parser.parse_args(argv)

    async def run() -> None:
        proxy = Proxy([_target(t) for t in args.to.split(",") if t.strip()])
        port = await proxy.start(args.port, args.host)
        print(f"proxy on {args.host}:{port} -> {args.to}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
