"""The Reflex app: pages, the HTTP API on the backend port, and the engine's lifespan."""

import contextlib
import logging
from collections.abc import AsyncIterator

import reflex as rx
from reflex_base.event import EventSpec

from app.api.headers import security_headers
from app.api.main import create_api
from app.services import start_services, stop_services
from app.ui.pages.auth import confirm_page, login_page, signup_page
from app.ui.pages.chat import chat_page
from app.ui.policy import page_policy_meta
from app.ui.state.base import BaseState, SignInCheck
from app.ui.state.chat import ChatState
from app.ui.state.sessions import SessionsState

api = create_api()
logger = logging.getLogger(__name__)


def _unexpected(exception: Exception) -> EventSpec:
    """A bug reached the page: log it, and say so in the error bar (Reflex's own toast would
    need the page to evaluate script, which its Content-Security-Policy forbids)."""
    logger.error("unexpected error in an event handler", exc_info=exception)
    return ChatState.show_failure("Something went wrong on the server (it is logged). Try again.")


@contextlib.asynccontextmanager
async def _engine_lifespan() -> AsyncIterator[None]:
    api.state.services = await start_services()
    try:
        yield
    finally:
        await stop_services()


app = rx.App(
    api_transformer=[api, security_headers],
    head_components=[page_policy_meta()],
    backend_exception_handler=_unexpected,
)
app.register_lifespan_task(_engine_lifespan)
app.add_middleware(SignInCheck())
app.add_page(
    chat_page, route="/", title="Agent Web", on_load=[BaseState.require_sign_in, SessionsState.load]
)
app.add_page(
    login_page, route="/login", title="Sign in · Agent Web", on_load=BaseState.redirect_if_signed_in
)
app.add_page(signup_page, route="/signup", title="Sign up · Agent Web")
app.add_page(confirm_page, route="/confirm", title="Confirm · Agent Web")
