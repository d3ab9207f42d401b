"""The text block being streamed, kept so each UI update carries only the new text.

Reflex re-sends a changed var whole, so appending tokens to one string costs bytes quadratic
in the answer's length. Here every batch of tokens goes into a fresh slot var and is never sent
again; when the slots run out, they are folded into one slot of a second row (sent once more),
and that row, when full, into `rest`. A 10,000-token answer thus costs about its own size on the
socket (plus the finished block, sent once), instead of the square of it.

The state is a direct child of the root state so the name in every delta stays short.
"""

from __future__ import annotations

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
    annotations.update(rest=str, active=bool, _new=int, _old=int)
    return {
        "__annotations__": annotations,
        **dict.fromkeys(names, ""),
        "rest": "",
        "active": False,
        "_new": 0,
        "_old": 0,
    }


def _slot(state: Any, row: str, index: int) -> str:
    return str(getattr(state, f"{row}{index}"))


def append(state: Any, text: str) -> None:
    """Add a batch of streamed text: one new slot, folding full rows first."""
    if not text:
        return
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
    if not state.active:
        state.active = True


def clear(state: Any) -> None:
    """The block is finished (or abandoned): empty only the slots that hold something."""
    if not state.active:
        return
    for row, used in ((_ROW_NEW, state._new), (_ROW_OLD, state._old)):
        for i in range(used):
            setattr(state, f"{row}{i}", "")
    state._new = state._old = 0
    state.rest = ""
    state.active = False


def text(state: Any) -> str:
    old = "".join(_slot(state, _ROW_OLD, i) for i in range(state._old))
    new = "".join(_slot(state, _ROW_NEW, i) for i in range(state._new))
    return state.rest + old + new


def _clear_row(state: Any, row: str) -> None:
    for i in range(_SIZE[row]):
        setattr(state, f"{row}{i}", "")


StreamState: Any = type("StreamState", (rx.State,), {"__module__": __name__, **_slot_fields()})


def streaming_view(**props: Any) -> rx.Component:
    """The streamed text, oldest slot first, as plain text until the block is finished."""
    parts = [StreamState.rest] + [
        getattr(StreamState, f"{row}{i}") for row in (_ROW_OLD, _ROW_NEW) for i in range(_SIZE[row])
    ]
    return rx.cond(
        StreamState.active,
        rx.box(*[rx.el.span(part) for part in parts], white_space="pre-wrap", **props),
    )
