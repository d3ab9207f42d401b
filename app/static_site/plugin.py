"""The static export for Amplify, whose page talks to the AgentCore runtime.

With `AGENTCORE_WS_URL` set at export (`wss://bedrock-agentcore.<region>.amazonaws.com/runtimes/
<URL-encoded runtime ARN>/ws`), this plugin
- points Reflex's event socket at that URL (`.web/env.json`'s `EVENT`);
- swaps the socket's creation in Reflex's `utils/state.js` for `socket.js`: the access token as
  AgentCore's subprotocol, the runtime session id and the tab's Reflex token in the query, the
  engine.io path AgentCore's while the socket.io namespace stays Reflex's `/_event`;
- adds `signin.html` to the export: sign-in against the Cognito user-pool API from the browser,
  since no socket opens without a token;
- adds `github_return.html` (also at `GITHUB_RETURN_PATH`, default `/github/callback`, as
  `<path>.html` and `<path>/index.html`): the page AgentCore Identity returns to after consent at
  GitHub, which finishes the link through the runtime's `/invocations` (derived from
  `AGENTCORE_WS_URL`: same host and ARN path, `https://` and `/invocations`).
Without it, `state.js` is Reflex's own (a patch from an earlier export is undone), so a local
`reflex run` in the same folder is never affected. No fork of Reflex, no separate JS build.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import reflex as rx

HERE = Path(__file__).parent
STATE_JS = "utils/state.js"
MARKER = "// agent-web: the Reflex socket through AgentCore"
_CREATE_SOCKET = "const createSocket = (endpoint, transports, token) =>\n  io(endpoint.href, {"
_RECONNECT_QUERY = (
    "socket.current.io.opts.query = { token: getToken() }; // Update token for reconnect."
)
_RECONNECT_AGENTCORE = (
    "Object.assign(socket.current.io.opts, agentWebSocketOptions(getToken())); // agent-web"
)


@dataclasses.dataclass(frozen=True)
class Export:
    """What the exported page needs to know of the deployment (all public values)."""

    socket_url: str
    cognito_region: str
    cognito_client_id: str
    cognito_endpoint: str

    @property
    def invocations_url(self) -> str:
        """The runtime's HTTP entry point: the socket's URL with `/invocations` for `/ws`."""
        parts = urlsplit(self.socket_url)
        scheme = "https" if parts.scheme == "wss" else "http"
        path = parts.path.removesuffix("/ws") + "/invocations"
        return f"{scheme}://{parts.netloc}{path}"

    @property
    def connect_origins(self) -> list[str]:
        return [
            _origin(self.socket_url),
            _origin(self.invocations_url),
            _origin(self.cognito_endpoint),
        ]


def export_settings(environ: dict[str, str] | None = None) -> Export | None:
    """The AgentCore export's settings, or None for an ordinary build. Raises ValueError with
    the variable to fix when they are incomplete."""
    env = os.environ if environ is None else environ
    socket_url = env.get("AGENTCORE_WS_URL", "").strip()
    if not socket_url:
        return None
    if urlsplit(socket_url).scheme not in ("ws", "wss") or not socket_url.endswith("/ws"):
        raise ValueError(f"AGENTCORE_WS_URL must be the runtime's wss://.../ws URL: {socket_url}")
    region = env.get("COGNITO_REGION", "").strip()
    client_id = env.get("COGNITO_CLIENT_ID", "").strip()
    if not (region and client_id):
        raise ValueError("An AgentCore export needs COGNITO_REGION and COGNITO_CLIENT_ID.")
    endpoint = env.get("COGNITO_ENDPOINT_URL", "").strip() or (
        f"https://cognito-idp.{region}.amazonaws.com/"
    )
    return Export(socket_url, region, client_id, endpoint.rstrip("/") + "/")


class StaticSitePlugin(rx.plugins.Plugin):
    def update_env_json(self, **context: Any) -> dict[str, Any] | None:
        export = export_settings()
        return {"EVENT": export.socket_url} if export else None

    def pre_compile(self, **context: Any) -> None:
        context["add_modify_task"](STATE_JS, patch_state_js)

    def post_build(self, **context: Any) -> None:
        export = export_settings()
        if export is not None:
            write_sign_in(Path(context["static_dir"]), export)


def patch_state_js(source: str) -> str:
    """Reflex's state.js with the AgentCore socket for an AgentCore export, else Reflex's own."""
    if MARKER in source:  # patched by an earlier export, maybe with another socket.js
        source = _pristine_state_js()
    if export_settings() is None:
        return source
    if _CREATE_SOCKET not in source or _RECONNECT_QUERY not in source:
        raise RuntimeError(
            "Reflex's utils/state.js no longer creates its socket as app/static_site expects "
            "(was Reflex upgraded?): update app/static_site/socket.js and plugin.py."
        )
    start = source.index(_CREATE_SOCKET)
    end = source.index("  });\n", start) + len("  });\n")
    socket_js = (HERE / "socket.js").read_text()
    patched_source = source[:start] + socket_js + source[end:]
    return patched_source.replace(_RECONNECT_QUERY, _RECONNECT_AGENTCORE)


def write_sign_in(static_dir: Path, export: Export) -> None:
    """The browser's sign-in page, its script and its (public) settings, beside the pages."""
    page = (HERE / "signin.html").read_text()
    (static_dir / "signin.html").write_text(
        page.replace("COGNITO_ORIGIN", _origin(export.cognito_endpoint))
    )
    (static_dir / "signin.js").write_text((HERE / "signin.js").read_text())
    config = {
        "cognitoEndpoint": export.cognito_endpoint,
        "clientId": export.cognito_client_id,
        "region": export.cognito_region,
        "invocationsUrl": export.invocations_url,
    }
    (static_dir / "aw-config.json").write_text(json.dumps(config))
    write_github_return(static_dir, export)


def write_github_return(
    static_dir: Path, export: Export, return_path: str | None = None
) -> list[Path]:
    """AgentCore Identity's return page (GitHub links), at `github_return.html` and at the
    deployment's return path (`GITHUB_RETURN_PATH`) as `<path>.html` and `<path>/index.html`,
    so the static host serves it there as a real file."""
    page = (HERE / "github_return.html").read_text()
    page = page.replace("RUNTIME_ORIGIN", _origin(export.invocations_url))
    (static_dir / "github_return.js").write_text((HERE / "github_return.js").read_text())
    path = (return_path or os.environ.get("GITHUB_RETURN_PATH", "") or "/github/callback").strip()
    written = [static_dir / "github_return.html"]
    relative = path.strip("/")
    if relative and ".." not in relative.split("/") and not relative.endswith(".html"):
        written += [static_dir / f"{relative}.html", static_dir / relative / "index.html"]
    elif relative.endswith(".html") and ".." not in relative.split("/"):
        written.append(static_dir / relative)
    for target in written:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page)
    return written


def _pristine_state_js() -> str:
    import reflex_base

    template = Path(reflex_base.__file__).parent / ".templates" / "web" / STATE_JS
    return template.read_text()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
