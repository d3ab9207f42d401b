"""The MCP servers section of the rail's Projects tab (state: app/ui/state/mcp.py). One form
adds a server or edits one; it is rebuilt (its `key`) when it switches between the two, so its
fields start from the server being edited."""

from __future__ import annotations

import reflex as rx

from app.ui.state.mcp import McpState

ONE_LINE = {"white_space": "nowrap", "overflow": "hidden", "text_overflow": "ellipsis"}


def _server(item: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            checked=item["enabled"].to(bool),
            on_change=lambda _checked: McpState.toggle(item["id"]),
            title="Use in new sessions",
            class_name="mcp-on",
        ),
        rx.vstack(
            rx.hstack(
                rx.text(item["name"], size="1", weight="medium"),
                rx.badge(item["type"], size="1", variant="soft"),
                spacing="1",
            ),
            rx.text(item["target"], size="1", color=rx.color("gray", 10), **ONE_LINE),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        rx.button(
            "Test",
            on_click=McpState.test(item["id"]),  # type: ignore[misc]
            loading=McpState.testing == item["id"],
            size="1",
            variant="soft",
            class_name="mcp-test",
        ),
        rx.icon_button(
            rx.icon("pencil", size=12),
            on_click=McpState.start_editing(item["id"]),
            size="1",
            variant="ghost",
            title="Edit",
            aria_label="Edit",
            class_name="mcp-edit",
        ),
        rx.icon_button(
            rx.icon("trash-2", size=12),
            on_click=McpState.remove(item["id"]),
            size="1",
            variant="ghost",
            color_scheme="red",
            title="Remove",
            aria_label="Remove",
            class_name="mcp-remove",
        ),
        width="100%",
        align="center",
        spacing="2",
        class_name="mcp-server",
    )


def _add_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.input(
                    name="name",
                    default_value=McpState.draft.get("name", ""),
                    placeholder="name",
                    size="1",
                    flex="1",
                    id="mcp-name",
                ),
                rx.select(
                    ["stdio", "http", "sse"],
                    value=McpState.kind,
                    on_change=McpState.set_kind,
                    size="1",
                    id="mcp-kind",
                ),
                width="100%",
            ),
            rx.cond(
                McpState.kind == "stdio",
                rx.input(
                    name="command",
                    default_value=McpState.draft.get("command", ""),
                    placeholder="command and arguments (runs in your sandbox)",
                    size="1",
                    width="100%",
                    id="mcp-command",
                ),
                rx.vstack(
                    rx.input(
                        name="url",
                        default_value=McpState.draft.get("url", ""),
                        placeholder="https://…",
                        size="1",
                        width="100%",
                        id="mcp-url",
                    ),
                    rx.input(
                        name="header",
                        type="password",
                        placeholder=rx.cond(
                            McpState.draft.get("header_hint", "") != "",
                            McpState.draft.get("header_hint", ""),
                            "Header: value (optional, never shown again)",
                        ),
                        size="1",
                        width="100%",
                        id="mcp-header",
                    ),
                    width="100%",
                    spacing="1",
                ),
            ),
            rx.hstack(
                rx.button(
                    rx.cond(McpState.editing != "", "Save", "Add"),
                    type="submit",
                    size="1",
                    id="mcp-add",
                ),
                rx.button("Cancel", on_click=McpState.cancel_adding, size="1", variant="soft"),
            ),
            width="100%",
            spacing="1",
        ),
        on_submit=McpState.add,
        reset_on_submit=True,
        width="100%",
        key=McpState.editing,
    )


def mcp_section() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("MCP servers", size="2", weight="medium"),
            rx.spacer(),
            rx.cond(
                ~McpState.adding,
                rx.button(
                    rx.icon("plus", size=12),
                    "Add",
                    on_click=McpState.start_adding,
                    size="1",
                    variant="ghost",
                    id="mcp-start-add",
                ),
            ),
            width="100%",
            align="center",
        ),
        rx.foreach(McpState.servers, _server),
        rx.cond(McpState.adding, _add_form()),
        rx.cond(
            McpState.notice != "",
            rx.text(McpState.notice, size="1", id="mcp-notice"),
        ),
        rx.cond(
            McpState.error != "",
            rx.text(McpState.error, size="1", color=rx.color("red", 11), id="mcp-error"),
        ),
        width="100%",
        spacing="1",
        padding_top="0.5em",
        id="mcp-section",
    )
