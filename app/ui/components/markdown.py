"""Markdown for text the agent wrote, which is untrusted: a repository file or a web page it
read can make it write anything (prompt injection). Raw HTML is never interpreted (it shows as
text), react-markdown drops unsafe link schemes (`javascript:`, `data:`...), and links open in
a new tab that cannot reach back into this one."""

from __future__ import annotations

from typing import Any

import reflex as rx


def _link(text: Any, **props: Any) -> rx.Component:
    return rx.link(text, **props, is_external=True, rel="noopener noreferrer nofollow")


def safe_markdown(text: Any, **props: Any) -> rx.Component:
    return rx.markdown(text, use_raw=False, component_map={"a": _link}, **props)
