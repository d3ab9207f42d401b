"""Socket messages in pieces: AgentCore closes a WebSocket (1009) on any message over 32 KB.

Reflex sends each state delta as one socket.io message, and a history page, a long answer or a
file's contents easily exceed that; the page sends a long prompt as one message too. In the
container, a message bigger than `FRAME_LIMIT` travels as `aw_piece` messages instead:
`[id, index, count, base64 of up to PIECE_BYTES bytes of its JSON]`, which the other side joins
and handles as the message it is (the page's half is in app/static_site/socket.js).
Base64 keeps each piece's size known whatever the text holds (JSON escaping would not).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from reflex_base.utils import format

logger = logging.getLogger(__name__)

FRAME_LIMIT = 30_000  # AgentCore's 32 KB, less room for the packet's own envelope
PIECE_BYTES = 20_000  # base64 makes 26,668 characters of it
PIECE_EVENT = "aw_piece"
UPDATE_EVENT = "event"  # Reflex's event name, both ways
MAX_MESSAGE_BYTES = 4_000_000  # a joined message from the page (a long prompt) at most
MAX_PARTIAL = 16  # messages being joined at once, per instance


def split(text: str) -> list[str]:
    """The text's UTF-8 bytes as base64 pieces of at most PIECE_BYTES bytes each."""
    raw = text.encode()
    return [
        base64.b64encode(raw[start : start + PIECE_BYTES]).decode()
        for start in range(0, len(raw), PIECE_BYTES)
    ]


@dataclass
class _Partial:
    count: int
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Joiner:
    """Pieces from the pages back into messages, by (socket, message id), with bounds."""

    def __init__(self) -> None:
        self._partial: OrderedDict[tuple[str, str], _Partial] = OrderedDict()

    def add(self, sid: str, piece: Any) -> Any | None:
        """The whole message once its last piece arrived, else None. Bad pieces are dropped."""
        if not (
            isinstance(piece, list)
            and len(piece) == 4
            and isinstance(piece[0], str)
            and len(piece[0]) <= 64
            and all(isinstance(n, int) for n in piece[1:3])
            and isinstance(piece[3], str)
            and 0 <= piece[1] < piece[2] <= MAX_MESSAGE_BYTES // PIECE_BYTES + 1
        ):
            logger.warning("dropped a malformed socket piece from %s", sid)
            return None
        message_id, index, count, data = piece
        key = (sid, message_id)
        partial = self._partial.pop(key, None) or _Partial(count)
        try:
            chunk = base64.b64decode(data, validate=True)
        except ValueError:
            logger.warning("dropped a socket piece that is not base64, from %s", sid)
            return None
        partial.pieces[index] = chunk
        partial.size += len(chunk)
        if partial.size > MAX_MESSAGE_BYTES or partial.count != count:
            logger.warning("dropped an oversized or inconsistent socket message from %s", sid)
            return None
        if len(partial.pieces) < count:
            self._partial[key] = partial
            while len(self._partial) > MAX_PARTIAL:
                self._partial.popitem(last=False)
            return None
        try:
            return json.loads(b"".join(partial.pieces[i] for i in range(count)).decode())
        except ValueError:  # not UTF-8, or not JSON
            logger.warning("dropped a socket message that is not JSON, from %s", sid)
            return None


Emit = Callable[..., Awaitable[None]]


def install(namespace: Any) -> None:
    """Make Reflex's event namespace send large updates in pieces and take pieces from pages."""
    emit: Emit = namespace.emit
    joiner = Joiner()

    async def emit_in_pieces(event: str, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if event == UPDATE_EVENT:
            text = format.json_dumps(data)
            if len(text) > FRAME_LIMIT // 4 and len(text.encode()) > FRAME_LIMIT:
                message_id = uuid.uuid4().hex
                pieces = split(text)
                for index, piece in enumerate(pieces):
                    envelope = [message_id, index, len(pieces), piece]
                    await emit(PIECE_EVENT, envelope, *args, **kwargs)
                return
        await emit(event, data, *args, **kwargs)

    async def on_aw_piece(sid: str, piece: Any) -> None:
        message = joiner.add(sid, piece)
        if message is not None:
            await namespace.on_event(sid, message)

    namespace.emit = emit_in_pieces
    namespace.on_aw_piece = on_aw_piece
