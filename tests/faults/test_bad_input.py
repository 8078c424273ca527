"""RELIABILITY items 31-34: bad input is refused with a reason, recorded, and the run goes on.

The bulk is hypothesis fuzzing in process (bytes, JSON trees, submissions
with one field broken), over the same code the umpire runs: decoding and
the sequencer's decision, down to the bytes the log would store. A smaller
batch of generated payloads then goes over a real broker to a real umpire
during a whole exercise, and every one must come back as a rejection event.
"""

import contextlib
import json
import random
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.eventlog.envelope import seal
from simulator.messaging.topics import Topics
from simulator.messaging.wire import MAX_PAYLOAD_BYTES, WireError, decode_from_party
from simulator.records import REJECTION
from simulator.scenario import InvalidScenarioError, parse_scenario
from simulator.umpire.sequencer import Sequencer
from tests.protocol.builders import AGREEMENT, T0, build
from tests.scenario.samples import with_line

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- item 31: party ids -------------------------------------------------------------

BAD_PARTY_IDS = {
    "plus": "a+b",
    "hash": "a#b",
    "slash": "a/b",
    "nul": "a\0b",
    "dollar": "$sys",
    "empty": "",
    "too long": "x" * 65,
    "not NFC": "cafe\u0301",
    "cyrillic a": "\u0430lpha",
    "fullwidth": "\uff41lpha",
    "capital": "Alpha",
    "space": "a b",
}


@pytest.mark.parametrize("party", BAD_PARTY_IDS.values(), ids=BAD_PARTY_IDS.keys())
def test_item31_unsafe_party_ids_are_refused_when_the_scenario_loads(party: str) -> None:
    """Ids with topic wildcards, NUL, `$`, confusables, non-NFC forms, empty or too long:
    refused at load, naming the line and the field, before anything starts."""
    text = with_line(15, f"  - id: {json.dumps(party)}")
    with pytest.raises(InvalidScenarioError) as caught:
        parse_scenario(text, "scenarios/bad.yaml")
    [problem] = [p for p in caught.value.problems if p.path == "parties[1].id"]
    assert problem.line == 15
    assert "must match" in problem.message


# -- item 32: topics ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail", ["a+b", "+", "#", "a\0b", "$sys", "a/b", "", "Alpha", "\u0430lpha", "x" * 65]
)
def test_item32_topics_that_name_no_party_are_not_routed(tail: str) -> None:
    """A topic whose party part is a wildcard, NUL, `$`, nested or a confusable names no
    party: the umpire ignores (and logs) it instead of taking it as anyone's submission."""
    topics = Topics("drill")
    assert topics.party_of(f"{topics.base}/submit/{tail}", "submit") is None
    assert topics.party_of(f"{topics.base}/report/{tail}", "report") is None
    assert topics.party_of(topics.submit("alpha"), "submit") == "alpha"


# -- item 33: malformed payloads, in process ----------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=20)
)
trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
VALID = {
    kind: build(
        kind, case_id="case-1", message_id=f"alpha.{n}", sender="alpha", recipient="beta"
    ).model_dump(mode="json")
    for n, kind in enumerate(["written_request", "acknowledgement", "refusal", "results"], 1)
}


@st.composite
def broken_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one thing wrong: a field dropped, retyped or added."""
    message = dict(draw(st.sampled_from(list(VALID.values()))))
    how = draw(st.sampled_from(["drop", "retype", "extra", "keep"]))
    key = draw(st.sampled_from(sorted(message)))
    if how == "drop":
        del message[key]
    elif how == "retype":
        message[key] = draw(trees)
    elif how == "extra":
        message[draw(st.text(min_size=1, max_size=12))] = draw(trees)
    return message


submissions = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["submission", "round_done", "catch_up_request", "nonsense"])
        | trees,
        "party": st.sampled_from(["alpha", "beta", "a+b", "", "ALPHA"]) | trees,
        "seq": st.integers(min_value=-5, max_value=2**60) | trees,
        "message": broken_messages() | trees,
    },
    optional={"extra": trees, "round": trees, "seqs": trees},
)


def payloads_of(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def decide_and_check(payload: bytes) -> None:
    """What the umpire does with a payload: one decision, storable, with a reason if refused."""
    sequencer = Sequencer(AGREEMENT, "drill", wallclock=lambda: T0)
    with contextlib.suppress(WireError):
        decode_from_party(payload)  # only WireError may escape the decoder
    decision = sequencer.submit(payload, "alpha", T0)
    assert decision.event is not None, "a first submission cannot be a repeat"
    # The event must be storable: sealing computes its canonical bytes and hash.
    seal(decision.event, 1, 1 if decision.event.subject else 0, "0" * 64)
    if decision.event.type == REJECTION:
        assert decision.notice is not None
        assert decision.notice.reason
        assert decision.event.recipient == "alpha"
        # The log keeps text in NFC; the notice goes back as the sender wrote it.
        assert decision.event.data["reason"] == unicodedata.normalize("NFC", decision.notice.reason)
    else:
        assert decision.event.type.startswith("coop.msg.")
        assert decision.event.sender == "alpha"


payloads = st.one_of(
    st.binary(max_size=200),
    trees.map(payloads_of),
    submissions.map(payloads_of),
)
HOSTILE = [
    b"1e999", b"NaN", b"-Infinity", b"[" * 70, b"\x00", b'"$sys"', b"9" * 5000, b"\xff",
    b'"\\ud800"', b'{"kind":"submission"}', b",", b"}", b'"', b"-0", b"1" * 40,
]  # fmt: skip
VARIANTS = 80
EXAMPLES = 125


def mutated(payload: bytes, rnd: random.Random) -> bytes:
    """The payload cut, a byte flipped, or a hostile token spliced in, once to three times."""
    data = bytearray(payload)
    for _ in range(rnd.randint(1, 3)):
        at = rnd.randint(0, len(data))
        how = rnd.randrange(3)
        if how == 0:
            del data[at:]
        elif how == 1 and data:
            data[min(at, len(data) - 1)] ^= 1 << rnd.randrange(8)
        else:
            data[at:at] = rnd.choice(HOSTILE)
    return bytes(data)


def test_item33_fuzz_ten_thousand_payloads() -> None:
    """10,000 payloads: 125 generated (arbitrary bytes; any JSON value with NaN, infinities,
    huge numbers and nesting; submissions with wrong types, unknown kinds, extra fields or a
    broken message), each with 79 mutants; every one becomes one storable event, and every
    refusal carries its reason."""
    decided = 0

    # Mutants, because generating a JSON tree costs hypothesis ~100x deciding one payload;
    # the mutations draw from hypothesis's own random, so failures still shrink and replay.
    @settings(FUZZ, max_examples=EXAMPLES, database=None)
    @given(payloads, st.randoms(use_true_random=False))
    def check(payload: bytes, rnd: random.Random) -> None:
        nonlocal decided
        decide_and_check(payload)
        decided += 1
        for _ in range(VARIANTS - 1):
            decide_and_check(mutated(payload, rnd))
            decided += 1

    check()
    assert decided >= EXAMPLES * VARIANTS >= 10_000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"kind":"submission","seq":' + b"1" * 5000 + b"}", "not JSON we accept"),
        (b'{"kind":"submission","party":"alpha","seq":1,"message":{"x":1e999}}', "out of range"),
        (b'{"a":-1e400}', "out of range"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "nested deeper"),
        (b'{"kind":"submission","party":"alpha","seq":1.5,"message":{}}', "seq"),
        (b'{"kind":"submission","party":"alpha","seq":1,"message":{},"x":1}', "x: Extra"),
        (b'{"kind":"teleport"}', "teleport"),
    ],
    ids=["5000-digit int", "1e999", "-1e400", "depth 65", "float seq", "extra field", "unknown"],
)
def test_item33_hostile_numbers_and_shapes_get_a_reason(payload: bytes, reason: str) -> None:
    """Numbers Python refuses to parse (over 4300 digits) or that overflow to infinity were
    raised as plain ValueErrors past the umpire's handler; now they are refusals too."""
    decide_and_check(payload)
    decision = Sequencer(AGREEMENT, "drill", wallclock=lambda: T0).submit(payload, "alpha", T0)
    assert decision.notice is not None
    assert reason in decision.notice.reason, decision.notice.reason


# -- item 34: size ----------------------------------------------------------------------


def test_item34_our_limit_is_checked_before_decoding() -> None:
    """A payload one byte over 256 KiB is refused by size, unread; one at the limit is read."""
    pad = MAX_PAYLOAD_BYTES - len(b'{"kind":"nonsense","pad":""}')
    at_limit = b'{"kind":"nonsense","pad":"' + b"x" * pad + b'"}'
    assert len(at_limit) == MAX_PAYLOAD_BYTES
    sequencer = Sequencer(AGREEMENT, "drill", wallclock=lambda: T0)
    over = sequencer.submit(at_limit + b" ", "alpha", T0).notice
    at = sequencer.submit(at_limit, "alpha", T0).notice
    assert over is not None
    assert "exceeds the limit of 262144 bytes" in over.reason
    assert at is not None
    assert "exceeds" not in at.reason


def test_item33_two_different_bad_payloads_under_one_seq_are_two_rejections() -> None:
    """Spoofs sharing a sequence number get distinct rejection ids (the log refused the second
    as an id conflict, which stopped the run); the same payload again keeps its id."""
    sequencer = Sequencer(AGREEMENT, "drill", wallclock=lambda: T0)

    def spoof(n: int) -> bytes:
        return payloads_of({"kind": "submission", "party": "beta", "seq": 7, "message": {"n": n}})

    first, second, again = (
        sequencer.submit(p, "alpha", T0) for p in (spoof(1), spoof(2), spoof(1))
    )
    assert first.event is not None
    assert second.event is not None
    assert again.event is not None
    assert first.event.id != second.event.id
    assert first.event.id == again.event.id
    assert first.event.id.startswith("rej-alpha-7-")
