"""A local stand-in for Amplify's static hosting of the export, with the deploy's rewrite rule.

The deploy gives Amplify one rule, `/<*>` -> `/404.html` with status `404-200`: a file that
exists is served as it is (a folder by its `index.html`), anything else gets Reflex's SPA
fallback with status 200, and the page routes itself. This server does the same, so the
browser tests load the export exactly as users will.

Run standalone: `python -m app.devtools.amplify --root .web/build/client --port 3000`.
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

FALLBACK = "404.html"


def create_site(root: Path) -> Starlette:
    root = root.resolve()

    async def serve(request: Request) -> Response:
        found = _existing_file(root, request.url.path)
        if found is None:
            return FileResponse(root / FALLBACK, media_type="text/html", status_code=200)
        media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return FileResponse(found, media_type=media_type)

    return Starlette(routes=[Route("/{path:path}", serve, methods=["GET", "HEAD"])])


def _existing_file(root: Path, url_path: str) -> Path | None:
    """The file a URL path names inside root (a folder by its index.html), never outside."""
    candidate = (root / url_path.lstrip("/")).resolve()
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the export's folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    uvicorn.run(create_site(args.root), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
