"""The load umpire decides each submission of a batch exactly as if it had come alone."""

from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from simulator.load.conversation import Conversation, load_party
from simulator.load.umpire import SeqHashes, SubmissionBatch, _plain_batch, batch_payload
from tests.load.deciding import AT, load_umpire, sequencer

PARTIES = ("p000", "p001")


def _items() -> list[dict[str, Any]]:
    """A valid request, a message that is no message, a spoofed party, a reused message id."""
    conversation = Conversation("g0-1", "accepted", load_party("p000"), load_party("p001"))
    request = conversation.message(0)
    return [
        {"kind": "submission", "party": "p000", "seq": 1, "message": request},
        {"kind": "submission", "party": "p000", "seq": 2, "message": {"type": "nonsense"}},
        {"kind": "submission", "party": "p001", "seq": 3, "message": request},
        {
            "kind": "submission",
            "party": "p000",
            "seq": 4,
            "message": {**request, "essence": "Another request under the same id."},
        },
    ]


def test_a_batch_is_decided_item_by_item_as_single_submissions_are(tmp_path: Path) -> None:
    """Events and rejections (ids, reasons, bytes and excerpts) equal those of items sent alone."""
    umpire = load_umpire(tmp_path, PARTIES)
    items = _items()
    umpire.intake.take("p000", batch_payload("p000", [orjson.dumps(i) for i in items]))
    umpire.stage_arrivals(AT)
    batched = umpire.sequencer.take().events

    alone = sequencer(PARTIES)
    for item in items:
        alone.submit(orjson.dumps(item), "p000", AT)
    single = alone.take().events

    assert [e.type for e in batched] == [
        "coop.msg.written_request",
        "coop.rejection",
        "coop.rejection",
        "coop.rejection",
    ]
    assert sorted(batched, key=lambda e: e.id) == sorted(single, key=lambda e: e.id)
    assert umpire.rejections == 3


def _batches() -> list[object]:
    """Batches that are plainly valid, valid only after coercion, and invalid."""
    message = {"type": "offer", "x": [1, {"y": None}]}
    item = {"kind": "submission", "party": "p000", "seq": 1, "message": message}
    bare = {"party": "p001", "seq": 2**53, "message": {}}
    return [
        {"kind": "submissions", "party": "p000", "items": [item, bare]},
        {"party": "p000", "items": [item]},
        {"kind": "submissions", "party": "p000", "items": []},
        {"kind": "submission", "party": "p000", "items": [item]},
        {"kind": "submissions", "party": "P000", "items": [item]},
        {"kind": "submissions", "party": "p000", "items": [item], "extra": 1},
        {"kind": "submissions", "party": "p000", "items": [{**item, "seq": 0}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "seq": 2**53 + 1}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "seq": True}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "seq": "3"}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "party": "Bad"}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "kind": "plan"}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "message": []}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "more": 1}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "due": "2026-03-02T09:00Z"}]},
        {"kind": "submissions", "party": "p000", "items": [{**item, "due": "yesterday"}]},
        {"kind": "submissions", "party": "p000", "items": [{"seq": 1, "message": {}}]},
        {"kind": "submissions", "party": "p000", "items": ["text"]},
        {"kind": "submissions", "party": "p000", "items": {"0": item}},
    ]


def test_a_plain_batch_is_the_model_validation_makes_and_others_go_to_validation() -> None:
    """The intake's fast path builds what validation builds, and takes nothing it would refuse."""
    taken = 0
    for data in _batches():
        assert isinstance(data, dict)
        fast = _plain_batch(data)
        try:
            validated = SubmissionBatch.model_validate(data)
        except ValidationError:
            assert fast is None, data
            continue
        if fast is None:
            continue
        taken += 1
        assert fast == validated
        assert fast.model_fields_set == validated.model_fields_set
        for mine, theirs in zip(fast.items, validated.items, strict=True):
            assert mine.model_fields_set == theirs.model_fields_set
        assert fast.model_dump_json() == validated.model_dump_json()
    assert taken == 2


def test_seq_hashes_answer_as_a_dict_would() -> None:
    """Dense seqs, far-off ones, negative ones and a hash of 0 all read back as written."""
    seen = SeqHashes()
    written = {1: 11, 2: -22, 5: 55, 10**12: 7, -3: 9, 7: 0, 8: 2**63 - 1}
    for seq, digest in written.items():
        seen[seq] = digest
    for seq, digest in written.items():
        assert seen.get(seq) == digest, seq
        assert seq in seen
    for absent in (0, 3, 4, 6, 9, 10**12 + 1, -1):
        assert seen.get(absent) is None, absent
        assert absent not in seen
