"""The conversation's finished blocks, laid out so an update re-sends one turn, not all.

`older` holds history and turns folded away; each live turn gets its own slot var (and a turn
whose slot already holds a lot of text continues in a fresh one). An event changes only the
slot it lands in, so a long session does not re-send its whole conversation, nor a long answer,
on every tool call. When the slots run out they are folded into `older` (sent once).

Likewise each page of earlier history ("Load earlier") goes into a slot of its own above
`older`, so loading one more page sends that page only, not again all those shown before it.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from app.agent.history import INTERRUPTED
from app.ui import blocks as view
from app.ui.blocks import Block

TURN_SLOTS = 32
PAGE_SLOTS = 16  # earlier pages, each in its own slot (e0 is the newest of them)
SLOT_CHARS = 4096  # a slot holding this much text is not re-sent for the next block


def _fields() -> dict[str, Any]:
    names = [f"t{i}" for i in range(TURN_SLOTS)] + [f"e{i}" for i in range(PAGE_SLOTS)]
    annotations: dict[str, Any] = dict.fromkeys(names, list[dict[str, str]])
    annotations.update(older=list[dict[str, str]], _used=int, _pages=int)
    return {
        "__annotations__": annotations,
        **{n: [] for n in names},
        "older": [],
        "_used": 0,
        "_pages": 0,
    }


TurnsState: Any = type("TurnsState", (rx.State,), {"__module__": __name__, **_fields()})


def _get(state: Any, index: int) -> list[Block]:
    return list(getattr(state, f"t{index}"))


def show(state: Any, blocks: list[Block]) -> None:
    """Start over with `blocks` (a freshly opened session)."""
    for index in range(state._used):
        setattr(state, f"t{index}", [])
    for index in range(state._pages):
        setattr(state, f"e{index}", [])
    state._used = state._pages = 0
    state.older = blocks


def prepend(state: Any, blocks: list[Block]) -> None:
    """An older page of history, above what is shown, in a slot of its own (when the slots
    run out, they are folded into `older` first, which is then sent once more)."""
    if state._pages == PAGE_SLOTS:
        earlier = _earlier(state)
        for index in range(PAGE_SLOTS):
            setattr(state, f"e{index}", [])
        state._pages = 0
        state.older = earlier + list(state.older)
    setattr(state, f"e{state._pages}", blocks)
    state._pages += 1


def apply(state: Any, event: dict[str, Any], root: str) -> None:
    """Fold one block event in: a prompt opens a new turn slot, the rest change the last one."""
    current_full = state._used and _size(_get(state, state._used - 1)) >= SLOT_CHARS
    adds_block = event["type"] != "tool_result"
    if event["type"] == "user_message" or state._used == 0 or (adds_block and current_full):
        if state._used == TURN_SLOTS:
            folded = [block for index in range(TURN_SLOTS) for block in _get(state, index)]
            state.older = list(state.older) + folded
            show(state, list(state.older))
        state._used += 1
    if event["type"] == "tool_result" and not _owns(
        _get(state, state._used - 1), event["tool_use_id"]
    ):
        _apply_elsewhere(state, event, root)
        return
    current = _get(state, state._used - 1)
    view.apply(current, event, root)
    if event["type"] == "user_message":  # its uuid is known once the transcript has it
        current[-1] = {**current[-1], "key": f"seq{event.get('seq', '')}"}
    setattr(state, f"t{state._used - 1}", current)


def keyed(blocks: list[Block], messages: list[dict[str, Any]]) -> list[Block]:
    """History's prompts named by their uuid, the id fork and rewind take (`from_history`
    makes one user block per prompt message, in order)."""
    ids = iter(
        str(m.get("uuid") or "")
        for m in messages
        if m["type"] == "text" and m["role"] == "user" and not m["text"].startswith(INTERRUPTED)
    )
    return [{**b, "key": next(ids, "")} if b["kind"] == "user" else b for b in blocks]


def prompts_after(state: Any, key: str) -> int | None:
    """How many prompts are shown after the one keyed `key` (None: not shown): a live
    prompt's uuid is found by counting back from the transcript's newest."""
    blocks = [b for b in all_blocks(state) if b["kind"] == "user"]
    index = next((i for i, b in enumerate(blocks) if b.get("key") == key), None)
    return None if index is None else len(blocks) - 1 - index


def note(state: Any, text: str) -> None:
    """A notice of the app's own (files rewound) at the end of the conversation."""
    block = {"kind": "notice", "text": text, "parent": ""}
    if state._used == 0:
        state.older = [*state.older, block]
        return
    setattr(state, f"t{state._used - 1}", [*_get(state, state._used - 1), block])


def all_blocks(state: Any) -> list[Block]:
    turns = [b for index in range(state._used) for b in _get(state, index)]
    return _earlier(state) + list(state.older) + turns


def _earlier(state: Any) -> list[Block]:
    """The earlier pages' blocks, oldest first."""
    return [b for index in reversed(range(state._pages)) for b in getattr(state, f"e{index}")]


def _size(blocks: list[Block]) -> int:
    return sum(len(block.get("text", "")) + len(block.get("result", "")) for block in blocks)


def _owns(blocks: list[Block], tool_use_id: str) -> bool:
    return any(block.get("id") == tool_use_id for block in blocks)


def _apply_elsewhere(state: Any, event: dict[str, Any], root: str) -> None:
    """A result for a call in an earlier turn (a background task finishing late)."""
    for index in range(state._used - 2, -1, -1):
        blocks = _get(state, index)
        if _owns(blocks, event["tool_use_id"]):
            view.apply(blocks, event, root)
            setattr(state, f"t{index}", blocks)
            return
    older = list(state.older)
    view.apply(older, event, root)
    state.older = older


def turns_view(render: Any) -> rx.Component:
    """Every block, oldest first: the earlier pages, `older`, then each turn slot."""
    return rx.fragment(
        *[rx.foreach(getattr(TurnsState, f"e{i}"), render) for i in reversed(range(PAGE_SLOTS))],
        rx.foreach(TurnsState.older, render),
        *[rx.foreach(getattr(TurnsState, f"t{i}"), render) for i in range(TURN_SLOTS)],
    )
