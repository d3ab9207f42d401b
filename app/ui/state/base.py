"""Sign-in state every page inherits: who the user is, from a verified token only.

Tokens live in the browser's localStorage (so a reload keeps the user signed in); the user id
is a backend-only var set after the server verified the token. A background task refreshes the
access token before it expires and sends the user to the sign-in page when that fails.

Every event a tab sends is checked again (`SignInCheck`): a signed-out, revoked or expired
access token makes the state forget the user at once, whatever client token the socket shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import quote

import reflex as rx
from reflex.middleware.middleware import Middleware
from reflex.state import StateUpdate
from reflex.utils.prerequisites import get_app
from reflex_base.constants.state import FIELD_MARKER
from reflex_base.event.processor.base_state_processor import chain_updates

from app.api.gate import USER_HEADER
from app.auth.local import TokenPair
from app.errors import AppError, Unauthorized
from app.services import services

REFRESH_MARGIN_S = 300  # refresh this long before the access token expires


class BaseState(rx.State):
    access_token: str = rx.LocalStorage("", name="aw_access")
    refresh_token: str = rx.LocalStorage("", name="aw_refresh")
    expires_at: str = rx.LocalStorage("0", name="aw_expires")
    email: str = ""
    auth_error: str = ""
    auth_notice: str = ""
    _user_id: str = ""
    _token_id: str = ""  # the verified access token's id and expiry (unix time)
    _token_expires: float = 0.0
    _refresher_running: bool = False

    @property
    def user_id(self) -> str:
        if not self._user_id:
            raise Unauthorized("Sign in first.")
        return self._user_id

    @rx.var
    def signed_in(self) -> bool:
        return bool(self.email)

    @rx.event
    async def require_sign_in(self) -> Any:
        """on_load of protected pages: verify (refreshing if needed) or go to sign-in."""
        if await self._verify():
            return BaseState.keep_fresh
        return rx.redirect("/login")

    @rx.event
    async def redirect_if_signed_in(self) -> Any:
        if await self._verify():
            return rx.redirect("/")
        return None

    @rx.event
    async def sign_in(self, form: dict[str, Any]) -> Any:
        auth = services().auth
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        try:
            if auth.local is not None:
                tokens = await auth.local.sign_in(
                    email, password, client=self.router.session.client_ip
                )
                self._store(tokens.access_token, tokens.refresh_token, tokens.expires_in)
            else:
                assert auth.cognito is not None
                ct = await asyncio.to_thread(auth.cognito.sign_in, email, password)
                self._store(ct.access_token, ct.refresh_token, ct.expires_in)
        except AppError as error:
            self.auth_error = error.message
            if error.code == "user_not_confirmed":
                return rx.redirect(f"/confirm?email={quote(email.strip())}")
            return None
        self.auth_error = ""
        if await self._verify():
            return [rx.redirect("/"), BaseState.keep_fresh]
        return None

    @rx.event
    async def sign_up(self, form: dict[str, Any]) -> Any:
        auth = services().auth
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        if password != str(form.get("password2", password)):
            self.auth_error = "The two passwords differ."
            return None
        try:
            if auth.local is not None:
                await asyncio.to_thread(auth.local.sign_up, email, password)
            else:
                assert auth.cognito is not None
                await asyncio.to_thread(auth.cognito.sign_up, email, password)
                self.auth_error = ""
                self.auth_notice = f"We sent a code to {email.strip()}: enter it to confirm."
                return rx.redirect(f"/confirm?email={quote(email.strip())}")
        except AppError as error:
            self.auth_error = error.message
            return None
        return BaseState.sign_in({"email": email, "password": password})

    @rx.event
    async def confirm(self, form: dict[str, Any]) -> Any:
        cognito = services().auth.cognito
        if cognito is None:
            return rx.redirect("/login")
        try:
            await asyncio.to_thread(
                cognito.confirm_sign_up,
                str(form.get("email", "")),
                str(form.get("code", "")).strip(),
            )
        except AppError as error:
            self.auth_error = error.message
            return None
        self.auth_error = ""
        self.auth_notice = "Your e-mail is confirmed: sign in."
        return rx.redirect("/login")

    @rx.event
    async def sign_out(self) -> Any:
        """The access token is revoked on the server (and the refresh token, or with Cognito
        every refresh token of the user), then this tab forgets both."""
        with contextlib.suppress(AppError):  # signing out here still happens below
            await services().auth.sign_out(self.access_token, self.refresh_token or None)
        await self._clear()
        return rx.redirect("/login")

    def signed_in_still(self) -> bool:
        """Cheap check for loops that run often (streaming): not expired, not revoked here."""
        return (
            bool(self._user_id)
            and time.time() < self._token_expires
            and not services().auth.revoked_here(self._token_id)
        )

    @rx.event(background=True)
    async def keep_fresh(self) -> Any:
        """Refresh the access token shortly before it expires, for as long as the page is open."""
        async with self:
            if self._refresher_running:
                return
            self._refresher_running = True
        try:
            while True:
                async with self:
                    wait = float(self.expires_at or 0) - time.time() - REFRESH_MARGIN_S
                    signed_in = bool(self._user_id)
                if not signed_in:
                    return
                await asyncio.sleep(max(wait, 1.0))
                async with self:
                    expired = (
                        float(self.expires_at or 0) - time.time() <= REFRESH_MARGIN_S
                        and not await self._refresh_tokens()
                    )
                    if expired:
                        await self._clear()
                        self.auth_error = "Your sign-in expired; please sign in again."
                if expired:
                    yield rx.redirect("/login")
                    return
        finally:
            async with self:
                self._refresher_running = False

    async def _verify(self) -> bool:
        """Is the stored access token valid (refreshing it if it is about to expire)?"""
        if not self.access_token:
            return False
        if (
            float(self.expires_at or 0) - time.time() <= REFRESH_MARGIN_S
            and not await self._refresh_tokens()
        ):
            await self._clear()
            return False
        try:
            identity = await services().auth.identify(self.access_token)
            user = await asyncio.to_thread(services().store.get_user, identity.user_id)
        except AppError:
            await self._clear()
            return False
        socket_user = self.router.headers.raw_headers.get(USER_HEADER)
        if socket_user is not None and socket_user != identity.user_id:
            # In the container the socket was let in for one user (ContainerGate): a token of
            # anyone else in this tab's storage is not honoured on that socket.
            await self._clear()
            return False
        if self._user_id and self._user_id != identity.user_id:
            await self._forget_views()
        self._user_id, self.email = identity.user_id, user.email
        self._token_id, self._token_expires = identity.token_id, identity.expires_at
        return True

    async def proves_same_user(self, access_token: str) -> bool:
        """Does this access token (from a browser) verify as the user this state holds?"""
        try:
            identity = await services().auth.identify(access_token)
        except AppError:
            return False
        return identity.user_id == self._user_id

    async def still_signed_in(self) -> bool:
        """Is the sign-in this state acts for still valid (checked on every event)? With
        nobody signed in there is nobody to act as: handlers that need a user refuse."""
        return not self._user_id or await self.proves_same_user(self.access_token)

    async def _refresh_tokens(self) -> bool:
        auth = services().auth
        try:
            if auth.local is not None:
                tokens: TokenPair = await asyncio.to_thread(auth.local.refresh, self.refresh_token)
                self._store(tokens.access_token, tokens.refresh_token, tokens.expires_in)
            else:
                assert auth.cognito is not None
                ct = await asyncio.to_thread(auth.cognito.refresh, self.refresh_token)
                self._store(ct.access_token, ct.refresh_token, ct.expires_in)
        except AppError:
            return False
        return True

    def _store(self, access: str, refresh: str, expires_in: int) -> None:
        self.access_token, self.refresh_token = access, refresh
        self.expires_at = str(int(time.time()) + expires_in)

    async def _clear(self) -> None:
        self.access_token = self.refresh_token = ""
        self.expires_at = "0"
        self._user_id = self.email = self._token_id = ""
        self._token_expires = 0.0
        await self._forget_views()

    async def _forget_views(self) -> None:
        """Nothing a signed-out (or other) user saw stays in this browser's state."""
        from app.ui.state.stream import StreamState
        from app.ui.state.turns import TurnsState

        pending = [
            *self.substates.values(),
            await self.get_state(StreamState),
            await self.get_state(TurnsState),
        ]
        while pending:
            state = pending.pop()
            state.reset()
            pending.extend(state.substates.values())


def connected(token: str) -> bool:
    """Is a browser tab with this client token still connected? Background tasks that follow
    something for a tab end when it is gone."""
    namespace = get_app().app.event_namespace  # the running rx.App, found by Reflex's config
    return namespace is not None and token in namespace.token_to_sid


# BaseState's own handlers that sign in or out: they check the token themselves.
_AUTH_EVENTS = frozenset(
    {"require_sign_in", "redirect_if_signed_in", "sign_in", "sign_up", "confirm", "sign_out"}
)


class SignInCheck(Middleware):
    """The sign-in behind a tab's state is checked before its events run.

    - A page load or reconnect (`hydrate_and_load`) carries the browser's own tokens. Unless
      they prove the same user the state holds, the state forgets that user (and everything
      it showed) first: a tab's client token alone, without that browser's access token,
      shows and does nothing as anyone.
    - Any event of the app's states: a revoked, expired or foreign access token makes the
      state forget the user and sends the tab to sign in. Reflex's other internal events
      (client storage, hydration flags) act for nobody and pass.
    """

    async def preprocess(self, app: Any, state: Any, event: Any) -> StateUpdate | None:
        base_name = BaseState.get_full_name()
        if event.name.endswith(".hydrate_and_load") and not event.name.startswith(base_name):
            base = await state.get_state(BaseState)
            presented = ((event.payload or {}).get("vars") or {}).get(_ACCESS_KEY, "")
            if base._user_id and not await base.proves_same_user(str(presented)):
                await base._clear()
            return None
        prefix = base_name + "."
        if not event.name.startswith(prefix):
            return None
        base = await state.get_state(BaseState)
        if await base.still_signed_in():
            return None
        await base._clear()
        base.auth_error = "Your sign-in has ended; please sign in again."
        if event.name.removeprefix(prefix) in _AUTH_EVENTS:
            return None  # a sign-in (or out) of its own: let it run on the cleared state
        await chain_updates(
            rx.redirect("/login"), handler_name="sign-in check", root_state=state._get_root_state()
        )
        return StateUpdate()


# How the browser names the access token when it hands its storage to a (re)connecting tab.
_ACCESS_KEY = f"{BaseState.get_full_name()}.access_token{FIELD_MARKER}"
