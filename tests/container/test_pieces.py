"""Socket messages in pieces (app/api/pieces.py): what a page sends in pieces comes back whole,
and what a hostile page sends in pieces cannot grow the container's memory or break it."""

from __future__ import annotations

import base64
import json

from app.api.pieces import MAX_MESSAGE_BYTES, MAX_PARTIAL, PIECE_BYTES, Joiner, split


def _send(joiner: Joiner, sid: str, message_id: str, text: str) -> object:
    pieces = split(text)
    results = [joiner.add(sid, [message_id, i, len(pieces), p]) for i, p in enumerate(pieces)]
    assert all(r is None for r in results[:-1])
    return results[-1]


def test_a_message_in_pieces_comes_back_whole_even_out_of_order() -> None:
    message = {"name": "state.send", "payload": {"prompt": "ü€𝄞 " * 20_000}}
    text = json.dumps(message, ensure_ascii=False)
    pieces = split(text)
    assert len(pieces) > 3 and all(len(p) <= 4 * PIECE_BYTES // 3 + 4 for p in pieces)
    joiner = Joiner()
    order = list(reversed(range(len(pieces))))
    results = [joiner.add("sid", ["m1", i, len(pieces), pieces[i]]) for i in order]
    assert results[-1] == message and all(r is None for r in results[:-1])


def test_bad_pieces_are_dropped_and_nothing_is_delivered() -> None:
    joiner = Joiner()
    for bad in (
        "not a list",
        ["m", 0, 1],
        ["m", "0", 1, "e30="],
        ["m", 1, 1, "e30="],  # index past the count
        ["m", 0, 10**9, "e30="],  # more pieces than any allowed message
        ["x" * 65, 0, 1, "e30="],
        ["m", 0, 1, "not base64!"],
        ["m", 0, 1, base64.b64encode(b"\xff{").decode()],  # not UTF-8
        ["m", 0, 1, base64.b64encode(b"{not json").decode()],
    ):
        assert joiner.add("sid", bad) is None
    assert _send(joiner, "sid", "ok", "{}") == {}


def test_an_oversized_message_is_dropped_and_memory_stays_bounded() -> None:
    joiner = Joiner()
    chunk = base64.b64encode(b"x" * PIECE_BYTES).decode()
    count = MAX_MESSAGE_BYTES // PIECE_BYTES + 1
    delivered = [joiner.add("sid", ["big", i, count, chunk]) for i in range(count)]
    assert delivered == [None] * count
    for n in range(MAX_PARTIAL * 3):  # many unfinished messages: only the newest are kept
        joiner.add("sid", [f"m{n}", 0, 2, chunk])
    assert len(joiner._partial) <= MAX_PARTIAL
    assert _send(joiner, "other", "fine", '{"a": 1}') == {"a": 1}
