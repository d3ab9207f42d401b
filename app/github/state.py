"""The `state` of a GitHub link: it names the user who started the link and expires in ten
minutes, signed with a key derived from the install's key. The return (a plain browser
navigation) learns from it whom to link, and nobody can forge one for someone else."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from app.errors import InvalidInput

TTL_S = 600  # GitHub's codes and AgentCore's sessions live ten minutes too


class LinkState:
    def __init__(self, signing_key: str, purpose: str) -> None:
        self._key = hashlib.sha256(f"agent-web {purpose}:".encode() + signing_key.encode()).digest()

    def make(self, user_id: str) -> str:
        expires, nonce = str(int(time.time()) + TTL_S), secrets.token_urlsafe(12)
        return f"{user_id}.{expires}.{nonce}.{self._sign(user_id, expires, nonce)}"

    def user_of(self, state: str) -> str:
        """The user a state was made for; refuses forged or stale ones."""
        try:
            user_id, expires, nonce, signature = state.split(".")
            fresh = int(expires) >= time.time()
        except ValueError:
            fresh, user_id, signature, nonce, expires = False, "", "", "", "0"
        expected = self._sign(user_id, expires, nonce)
        if not (fresh and hmac.compare_digest(signature, expected)):
            raise InvalidInput("This GitHub link is stale or not yours: start it again.")
        return user_id

    def _sign(self, user_id: str, expires: str, nonce: str) -> str:
        message = f"{user_id}.{expires}.{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
