"""The slot layouts behind streaming and the conversation keep every piece, in order, and
change as few vars as possible per update."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.ui import blocks as view
from app.ui.state import stream, turns
from app.ui.state.stream import NEW_SLOTS, OLD_SLOTS
from app.ui.state.turns import PAGE_SLOTS, TURN_SLOTS


class Recorder(SimpleNamespace):
    """A stand-in for a Reflex state that records which vars each update set."""

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name != "dirty":
            self.__dict__.setdefault("dirty", set()).add(name)
        super().__setattr__(name, value)


def stream_state() -> Recorder:
    fields = stream._slot_fields()
    state = Recorder()
    for name in fields["__annotations__"]:
        object.__setattr__(state, name, fields[name])
    return state


def test_streamed_text_survives_folds_in_order() -> None:
    state = stream_state()
    pieces = [f"p{i} " for i in range(NEW_SLOTS * (OLD_SLOTS + 2) + 7)]
    for piece in pieces:
        stream.append(state, piece)
    assert stream.text(state) == "".join(pieces)
    assert state.rest, "the old row itself was folded into rest"


def test_an_update_sets_one_slot_until_the_row_is_full() -> None:
    state = stream_state()
    stream.append(state, "first ")
    for i in range(1, NEW_SLOTS):
        state.dirty = set()
        stream.append(state, f"more{i} ")
        assert state.dirty == {f"n{i}"}
    stream.clear(state)
    assert stream.text(state) == "" and state.active is False


def test_a_finished_block_the_page_watched_is_not_sent_again() -> None:
    state = stream_state()
    for piece in ("Hello ", "there, ", "world."):
        stream.append(state, piece)
    first = state.key
    state.dirty = set()
    assert stream.finish(state, "Hello there, world.") == first
    assert state.dirty == {"active"}, "the block's text stays in its slots, unsent"
    stream.abandon(state)  # the turn ends: a finished block stays kept
    assert stream.text(state) == "Hello there, world." and state.key == first

    # The next block empties what the last one left, under a new key, in its first update.
    state.dirty = set()
    stream.append(state, "Next")
    assert state.key not in ("", first)
    assert stream.text(state) == "Next"
    assert state.dirty == {"n0", "n1", "n2", "key", "active"}


def test_a_block_the_page_did_not_watch_whole_carries_its_text() -> None:
    state = stream_state()
    stream.append(state, "the end of it")  # the page came in midway
    assert stream.finish(state, "the start and the end of it") == ""
    assert stream.text(state) == "" and state.key == "" and state.active is False
    blocks: list[dict[str, str]] = []
    view.apply(blocks, {"type": "text", "text": "said in full", "kept": ""})
    view.apply(blocks, {"type": "text", "text": "said before", "kept": "k1"})
    assert [b["text"] for b in blocks] == ["said in full", ""]
    assert blocks[1]["kept"] == "k1" and "kept" not in blocks[0]


def test_a_stopped_turn_drops_the_block_still_streaming() -> None:
    state = stream_state()
    stream.append(state, "half a thou")
    stream.abandon(state)
    assert stream.text(state) == "" and state.key == "" and state.active is False


def turns_state() -> Recorder:
    fields = turns._fields()
    state = Recorder()
    for name in fields["__annotations__"]:
        object.__setattr__(
            state, name, list(fields[name]) if isinstance(fields[name], list) else fields[name]
        )
    return state


def test_each_turn_has_its_slot_and_results_find_their_call() -> None:
    state = turns_state()
    turns.show(state, [{"kind": "user", "text": "old", "parent": ""}])
    for turn in range(TURN_SLOTS + 3):
        turns.apply(state, {"type": "user_message", "text": f"q{turn}"}, "")
        state.dirty = set()
        turns.apply(
            state,
            {"type": "tool_use", "id": f"t{turn}", "name": "Bash", "input": {"command": "ls"}},
            "",
        )
        turns.apply(
            state,
            {"type": "tool_result", "tool_use_id": f"t{turn}", "content": "ok", "is_error": False},
            "",
        )
        assert len(state.dirty) == 1, "one turn's slot changes, not the whole conversation"
    # A late result for a call several turns back still lands on its card.
    turns.apply(
        state,
        {"type": "tool_result", "tool_use_id": "t1", "content": "late", "is_error": False},
        "",
    )
    blocks = turns.all_blocks(state)
    assert [b["text"] for b in blocks if b["kind"] == "user"] == ["old"] + [
        f"q{t}" for t in range(TURN_SLOTS + 3)
    ]
    assert next(b for b in blocks if b.get("id") == "t1")["result"] == "late"


def test_each_earlier_page_sets_one_slot_and_order_survives_the_fold() -> None:
    """ "Load earlier" sends the page it loads, not again every page shown before it."""
    state = turns_state()
    turns.show(state, [{"kind": "user", "text": "latest", "parent": ""}])
    pages = PAGE_SLOTS + 3
    for page in range(pages):
        state.dirty = set()
        turns.prepend(state, [{"kind": "user", "text": f"page {page}", "parent": ""}])
        if page < PAGE_SLOTS:
            assert state.dirty == {f"e{page}"}, "one page's slot changes"
    texts = [b["text"] for b in turns.all_blocks(state)]
    assert texts == [f"page {p}" for p in reversed(range(pages))] + ["latest"]
    turns.show(state, [])
    assert turns.all_blocks(state) == []
