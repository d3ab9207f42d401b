"""GitHub tokens at rest: sealed with a key derived from the install's secret key, so the
database (or a copy of it) alone does not give a user's GitHub access away."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import Unauthorized


class Vault:
    def __init__(self, install_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"agent-web github tokens"
        ).derive(install_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Unauthorized(
                "The stored GitHub link can no longer be read (the app's secret key changed): "
                "link GitHub again."
            ) from None
