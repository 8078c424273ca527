"""Messages of committed events stay under the wire limit: one chunking rule for both umpires."""

from simulator.messaging.routing import EVENTS_MESSAGE_BYTES, Chunker
from simulator.messaging.wire import MAX_PAYLOAD_BYTES


def cut(lines: list[str], **limits: int) -> list[list[str]]:
    chunker = Chunker(**limits)
    chunks = [full for line in lines if (full := chunker.add(line)) is not None]
    return [*chunks, chunker.rest()]


def test_chunks_keep_order_and_stay_under_the_byte_limit() -> None:
    lines = [f"{i:04d}" + "x" * 996 for i in range(40)]  # 1,000 bytes each
    chunks = cut(lines, limit=10_000)
    assert [line for chunk in chunks for line in chunk] == lines
    # Ten lines and their commas would be 10,009 bytes: nine fit.
    assert [len(c) for c in chunks] == [9, 9, 9, 9, 4]
    assert all(sum(len(x) + 1 for x in c) <= 10_000 for c in chunks)


def test_a_count_limit_cuts_too_and_a_line_over_the_limit_goes_alone() -> None:
    assert [len(c) for c in cut(["a"] * 7, count=3)] == [3, 3, 1]
    assert cut(["a", "b" * 50, "c"], limit=10) == [["a"], ["b" * 50], ["c"]]


def test_nothing_in_gives_one_empty_chunk() -> None:
    # A catch-up reply is sent even when empty: it tells the party the head.
    assert cut([]) == [[]]


def test_the_default_leaves_room_under_the_wire_limit() -> None:
    assert EVENTS_MESSAGE_BYTES * 2 <= MAX_PAYLOAD_BYTES
