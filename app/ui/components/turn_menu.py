"""A prompt's own actions: fork the conversation from its turn, or rewind the files to before
it (with a dialog that shows what would change first: rewinding cannot be undone)."""

from __future__ import annotations

import reflex as rx

from app.ui.state.chat import ChatState


def turn_menu(block: rx.Var) -> rx.Component:
    """The "⋯" beside a prompt; `block["key"]` names its turn (see app.ui.state.turns)."""
    return rx.dropdown_menu.root(
        rx.dropdown_menu.trigger(
            rx.icon_button(
                rx.icon("ellipsis", size=14),
                size="1",
                variant="ghost",
                color_scheme="gray",
                class_name="turn-menu",
                aria_label="Turn actions",
            )
        ),
        rx.dropdown_menu.content(
            rx.dropdown_menu.item(
                "Fork from here",
                on_click=ChatState.fork_from(block["key"].to(str)),
                class_name="fork-here",
            ),
            rx.dropdown_menu.item(
                "Rewind files to before this turn",
                on_click=ChatState.preview_rewind(block["key"].to(str)),
                class_name="rewind-here",
            ),
        ),
    )


def rewind_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Rewind files to before this turn?"),
            rx.alert_dialog.description(
                "These files go back to how they were before the turn; the conversation stays "
                "as it is. Only the agent's file edits are tracked, not shell commands.",
                size="2",
            ),
            rx.vstack(
                rx.foreach(
                    ChatState.rewind_files,
                    lambda path: rx.code(path, class_name="rewind-file", variant="ghost"),
                ),
                id="rewind-files",
                spacing="1",
                margin_y="0.8em",
            ),
            rx.cond(
                ChatState.rewind_note != "",
                rx.callout(ChatState.rewind_note, icon="info", size="1", id="rewind-note"),
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button("Cancel", variant="soft", on_click=ChatState.cancel_rewind)
                ),
                rx.button(
                    "Rewind",
                    color_scheme="red",
                    on_click=ChatState.confirm_rewind,
                    disabled=ChatState.rewind_files.length() == 0,
                    id="confirm-rewind",
                ),
                justify="end",
                spacing="2",
                margin_top="1em",
            ),
        ),
        open=ChatState.rewind_at != "",
    )
