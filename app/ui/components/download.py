"""Where the Files tab's downloads land: files received in small pieces over the page's socket.

A link to `/files/raw` would not do: AgentCore forwards only the socket, and the page holds no
token a plain request could carry. So the state shows the page one piece of the file at a time
(`piece`: {id, index, total, data, name, mime}, its bytes in base64), and the page acknowledges
each before the next comes, then saves the whole as a file. The JavaScript is a small React
component, assets/download_sink.jsx, bundled with the page (its Content-Security-Policy runs no
`eval`).
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.event import passthrough_event_spec
from reflex_base.vars.base import Var


class DownloadSink(rx.Component):
    """`DownloadSink` of assets/download_sink.jsx: renders nothing, saves what arrives."""

    library = rx.asset("download_sink.jsx").importable_path
    tag = "DownloadSink"

    piece: Var[dict[str, Any]]

    # {id, index}: the page holds that piece (and has saved the file after the last)
    on_ack: rx.EventHandler[passthrough_event_spec(dict)]  # type: ignore[type-arg,valid-type]
    # {id, reason}: "lost" (the page was reloaded midway) or "stalled" (nothing came for long)
    on_fail: rx.EventHandler[passthrough_event_spec(dict)]  # type: ignore[type-arg,valid-type]


def download_sink(*, piece: Any, on_ack: Any, on_fail: Any) -> rx.Component:
    """The page's end of the downloads the state sends through `piece`."""
    return DownloadSink.create(piece=piece, on_ack=on_ack, on_fail=on_fail)
