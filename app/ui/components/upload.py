"""The Files tab's Upload button: files sent in small pieces over the page's own socket.

Reflex's `rx.upload` posts to `/_upload`, which AgentCore does not forward, and AgentCore closes
the socket on any message over 32 KB. So the page reads each chosen file itself and sends it as
events of at most `PIECE_BYTES` raw bytes (base64 makes 21,848 characters of them), a few ahead
of the backend's acknowledgement. The JavaScript is a small React component,
assets/upload_button.jsx, bundled with the page (its Content-Security-Policy runs no `eval`).
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.event import passthrough_event_spec
from reflex_base.vars.base import Var

PIECE_BYTES = 16 * 1024


class UploadButton(rx.Component):
    """`UploadButton` of assets/upload_button.jsx: its children open the file chooser."""

    library = rx.asset("upload_button.jsx").importable_path
    tag = "UploadButton"

    input_id: Var[str]
    max_bytes: Var[int]
    piece_bytes: Var[int]
    ack: Var[dict[str, Any]]  # the backend's {id, received, done} for the upload under way

    # {id, name, size, offset, data}: one piece, its bytes in base64
    on_chunk: rx.EventHandler[passthrough_event_spec(dict)]  # type: ignore[type-arg,valid-type]
    # {name, size, reason}: "too_large" (nothing sent), "stalled", "unreadable"
    on_refuse: rx.EventHandler[passthrough_event_spec(dict)]  # type: ignore[type-arg,valid-type]


def upload_button(
    trigger: rx.Component,
    *,
    input_id: str,
    max_bytes: int,
    ack: Any,
    on_chunk: Any,
    on_refuse: Any,
) -> rx.Component:
    """`trigger` (a button) that uploads the files chosen with it, one after another."""
    return UploadButton.create(
        trigger,
        input_id=input_id,
        max_bytes=max_bytes,
        piece_bytes=PIECE_BYTES,
        ack=ack,
        on_chunk=on_chunk,
        on_refuse=on_refuse,
    )
