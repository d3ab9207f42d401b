"""The Terminal panel under the conversation: xterm.js (`assets/terminal.jsx`, a small React
component over the `@xterm/xterm` package) fed by TerminalState over the page's socket.

The panel can be made taller or shorter by its corner, and the terminal follows its size.
"""

from __future__ import annotations

import reflex as rx
from reflex_base.event import passthrough_event_spec
from reflex_base.vars.base import Var

from app.ui.state.chat import ChatState
from app.ui.state.terminal import TerminalState

BORDER = f"1px solid {rx.color('gray', 5)}"


class XTerm(rx.NoSSRComponent):
    """`AgentTerminal` from assets/terminal.jsx (xterm.js touches the DOM, so never on the
    server)."""

    library = rx.asset("terminal.jsx").importable_path
    lib_dependencies: list[str] = ["@xterm/xterm@6.0.0", "@xterm/addon-fit@0.11.0"]
    tag = "AgentTerminal"

    output: Var[dict]

    on_ready: rx.EventHandler[passthrough_event_spec(int, int)]  # type: ignore[type-arg,valid-type]
    on_size: rx.EventHandler[passthrough_event_spec(int, int)]  # type: ignore[type-arg,valid-type]
    on_keys: rx.EventHandler[passthrough_event_spec(str)]  # type: ignore[type-arg,valid-type]
    on_missing: rx.EventHandler[passthrough_event_spec(int)]  # type: ignore[type-arg,valid-type]


def terminal_toggle() -> rx.Component:
    """The header's button that shows or hides the terminal (when a session is open)."""
    return rx.cond(
        ChatState.project_id != "",
        rx.icon_button(
            rx.icon("square-terminal", size=14),
            on_click=TerminalState.toggle,
            variant=rx.cond(TerminalState.showing, "solid", "ghost"),
            size="1",
            id="terminal-toggle",
            title="Terminal",
            aria_label="Terminal",
            flex_shrink="0",
        ),
    )


def terminal_panel() -> rx.Component:
    return rx.cond(
        TerminalState.showing & (ChatState.project_id != ""),
        rx.vstack(
            rx.hstack(
                rx.icon("square-terminal", size=14),
                rx.text("Terminal", size="1", weight="medium"),
                rx.text(ChatState.project, size="1", color=rx.color("gray", 10)),
                rx.text(
                    "runs in your agent's sandbox",
                    size="1",
                    color=rx.color("gray", 9),
                    display=["none", "none", "block"],
                ),
                rx.spacer(),
                rx.cond(
                    TerminalState.ended != "",
                    rx.hstack(
                        rx.text(TerminalState.ended, size="1", id="terminal-ended"),
                        rx.button(
                            "New shell",
                            on_click=TerminalState.new_shell,
                            size="1",
                            variant="soft",
                            id="terminal-new",
                        ),
                        align="center",
                    ),
                    rx.button(
                        "Close shell",
                        on_click=TerminalState.close_shell,
                        size="1",
                        variant="ghost",
                        color_scheme="red",
                        id="terminal-close",
                    ),
                ),
                rx.icon_button(
                    rx.icon("x", size=14),
                    on_click=TerminalState.toggle,
                    variant="ghost",
                    size="1",
                    title="Hide the terminal (it keeps running)",
                    aria_label="Hide the terminal",
                ),
                width="100%",
                align="center",
                spacing="2",
                padding="0.25em 0.75em",
            ),
            rx.cond(
                TerminalState.error != "",
                rx.text(
                    TerminalState.error,
                    size="1",
                    color=rx.color("red", 11),
                    id="terminal-error",
                    padding_x="0.75em",
                ),
            ),
            rx.box(
                XTerm.create(
                    output=TerminalState.output,
                    on_ready=TerminalState.ready,
                    on_size=TerminalState.resized,
                    on_keys=TerminalState.keys,
                    on_missing=TerminalState.missing,
                    id="terminal",
                    key=ChatState.project_id + "-" + TerminalState.shells.to_string(),
                ),
                width="100%",
                height="100%",
                min_height="0",
                flex="1",
                padding="0.25em 0.5em",
                background="#111113",
            ),
            height="38vh",
            min_height="8em",
            max_height="85vh",
            width="100%",
            spacing="0",
            border_top=BORDER,
            resize="vertical",
            overflow="hidden",
            id="terminal-panel",
        ),
    )
