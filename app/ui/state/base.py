"""The state every page inherits: who the user is."""

from __future__ import annotations

import reflex as rx

from app.services import LOCAL_USER_EMAIL, services


class BaseState(rx.State):
    _user_id: str = ""

    @property
    def user_id(self) -> str:
        """The signed-in user's id (the single local user until sign-in lands)."""
        if not self._user_id:
            self._user_id = services().store.ensure_user(LOCAL_USER_EMAIL).id
        return self._user_id
