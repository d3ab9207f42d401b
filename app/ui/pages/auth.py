"""Sign-in, sign-up and e-mail confirmation pages (local accounts or Cognito)."""

from __future__ import annotations

import reflex as rx

from app.ui.state.base import BaseState


def _card(title: str, *children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("Agent Web", size="6"),
                rx.text(title, color=rx.color("gray", 11)),
                rx.cond(
                    BaseState.auth_notice != "",
                    rx.callout(BaseState.auth_notice, icon="info", id="auth-notice", width="100%"),
                ),
                rx.cond(
                    BaseState.auth_error != "",
                    rx.callout(
                        BaseState.auth_error,
                        icon="triangle_alert",
                        color_scheme="red",
                        id="auth-error",
                        width="100%",
                    ),
                ),
                *children,
                spacing="3",
                width="100%",
            ),
            width="min(420px, 92vw)",
            padding="1.5em",
        ),
        min_height="100vh",
    )


def _field(name: str, label: str, kind: str = "text", **props: object) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=name, style={"font_size": "14px", "font_weight": "500"}),
        rx.input(name=name, id=name, type=kind, required=True, width="100%", **props),
        spacing="1",
        width="100%",
    )


def login_page() -> rx.Component:
    return _card(
        "Sign in to run your agents.",
        rx.form(
            rx.vstack(
                _field("email", "E-mail", "email", auto_complete="username"),
                _field("password", "Password", "password", auto_complete="current-password"),
                rx.button("Sign in", type="submit", width="100%", id="sign-in"),
                width="100%",
            ),
            on_submit=BaseState.sign_in,
            width="100%",
        ),
        rx.text("No account yet? ", rx.link("Sign up", href="/signup", id="to-signup"), size="2"),
    )


def signup_page() -> rx.Component:
    return _card(
        "Create an account.",
        rx.form(
            rx.vstack(
                _field("email", "E-mail", "email", auto_complete="username"),
                _field(
                    "password",
                    "Password (at least 10 characters)",
                    "password",
                    auto_complete="new-password",
                ),
                _field("password2", "Password again", "password", auto_complete="new-password"),
                rx.button("Sign up", type="submit", width="100%", id="sign-up"),
                width="100%",
            ),
            on_submit=BaseState.sign_up,
            width="100%",
        ),
        rx.text("Have an account? ", rx.link("Sign in", href="/login"), size="2"),
    )


def confirm_page() -> rx.Component:
    return _card(
        "Enter the code we e-mailed you.",
        rx.form(
            rx.vstack(
                _field(
                    "email",
                    "E-mail",
                    "email",
                    default_value=rx.State.router.page.params.get("email", ""),
                ),
                _field("code", "Code", auto_complete="one-time-code"),
                rx.button("Confirm", type="submit", width="100%", id="confirm"),
                width="100%",
            ),
            on_submit=BaseState.confirm,
            width="100%",
        ),
    )
