"""Planning an append: ids deduplicated, case versions checked and assigned, events sealed.

Every backend runs the same plan inside its write transaction, so idempotency,
optimistic concurrency and the hash chain behave identically on SQLite and
PostgreSQL. The plan is pure: the backend supplies what it found in the
database (head, last hash, rows with the batch's ids, versions of its cases).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.eventlog.envelope import NewEvent, canonical_text, seal
from simulator.eventlog.errors import DuplicateIdMismatch, VersionConflict
from simulator.eventlog.store import Appended

# What identifies a message. time and wallclock say when it was recorded, so a
# retry may differ there and still be the same event; expected_version is a
# precondition of the append, not content.
CONTENT_FIELDS = (
    "source",
    "type",
    "subject",
    "data",
    "exercise",
    "sender",
    "recipient",
    "correlationid",
    "causationid",
    "schemaversion",
)

_appended = tuple.__new__

Row = tuple[int, str, str | None, int, str, str, str]
"""(position, id, subject, caseversion, type, hash, body), the order of the INSERT."""


@dataclass(frozen=True, slots=True)
class Existing:
    """An event already stored under one of the batch's ids."""

    position: int
    caseversion: int
    hash: str
    body: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What to insert, what to answer, and the head after the batch."""

    rows: list[Row]
    results: list[Appended]
    head: int
    last_hash: str
    versions: dict[str, int]
    """The new version of every case the batch added to."""


def _differences(proposal: NewEvent, original: NewEvent | Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(original, NewEvent):
        values = [getattr(original, field) for field in CONTENT_FIELDS]
    else:
        values = [original.get(field) for field in CONTENT_FIELDS]
    return tuple(
        field
        for field, value in zip(CONTENT_FIELDS, values, strict=True)
        if canonical_text(getattr(proposal, field)) != canonical_text(value)
    )


def plan_batch(
    batch: Sequence[NewEvent],
    *,
    head: int,
    last_hash: str,
    existing: Mapping[str, Existing],
    versions: Mapping[str, int],
) -> Plan:
    """Plan the append of ``batch`` after ``head``.

    ``existing`` maps the batch's ids already in the log to their rows;
    ``versions`` maps each of the batch's cases to its current version
    (absent: no events yet). Raises VersionConflict or DuplicateIdMismatch,
    in which case nothing of the batch may be written.
    """
    rows: list[Row] = []
    results: list[Appended] = []
    # The first occurrence of each id in this batch: the proposal (or the
    # stored event) that later repeats must match, and its answer.
    first_seen: dict[str, tuple[NewEvent | Mapping[str, Any], Appended]] = {}
    changed: dict[str, int] = {}
    position = head
    prevhash = last_hash
    for proposal in batch:
        seen = first_seen.get(proposal.id)
        if seen is None and proposal.id in existing:
            stored = existing[proposal.id]
            seen = (
                json.loads(stored.body),
                Appended(proposal.id, stored.position, stored.caseversion, stored.hash, True),
            )
            first_seen[proposal.id] = seen
        if seen is not None:
            original, first = seen
            differences = _differences(proposal, original)
            if differences:
                raise DuplicateIdMismatch(proposal.id, first.position, differences)
            results.append(Appended(first.id, first.position, first.caseversion, first.hash, True))
            continue
        subject = proposal.subject
        if subject is None:
            caseversion = 0
        else:
            version = changed.get(subject)
            if version is None:
                version = versions.get(subject, 0)
            expected = proposal.expected_version
            if expected is not None and expected != version:
                raise VersionConflict(subject, expected, version, proposal.id)
            caseversion = changed[subject] = version + 1
        position += 1
        digest, body = seal(proposal, position, caseversion, prevhash)
        prevhash = digest
        rows.append((position, proposal.id, subject, caseversion, proposal.type, digest, body))
        # tuple.__new__ directly: Appended(...) goes through a Python-level
        # __new__, a tenth of the cost of planning an event.
        result = _appended(Appended, (proposal.id, position, caseversion, digest, False))
        first_seen[proposal.id] = (proposal, result)
        results.append(result)
    return Plan(rows, results, position, prevhash, changed)
