"""The read path's own checks give the verdicts of the general ones they stand in for.

decode_row checks a line's hash with hash_holds (one step, on the hot loop)
rather than envelope.stored_hash, and compares the row's columns with the
event's fields directly: a changed byte or column is refused exactly where the
general checks refuse it, and a good row reads back as full validation reads it.
"""

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.eventlog import GENESIS_HASH, CorruptLogError, from_json_line
from simulator.eventlog.envelope import hash_holds, seal, stored_hash
from simulator.eventlog.stored import ReadRow, decode_row

from .helpers import proposal
from .test_envelope import new_events

GOLDEN = Path(__file__).parents[1] / "golden"
READ_SELECT = (
    "SELECT position, id, subject, caseversion, type, hash, CAST(body AS BLOB) FROM events"
    " ORDER BY position"
)


def _verdict(body: bytes) -> bool:
    found = stored_hash(body)
    return found is not None and found[0] == found[1]


def _line(subject: str | None = "case-1") -> str:
    _, body = seal(proposal("e1", subject=subject), 1, 0 if subject is None else 1, GENESIS_HASH)
    return body


def _row(body: str | bytes) -> ReadRow:
    e = from_json_line(body)
    return (e.position, e.id, e.subject, e.caseversion, e.type, e.hash, body)


@given(new_events())
def test_a_sealed_line_holds_its_hash_as_stored_hash_says(new: Any) -> None:
    """Every line the store writes passes hash_holds, as it passes stored_hash."""
    _, body = seal(new, 3, 0 if new.subject is None else 2, "ab" * 32)

    assert hash_holds(body.encode()) is True
    assert _verdict(body.encode()) is True


@given(st.data())
def test_a_changed_byte_gets_the_verdict_of_stored_hash(data: st.DataObject) -> None:
    """Any one byte replaced, removed or added anywhere in a line: the two checks agree."""
    raw = bytearray(_line().encode())
    at = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    how = data.draw(st.sampled_from(["replace", "remove", "insert"]))
    byte = data.draw(st.integers(min_value=0, max_value=255))
    if how == "replace":
        raw[at] = byte
    elif how == "remove":
        del raw[at]
    else:
        raw.insert(at, byte)

    assert hash_holds(bytes(raw)) == _verdict(bytes(raw))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'"hash":"' + b"0" * 64 + b'",',
        b',"hash":"' + b"0" * 64 + b'",',
        b'{"a":1,"hash":"' + b"0" * 63 + b'",',
        b'{"a":1,"hash":"' + b"0" * 64 + b'"}',
    ],
)
def test_a_line_without_a_hash_member_where_one_belongs_fails_both_checks(body: bytes) -> None:
    """No top-level hash member, or one of the wrong length or place: refused by both."""
    assert hash_holds(body) is False
    assert _verdict(body) is False


@pytest.mark.parametrize("subject", ["case-1", None])
@pytest.mark.parametrize("as_text", [False, True])
def test_a_good_row_reads_back_as_full_validation_reads_it(
    subject: str | None, as_text: bool
) -> None:
    """A row as stored (text or bytes) decodes to the event full validation gives."""
    body = _line(subject)
    stored: str | bytes = body if as_text else body.encode()

    event = decode_row("log", _row(stored), None)

    assert event == from_json_line(body)
    assert list(event.__dict__) == list(from_json_line(body).__dict__)
    assert event.model_fields_set == from_json_line(body).model_fields_set


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (0, 2),
        (1, "e2"),
        (2, "case-2"),
        (2, None),
        (3, 2),
        (4, "other.type"),
        (5, "f" * 64),
    ],
)
def test_a_column_that_disagrees_with_its_line_is_named(
    column: int, value: str | int | None
) -> None:
    """A changed column is refused, naming it, though the line itself is intact."""
    row: list[str | int | bytes | None] = list(_row(_line().encode()))
    row[column] = value
    name = ["position", "id", "subject", "caseversion", "type", "hash"][column]

    with pytest.raises(CorruptLogError, match=f"the row's {name} disagree") as caught:
        decode_row("log", tuple(row), None)  # type: ignore[arg-type]
    assert caught.value.position == row[0]


def test_a_changed_line_is_refused_before_it_is_decoded() -> None:
    """A line whose bytes no longer match its hash is refused as such, whatever it now says."""
    body = _line().replace('"note":"event e1"', '"note":"event e2"')
    assert body != _line()

    with pytest.raises(CorruptLogError, match="does not match its hash"):
        decode_row("log", _row(body.encode()), None)


def _golden_rows() -> list[tuple[str, ReadRow]]:
    rows: list[tuple[str, ReadRow]] = []
    for log in sorted(GOLDEN.glob("*.db")):
        with sqlite3.connect(log) as db:
            rows.extend((log.name, row) for row in db.execute(READ_SELECT))
    for lines in sorted(GOLDEN.glob("*.jsonl")):
        for line in lines.read_text(encoding="utf-8").splitlines():
            rows.append((lines.name, _row(line.encode())))
    return rows


def test_every_golden_row_reads_as_the_general_checks_read_it() -> None:
    """Each row of the golden logs: its hash holds by both checks, and it decodes to the
    event full validation gives, its fields in the same order."""
    rows = _golden_rows()
    assert {name for name, _ in rows} >= {"v1-drill.jsonl", "v2-example.jsonl", "v1-checkpoints.db"}
    for name, row in rows:
        body = row[6]
        assert isinstance(body, bytes)
        assert hash_holds(body) is True, name
        assert _verdict(body) is True, name
        event = decode_row(name, row, None)
        validated = from_json_line(body)
        assert event == validated, (name, row[0])
        assert list(event.__dict__) == list(validated.__dict__)
        assert event.model_fields_set == validated.model_fields_set
