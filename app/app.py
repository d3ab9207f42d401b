"""The Reflex app: pages, the HTTP API on the backend port, and the engine's lifespan."""

import contextlib
from collections.abc import AsyncIterator

import reflex as rx

from app.api.main import create_api
from app.services import start_services, stop_services
from app.ui.pages.auth import confirm_page, login_page, signup_page
from app.ui.pages.chat import chat_page
from app.ui.state.base import BaseState
from app.ui.state.sessions import SessionsState


@contextlib.asynccontextmanager
async def _engine_lifespan() -> AsyncIterator[None]:
    await start_services()
    try:
        yield
    finally:
        await stop_services()


app = rx.App(api_transformer=create_api())
app.register_lifespan_task(_engine_lifespan)
app.add_page(
    chat_page, route="/", title="Agent Web", on_load=[BaseState.require_sign_in, SessionsState.load]
)
app.add_page(
    login_page, route="/login", title="Sign in · Agent Web", on_load=BaseState.redirect_if_signed_in
)
app.add_page(signup_page, route="/signup", title="Sign up · Agent Web")
app.add_page(confirm_page, route="/confirm", title="Confirm · Agent Web")
