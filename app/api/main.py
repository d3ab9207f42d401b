"""HTTP API served on the Reflex backend port (placeholder, to be replaced)."""

from fastapi import FastAPI


def create_api() -> FastAPI:
    api = FastAPI(title="Agent Web API")

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
