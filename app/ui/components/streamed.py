"""The answer as it streams, and finished answers the page watched stream, shown from the
page's own copy (assets/streamed_text.jsx) instead of being sent again (app/ui/state/stream.py
says how)."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_base.vars.base import Var

from app.ui.components.markdown import safe_markdown
from app.ui.state.stream import StreamState, slot_vars

LIBRARY = rx.asset("streamed_text.jsx").importable_path


class StreamKeeper(rx.Component):
    """`StreamKeeper` of assets/streamed_text.jsx: renders nothing, records the stream."""

    library = LIBRARY
    tag = "StreamKeeper"

    stream_key: Var[str]
    parts: Var[list[str]]


class KeptText(rx.Component):
    """`KeptText` of assets/streamed_text.jsx: its one child, a markdown element, gets the
    text recorded under `stream_key` (when there is one)."""

    library = LIBRARY
    tag = "KeptText"

    stream_key: Var[str]


def streaming_view(**props: Any) -> rx.Component:
    """The streamed text, oldest slot first, as plain text until the block is finished."""
    parts = slot_vars()
    return rx.fragment(
        StreamKeeper.create(stream_key=StreamState.key, parts=parts),
        rx.cond(
            StreamState.active,
            rx.box(*[rx.el.span(part) for part in parts], white_space="pre-wrap", **props),
        ),
    )


def answer_markdown(block: Var) -> rx.Component:
    """A finished answer: its text, or the page's copy of the stream it names (`kept`)."""
    shown = safe_markdown(block["text"])
    shown.children = [KeptText.create(*shown.children, stream_key=block["kept"].to(str))]
    return shown
