"""`python -m app.devtools.api_server --port N`: the HTTP API with its services, without the
pages, configured from the environment as the app is. For benchmarks (tests/bench/bench_load.py)
and tests that run several app instances as processes of their own (tests/cluster/)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn

from app.api.main import create_api
from app.services import start_services, stop_services
from app.settings import load_settings


def serve(port: int) -> None:
    api = create_api()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        api.state.services = await start_services(load_settings(os.environ))
        try:
            yield
        finally:
            await stop_services()

    api.router.lifespan_context = lifespan
    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
