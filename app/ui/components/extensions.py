"""The Skills and plugins section of the rail's Projects tab (state:
app/ui/state/extensions.py). The list is remounted for each project (its key), so the switches
show the current project's choice; the install form is not, so what the user is typing while
the tab loads its project stays in the field."""

from __future__ import annotations

import reflex as rx

from app.ui.state.extensions import ExtensionsState
from app.ui.state.workspace import WorkspaceState

MUTED = {"size": "1", "color": rx.color("gray", 10)}
ONE_LINE = {"white_space": "nowrap", "overflow": "hidden", "text_overflow": "ellipsis"}


def _item(item: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.switch(
            checked=item["enabled"].to(bool),
            on_change=lambda _on: ExtensionsState.toggle(item["id"]),
            size="1",
            title="Enabled in this project",
            class_name="extension-on",
        ),
        rx.vstack(
            rx.hstack(
                rx.text(item["name"], size="1", weight="medium", class_name="extension-name"),
                rx.badge(item["kind"], size="1", variant="soft"),
                spacing="1",
            ),
            rx.text(item["description"], **MUTED, **ONE_LINE, title=item["source"].to(str)),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        rx.icon_button(
            rx.icon("trash-2", size=12),
            on_click=ExtensionsState.remove(item["id"]),
            size="1",
            variant="ghost",
            color_scheme="red",
            title="Remove",
            aria_label="Remove",
            class_name="extension-remove",
        ),
        width="100%",
        align="center",
        spacing="2",
        class_name="extension",
    )


def _install_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                name="source",
                placeholder="https://… or a folder of this project",
                size="1",
                flex="1",
                id="extension-source",
            ),
            rx.button(
                "Install",
                type="submit",
                size="1",
                loading=ExtensionsState.installing,
                id="extension-install",
            ),
            width="100%",
        ),
        on_submit=ExtensionsState.install,
        reset_on_submit=True,
        width="100%",
    )


def extensions_section() -> rx.Component:
    return rx.box(
        rx.vstack(
            rx.text("Skills and plugins", size="2", weight="medium"),
            rx.text(
                "A skill is a folder with SKILL.md; a plugin has .claude-plugin/plugin.json. "
                "Switched on here, this project's agents started afterwards get it, read-only.",
                **MUTED,
            ),
            rx.box(
                rx.foreach(ExtensionsState.items, _item),
                key=WorkspaceState.project_id,
                on_mount=ExtensionsState.load,
                width="100%",
            ),
            _install_form(),
            rx.cond(
                ExtensionsState.notice != "",
                rx.text(ExtensionsState.notice, **MUTED, id="extension-notice"),
            ),
            rx.cond(
                ExtensionsState.error != "",
                rx.text(
                    ExtensionsState.error, size="1", color=rx.color("red", 11), id="extension-error"
                ),
            ),
            width="100%",
            spacing="1",
            padding_top="0.5em",
        ),
        width="100%",
        id="extensions-section",
    )
