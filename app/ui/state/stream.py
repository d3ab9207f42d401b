"""The text block being streamed, kept so each UI update carries only the new text.

Reflex re-sends a changed var whole, so appending tokens to one string costs bytes quadratic
in the answer's length. Here every batch of tokens goes into a fresh slot var and is never sent
again; when the slots run out, they are folded into one slot of a second row (sent once more),
and that row, when full, into `rest`.

Nor is the finished block sent again: the page records what streamed under the stream's `key`
(assets/streamed_text.jsx), and a finished block whose text is exactly that carries the key
instead of its text (`finish`). Its slots stay as they are until the next block starts, so the
page's record is whole. A 10,000-token answer thus costs about its own size on the socket,
instead of twice it (or the square of it).

The state is a direct child of the root state so the name in every delta stays short.
"""

from __future__ import annotations

import uuid
from typing import Any

import reflex as rx

# One slot per UI update (~50 ms): the new row holds ~19 s of streaming before its text is
# folded, once, into a slot of the old row (each of which holds a whole new row).
NEW_SLOTS = 384
OLD_SLOTS = 64
_ROW_NEW, _ROW_OLD = "n", "o"
_SIZE = {_ROW_NEW: NEW_SLOTS, _ROW_OLD: OLD_SLOTS}


def _slot_fields() -> dict[str, Any]:
    names = [f"{row}{i}" for row in (_ROW_OLD, _ROW_NEW) for i in range(_SIZE[row])]
    annotations: dict[str, Any] = dict.fromkeys(names, str)
    annotations.update(rest=str, active=bool, key=str, _new=int, _old=int)
    return {
        "__annotations__": annotations,
        **dict.fromkeys(names, ""),
        "rest": "",
        "active": False,
        "key": "",  # the page records the streamed text under it
        "_new": 0,
        "_old": 0,
    }


def _slot(state: Any, row: str, index: int) -> str:
    return str(getattr(state, f"{row}{index}"))


def append(state: Any, text: str) -> None:
    """Add a batch of streamed text: one new slot, folding full rows first. The first batch
    of a block empties what the last block left and names the new stream."""
    if not text:
        return
    if not state.active:
        _empty(state)
        state.key, state.active = uuid.uuid4().hex, True
    if state._new == NEW_SLOTS:
        if state._old == OLD_SLOTS:
            state.rest += "".join(_slot(state, _ROW_OLD, i) for i in range(OLD_SLOTS))
            _clear_row(state, _ROW_OLD)
            state._old = 0
        folded = "".join(_slot(state, _ROW_NEW, i) for i in range(NEW_SLOTS))
        setattr(state, f"{_ROW_OLD}{state._old}", folded)
        state._old += 1
        _clear_row(state, _ROW_NEW)
        state._new = 0
    setattr(state, f"{_ROW_NEW}{state._new}", text)
    state._new += 1


def finish(state: Any, block_text: str) -> str:
    """The streamed block is finished as `block_text`: its key when the page holds exactly
    that text (the block need not carry it), else "" (the block carries its text)."""
    if state.active and text(state) == block_text:
        state.active = False  # the slots stay: the page's record is made from them
        return str(state.key)
    clear(state)
    return ""


def abandon(state: Any) -> None:
    """The turn stopped: a block still streaming is dropped (a finished one stays kept)."""
    if state.active:
        clear(state)


def clear(state: Any) -> None:
    """Another session shows (or none): nothing streamed is kept."""
    _empty(state)
    state.active = False
    if state.key:
        state.key = ""


def _empty(state: Any) -> None:
    """Empty only the slots that hold something."""
    for row, used in ((_ROW_NEW, state._new), (_ROW_OLD, state._old)):
        for i in range(used):
            setattr(state, f"{row}{i}", "")
    state._new = state._old = 0
    if state.rest:
        state.rest = ""


def text(state: Any) -> str:
    old = "".join(_slot(state, _ROW_OLD, i) for i in range(state._old))
    new = "".join(_slot(state, _ROW_NEW, i) for i in range(state._new))
    return state.rest + old + new


def _clear_row(state: Any, row: str) -> None:
    for i in range(_SIZE[row]):
        setattr(state, f"{row}{i}", "")


StreamState: Any = type("StreamState", (rx.State,), {"__module__": __name__, **_slot_fields()})


def slot_vars() -> list[Any]:
    """The state's text vars, oldest first (their concatenation is the streamed text)."""
    return [StreamState.rest] + [
        getattr(StreamState, f"{row}{i}") for row in (_ROW_OLD, _ROW_NEW) for i in range(_SIZE[row])
    ]
