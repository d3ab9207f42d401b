"""The page's own Content-Security-Policy, as a <meta> tag in every page's head.

The backend adds a stricter policy as a header to the pages it serves (inline scripts allowed
by hash only, see app.api.headers); browsers enforce both. This tag covers the pages served by
the development server and static hosts: no frames, no plugins, nothing from foreign hosts but
the backend's own socket (and, in an AgentCore export, the runtime's socket and Cognito).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import reflex as rx

from app.static_site.plugin import export_settings


def page_policy_meta() -> rx.Component:
    backend = urlsplit(rx.config.get_config().api_url)
    origins = ""
    if backend.hostname:
        host = backend.netloc
        if backend.hostname in ("localhost", "127.0.0.1", "0.0.0.0"):
            # The page swaps "localhost" for the address it was opened at (a phone on the
            # local network): the backend is that host on the same port.
            host = f"*:{backend.port or 80}"
        secure = backend.scheme == "https"
        origins = f" {'https' if secure else 'http'}://{host} {'wss' if secure else 'ws'}://{host}"
    export = export_settings()
    if export is not None:  # the static site on Amplify: the runtime's socket, Cognito's API
        origins += "".join(f" {origin}" for origin in export.connect_origins)
    policy = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self'{origins}",
            "worker-src 'self' blob:",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )
    return rx.el.meta(http_equiv="Content-Security-Policy", content=policy)
