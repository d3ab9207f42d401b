"""The Environment section of the Projects tab: the current project's variables for its
agents. Values are typed into password fields and never shown again (see app/ui/state/env.py)."""

from __future__ import annotations

import reflex as rx

from app.ui.state.env import EnvState
from app.ui.state.workspace import WorkspaceState

MUTED = {"size": "1", "color": rx.color("gray", 10)}


def _value_input(input_id: str) -> rx.Component:
    return rx.input(
        name="value",
        type="password",
        placeholder="Value",
        auto_complete="new-password",
        size="1",
        flex="1",
        id=input_id,
    )


def _row(item: rx.Var) -> rx.Component:
    name = item["name"]
    return rx.vstack(
        rx.hstack(
            rx.code(name, size="1"),
            rx.text("••••••", **MUTED),
            rx.spacer(),
            rx.button("set", size="1", variant="ghost", on_click=EnvState.edit(name)),
            rx.button(
                "delete",
                size="1",
                variant="ghost",
                color_scheme="red",
                on_click=EnvState.delete(name),
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            EnvState.editing == name,
            rx.form(
                rx.hstack(
                    _value_input("env-set-value"),
                    rx.button("Save", size="1", type="submit"),
                    rx.button("Cancel", size="1", variant="ghost", on_click=EnvState.cancel),
                ),
                on_submit=EnvState.save,
                reset_on_submit=True,
                width="100%",
            ),
        ),
        width="100%",
        spacing="1",
        class_name="env-row",
    )


def _add_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="name", placeholder="NAME", size="1", width="40%", id="env-name"),
            _value_input("env-value"),
            rx.button("Add", size="1", type="submit", id="env-add"),
        ),
        on_submit=EnvState.save,
        reset_on_submit=True,
        width="100%",
    )


def env_section() -> rx.Component:
    """The list is remounted for each project (its key), so it is always the current
    project's; the form is not, so what is typed while the tab loads its project stays."""
    return rx.box(
        rx.vstack(
            rx.text("Environment", size="2", weight="medium"),
            rx.text(
                "Variables for this project's agents. Values are write-only and stored "
                "encrypted; a change applies to agents started afterwards.",
                **MUTED,
            ),
            rx.box(
                rx.foreach(EnvState.names, _row),
                key=WorkspaceState.project_id,
                on_mount=EnvState.load,
                width="100%",
            ),
            _add_form(),
            rx.cond(
                EnvState.error != "",
                rx.text(EnvState.error, size="1", color=rx.color("red", 11), id="env-error"),
            ),
            rx.cond(EnvState.notice != "", rx.text(EnvState.notice, **MUTED, id="env-notice")),
            width="100%",
            spacing="1",
        ),
        width="100%",
        id="env-section",
    )
