"""The envelope: canonical bytes, hashing, and the CloudEvents JSON line."""

import hashlib
import json
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from simulator.eventlog import (
    EVENT_HASH_DOMAIN,
    GENESIS_HASH,
    Event,
    NewEvent,
    canonical_bytes,
    compute_hash,
    envelope,
    from_json_line,
    to_json_line,
)
from simulator.eventlog.envelope import (
    canonical_json,
    canonical_text,
    format_time,
    from_stored_line,
    seal,
    stored_hash,
)
from simulator.eventlog.stored import decode_stored

from .helpers import T0, proposal, sealed_slowly

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
# Keys are drawn in NFC: two keys that differ only in normalisation are one
# key to the log, and refused (tested separately).
json_keys = st.text(max_size=8).map(lambda text: unicodedata.normalize("NFC", text))
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(json_keys, json_values, max_size=6)
names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
optional_names = st.none() | names
# hypothesis takes naive bounds and attaches the zones itself.
times = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-7))]),
)


@st.composite
def new_events(draw: st.DrawFn) -> NewEvent:
    return NewEvent(
        id=draw(st.from_regex(r"[A-Za-z0-9._:-]{1,40}", fullmatch=True)),
        source=draw(names),
        type=draw(names),
        subject=draw(optional_names),
        time=draw(times),
        data=draw(json_objects),
        exercise=draw(names),
        sender=draw(optional_names),
        recipient=draw(optional_names),
        correlationid=draw(optional_names),
        causationid=draw(optional_names),
        wallclock=draw(times),
        schemaversion=draw(st.integers(min_value=1, max_value=5)),
    )


def stored(proposal: NewEvent, position: int = 1, prevhash: str = GENESIS_HASH) -> Event:
    caseversion = 0 if proposal.subject is None else 1
    _, body = seal(proposal, position, caseversion, prevhash)
    return from_json_line(body)


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


@given(json_objects)
def test_canonical_bytes_survive_a_json_round_trip(value: dict[str, Any]) -> None:
    """Parsing canonical bytes and encoding again gives the very same bytes."""
    encoded = canonical_bytes(value)

    assert canonical_bytes(json.loads(encoded)) == encoded


@given(json_objects)
def test_canonical_bytes_ignore_key_insertion_order(value: dict[str, Any]) -> None:
    """The same object built with its keys inserted in another order gives the same bytes."""
    assert canonical_bytes(reversed_keys(value)) == canonical_bytes(value)


@given(st.text())
def test_nfc_and_nfd_spellings_give_the_same_bytes(text: str) -> None:
    """A string and its decomposed (NFD) spelling, as key or value, encode identically."""
    composed = unicodedata.normalize("NFC", text)
    decomposed = unicodedata.normalize("NFD", text)

    assert canonical_bytes({decomposed: [decomposed]}) == canonical_bytes({composed: [composed]})


def test_canonical_bytes_are_compact_sorted_utf8_with_integers_kept() -> None:
    """Keys sorted, no whitespace, UTF-8 rather than escapes, integers without a decimal point."""
    assert canonical_bytes({"b": 1, "a": [True, None, 2.5], "ä": "é"}) == (
        '{"a":[true,null,2.5],"b":1,"ä":"é"}'.encode()
    )


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused(number: float) -> None:
    """NaN and Infinity are not JSON, so they have no canonical bytes."""
    with pytest.raises(ValueError, match="not a JSON number"):
        canonical_bytes({"x": number})


def test_non_json_values_are_refused() -> None:
    """Non-string keys, keys equal once normalised and non-JSON types are refused."""
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_bytes({1: "one"})
    with pytest.raises(ValueError, match="collide"):
        canonical_bytes({"caf\u00e9": 1, "cafe\u0301": 2})
    with pytest.raises(ValueError, match="not a JSON value"):
        canonical_bytes({"when": datetime(2026, 1, 1, tzinfo=UTC)})


@given(new_events())
def test_sealed_text_is_the_canonical_text_of_the_envelope(event: NewEvent) -> None:
    """The fast sealing path produces exactly canonical_text() of the envelope dict."""
    digest, body = seal(event, 7, 0 if event.subject is None else 3, "ab" * 32)

    envelope = json.loads(body)
    without_hash = {key: value for key, value in envelope.items() if key != "hash"}
    assert body == canonical_text(envelope)
    assert digest == hashlib.sha256(EVENT_HASH_DOMAIN + canonical_bytes(without_hash)).hexdigest()
    assert envelope["hash"] == digest


@given(new_events())
def test_an_event_round_trips_through_its_json_line(proposal: NewEvent) -> None:
    """from_json_line(to_json_line(e)) equals e and serialises to the very same line."""
    event = stored(proposal)

    line = to_json_line(event)
    again = from_json_line(line)

    assert again == event
    assert to_json_line(again) == line
    assert compute_hash(again) == event.hash


def test_the_hash_covers_wallclock_and_prevhash() -> None:
    """Changing only the wall-clock time, or only the previous hash, changes the hash."""
    base = stored(proposal("e1"))
    later = stored(proposal("e1", wallclock=T0 + timedelta(microseconds=1)))
    relinked = stored(proposal("e1"), prevhash="1" * 64)

    assert len({base.hash, later.hash, relinked.hash}) == 3


def test_times_are_rfc3339_utc_with_z_and_microseconds() -> None:
    """time and wallclock are written in UTC with six fractional digits and a Z."""
    berlin = timezone(timedelta(hours=1))
    event = stored(
        proposal("e1", wallclock=datetime(2026, 11, 22, 10, 0, 0, 5, tzinfo=berlin), second=1)
    )

    envelope = json.loads(to_json_line(event))

    assert envelope["time"] == "2026-11-22T09:00:01.000000Z"
    assert envelope["wallclock"] == "2026-11-22T09:00:00.000005Z"
    assert envelope["specversion"] == "1.0"
    assert envelope["datacontenttype"] == "application/json"


def test_unset_optional_attributes_are_left_out_of_the_line() -> None:
    """A CloudEvent without a subject has no subject attribute at all (not null)."""
    event = stored(proposal("e1", subject=None))

    envelope = json.loads(to_json_line(event))

    assert "subject" not in envelope
    assert envelope["caseversion"] == 0
    assert "causationid" not in envelope


@pytest.mark.parametrize("bad_id", ["", "has space", "slash/inside", "x" * 129, "ümlaut"])
def test_event_ids_are_short_and_plain(bad_id: str) -> None:
    """An id is 1 to 128 characters of letters, digits and . _ : -."""
    with pytest.raises(ValidationError):
        proposal(bad_id)


def test_naive_times_are_refused() -> None:
    """A time without a zone cannot be put in the log."""
    with pytest.raises(ValidationError):
        NewEvent(
            id="e1",
            source="umpire",
            type="coop.x",
            time=datetime(2026, 1, 1),  # noqa: DTZ001 - the naive time is the point
            exercise="x",
            wallclock=T0,
        )


def test_expected_version_needs_a_subject() -> None:
    """Only a case has a version, so expected_version without a subject is refused."""
    with pytest.raises(ValidationError, match="expected_version needs a subject"):
        proposal("e1", subject=None, expected_version=0)


def test_a_stored_event_without_a_subject_has_case_version_zero() -> None:
    """An envelope claiming a case version without a case does not parse."""
    line = to_json_line(stored(proposal("e1", subject=None))).replace(
        '"caseversion":0', '"caseversion":2'
    )

    with pytest.raises(ValidationError, match="caseversion 0"):
        from_json_line(line)


def test_unknown_attributes_and_coerced_numbers_are_refused() -> None:
    """A line with an extra attribute or a position written as a string is not an event."""
    line = to_json_line(stored(proposal("e1")))

    with pytest.raises(ValidationError):
        from_json_line(line.replace('{"caseversion"', '{"extra":1,"caseversion"'))
    with pytest.raises(ValidationError):
        from_json_line(line.replace('"position":1', '"position":"1"'))


def test_data_is_normalised_when_the_proposal_is_built() -> None:
    """Data in NFD, with tuples, comes out of the model as NFC with lists."""
    event = proposal("e1", data={"cafe\u0301": ("x\u0301",)})

    assert event.data == {"café": ["x\u0301"]}
    assert event == proposal("e1", data={"café": ["x\u0301"]})


# -- the fast paths: building a proposal, encoding, reading a stored line ----


class Text(str):
    """A str subclass, as an enum member or another library's string type may be."""


def nfd(value: Any) -> Any:
    """The same JSON value with every string and key decomposed (NFD)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFD", value)
    if isinstance(value, dict):
        return {nfd(key): nfd(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nfd(item) for item in value]
    return value


odd_names = (
    names
    | names.map(lambda text: unicodedata.normalize("NFD", text))
    | names.map(Text)
    | st.sampled_from(["", "e\u0301", "\u212a"])
    | st.integers()
)
odd_ids = (
    st.from_regex(r"[A-Za-z0-9._:-]{1,40}", fullmatch=True)
    | st.sampled_from(["", "x\n", "a b", "ü", "x" * 129])
    | st.integers()
)
odd_times = (
    times
    | times.map(lambda moment: moment.replace(tzinfo=None))
    | times.map(lambda moment: moment.isoformat())
)
odd_data: st.SearchStrategy[Any] = (
    json_objects
    | json_objects.map(nfd)
    | st.dictionaries(json_keys, st.tuples(json_scalars, json_scalars), max_size=3)
    | st.dictionaries(json_keys, st.floats(), max_size=3)
    | st.sampled_from(
        [
            None,
            [],
            {1: "one"},
            {Text("k"): "v"},
            {"k": Text("v")},
            {"cafe\u0301": 1, "caf\u00e9": 2},
            {"when": T0},
            {"big": 2**70},
        ]
    )
)
odd_versions = st.integers(min_value=-1, max_value=4) | st.booleans() | st.none() | st.just("2")


PLAIN: dict[str, st.SearchStrategy[Any]] = {
    "id": st.from_regex(r"[A-Za-z0-9._:-]{1,40}", fullmatch=True),
    "source": names,
    "type": names,
    "subject": optional_names,
    "time": times,
    "data": json_objects,
    "exercise": names,
    "sender": optional_names,
    "recipient": optional_names,
    "correlationid": optional_names,
    "causationid": optional_names,
    "wallclock": times,
    "schemaversion": st.integers(min_value=1, max_value=5),
    "expected_version": st.none() | st.integers(min_value=0, max_value=5),
}
ODD: dict[str, st.SearchStrategy[Any]] = {
    "id": odd_ids,
    "source": odd_names,
    "type": odd_names,
    "subject": odd_names,
    "time": odd_times,
    "data": odd_data,
    "exercise": odd_names,
    "sender": odd_names,
    "recipient": odd_names,
    "correlationid": odd_names,
    "causationid": odd_names,
    "wallclock": odd_times,
    "schemaversion": odd_versions,
    "expected_version": odd_versions,
}


@st.composite
def proposal_keywords(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for NewEvent: plain ones with a few fields made odd, left out or extra."""
    odd = draw(st.sets(st.sampled_from(sorted(ODD)), max_size=2))
    left_out = draw(st.sets(st.sampled_from(sorted(PLAIN)), max_size=2))
    drawn = {
        key: draw(ODD[key] if key in odd else PLAIN[key]) for key in PLAIN if key not in left_out
    }
    if drawn.get("subject") is None and "expected_version" not in odd:
        # Only a case has a version: keep the plain draws valid.
        drawn.pop("expected_version", None)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        drawn["unexpected"] = 1
    return drawn


def built(make: Any) -> tuple[NewEvent | None, list[tuple[Any, ...]] | None]:
    try:
        return make(), None
    except ValidationError as exc:
        return None, [(error["type"], error["loc"], error["msg"]) for error in exc.errors()]


@given(proposal_keywords())
def test_a_proposal_is_the_same_whichever_way_it_is_built(keywords: dict[str, Any]) -> None:
    """NewEvent(...) and full validation (model_validate) give equal events, or the same errors."""
    fast, fast_errors = built(lambda: NewEvent(**keywords))
    full, full_errors = built(lambda: NewEvent.model_validate(keywords))

    assert fast_errors == full_errors
    if fast is not None and full is not None:
        assert fast == full
        assert fast.model_fields_set == full.model_fields_set
        assert list(fast.model_dump()) == list(full.model_dump())
        assert seal(fast, 3, 1, "ab" * 32) == seal(full, 3, 1, "ab" * 32)


floatless_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text()
    | st.text().map(lambda text: unicodedata.normalize("NFD", text)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@given(proposal_keywords(), st.dictionaries(json_keys, floatless_values, max_size=6))
def test_an_encoded_proposal_is_the_one_validation_builds(
    keywords: dict[str, Any], data: dict[str, Any]
) -> None:
    """NewEvent.encoded, given data of the kind it takes and its text, builds what validation does.

    Data not in NFC included: encoded() leaves it to validation, which normalises it.
    """
    keywords = {**keywords, "data": data}
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    fast, fast_errors = built(lambda: NewEvent.encoded(text, keywords))
    full, full_errors = built(lambda: NewEvent.model_validate(keywords))

    assert fast_errors == full_errors
    if fast is not None and full is not None:
        assert fast == full
        assert fast.model_fields_set == full.model_fields_set
        assert seal(fast, 3, 1, "ab" * 32) == seal(full, 3, 1, "ab" * 32)


def test_model_validate_is_full_validation_and_so_the_reference() -> None:
    """pydantic knows NewEvent's __init__ validates as its own, so model_validate skips it."""
    assert NewEvent.__pydantic_custom_init__ is False


def test_a_plain_proposal_skips_pydantic_validation() -> None:
    """A proposal of plain, canonical values (what writers pass) is built by the fast path."""
    fresh = NewEvent.__new__(NewEvent)
    keywords = {
        "id": "agency-1.1.0",
        "source": "party/agency-1",
        "type": "coop.msg.written_request",
        "subject": "case-1",
        "time": T0,
        "data": {"message": {"text": "Grüße", "parts": [1, True, None, 2.5]}, "violations": []},
        "exercise": "exercise-1",
        "sender": "agency-1",
        "recipient": "agency-4",
        "correlationid": "case-1",
        "wallclock": datetime(2026, 11, 22, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "schemaversion": 2,
        "expected_version": 0,
    }

    assert envelope._init_plain(fresh, keywords)
    validated = NewEvent.model_validate(keywords)
    assert fresh == validated
    assert seal(fresh, 1, 1, GENESIS_HASH) == seal(validated, 1, 1, GENESIS_HASH)


@given(json_values)
def test_canonical_text_is_the_text_json_writes(value: Any) -> None:
    """Whichever encoder writes it, the canonical text is json.dumps' sorted, compact UTF-8."""
    expected = json.dumps(
        canonical_json(value),
        ensure_ascii=False,
        allow_nan=False,
        sort_keys=True,
        separators=(",", ":"),
    )

    assert canonical_text(value) == expected


@pytest.mark.parametrize(
    "value",
    [1e-05, 1e16, 1e-7, 5e-324, -0.0, 1.7976931348623157e308, 2**64, -(2**63) - 1, 2**200],
)
def test_numbers_other_encoders_write_differently_keep_json_text(value: float) -> None:
    """Floats with exponents and integers past 64 bits are written as json writes them."""
    assert canonical_text({"n": value, "m": [value]}) == json.dumps(
        {"m": [value], "n": value}, separators=(",", ":")
    )


def test_every_code_point_is_escaped_as_json_escapes_it() -> None:
    """Every character but the surrogates (and a spread of them as keys) is written as json does."""
    # Compared after NFC, which changes some characters and merges some keys:
    # this is about the encoders, not about normalisation.
    everything = unicodedata.normalize(
        "NFC", "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    )
    # Every control character as a key, and a spread of the rest (all of them is slow).
    keys = {
        unicodedata.normalize("NFC", chr(c)): c
        for c in [*range(0x80), *range(0x80, 0x110000, 61)]
        if not 0xD800 <= c <= 0xDFFF
    }

    assert canonical_text([everything]) == json.dumps([everything], ensure_ascii=False)
    assert canonical_text(keys) == json.dumps(
        keys, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


@given(new_events())
def test_a_stored_line_reads_back_as_full_validation_reads_it(proposal: NewEvent) -> None:
    """from_stored_line (the read path) gives what from_json_line gives, down to field order."""
    _, body = seal(proposal, 4, 0 if proposal.subject is None else 2, "cd" * 32)

    trusted = from_stored_line(body.encode())
    validated = from_json_line(body)

    assert trusted == validated
    assert from_stored_line(body) == validated
    assert trusted.model_fields_set == validated.model_fields_set
    assert list(trusted.model_dump()) == list(validated.model_dump())
    assert to_json_line(trusted) == body
    assert compute_hash(trusted) == trusted.hash


@given(new_events())
def test_the_typed_decoder_reads_a_stored_line_as_full_validation_reads_it(
    proposal: NewEvent,
) -> None:
    """decode_stored (the store's read path) gives what from_json_line gives, in field order too."""
    _, body = seal(proposal, 4, 0 if proposal.subject is None else 2, "cd" * 32)

    typed = decode_stored(body.encode())
    validated = from_json_line(body)

    assert typed == validated
    assert decode_stored(body) == validated
    assert typed.model_fields_set == validated.model_fields_set
    assert list(typed.__dict__) == list(validated.__dict__)
    assert list(typed.model_dump()) == list(validated.model_dump())
    assert to_json_line(typed) == body
    assert compute_hash(typed) == typed.hash


@pytest.mark.parametrize("read", [from_stored_line, decode_stored])
def test_integers_past_64_bits_read_back_as_integers(read: Any) -> None:
    """A stored integer too big for a machine word comes back as that integer, not a float."""
    _, body = seal(proposal("e1", data={"big": 2**70, "negative": -(2**65)}), 1, 1, GENESIS_HASH)

    event = read(body.encode())

    assert event.data == {"big": 2**70, "negative": -(2**65)}
    assert to_json_line(event) == body


@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ('"position":1', '"position":"1"'),
        ('"caseversion":1', '"caseversion":0'),
        ('"specversion":"1.0"', '"specversion":"2.0"'),
        ('"time":"2026-11-22T09:00:00.000000Z"', '"time":"2026-11-22T09:00:00.000000"'),
        ('"time":"2026-11-22T09:00:00.000000Z"', '"time":"yesterday"'),
        ('"data":{"note":"event e1"}', '"data":["event e1"]'),
        ('"source":"umpire"', '"source":7'),
        ('{"caseversion"', '{"extra":1,"caseversion"'),
        ('"exercise":"exercise-1",', ""),
    ],
)
@pytest.mark.parametrize("read", [from_stored_line, decode_stored])
def test_a_stored_line_of_another_shape_is_refused_as_full_validation_refuses_it(
    change: str, replacement: str, read: Any
) -> None:
    """The read path checks the shape of what it trusts; anything off gets full validation."""
    _, body = seal(proposal("e1"), 1, 1, GENESIS_HASH)
    assert change in body
    odd = body.replace(change, replacement)

    with pytest.raises(ValidationError):
        read(odd.encode())


@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ('"time":"2026-11-22T09:00:00.000000Z"', '"time":"2026-11-22T10:00:00.000000+01:00"'),
        ('"position":1', '"position":1.0'),
        ('"position":1', '"position":true'),
    ],
)
def test_a_stored_line_the_typed_decoder_does_not_take_is_validated_in_full(
    change: str, replacement: str
) -> None:
    """What the typed decoder does not take (another zone, another number type) is left to
    full validation, which then gives its event or its error."""
    _, body = seal(proposal("e1"), 1, 1, GENESIS_HASH)
    odd = body.replace(change, replacement)

    try:
        expected: Any = from_json_line(odd)
    except ValidationError as exc:
        expected = str(exc)
    try:
        got: Any = decode_stored(odd)
    except ValidationError as exc:
        got = str(exc)

    assert got == expected


def test_the_stored_hash_is_the_same_on_text_and_on_its_bytes() -> None:
    """stored_hash gives the same answer for a stored text and for its UTF-8 bytes."""
    _, body = seal(proposal("e1", data={"text": "Grüße, Москва"}), 1, 1, GENESIS_HASH)

    assert stored_hash(body) == stored_hash(body.encode())
    claimed, recomputed = stored_hash(body) or ("", "")
    assert claimed == recomputed


def test_times_formatted_in_turn_are_each_their_own() -> None:
    """Formatting times in any order (the cache keeps two) gives each time its own text."""
    times = [T0 + timedelta(microseconds=n) for n in range(4)]
    for moment in [times[0], times[1], times[0], times[2], times[1], times[3], times[3]]:
        assert format_time(moment) == moment.isoformat(timespec="microseconds")[:-6] + "Z"
    moscow = timezone(timedelta(hours=3))
    assert format_time(datetime(2026, 1, 1, 3, tzinfo=moscow)) == "2026-01-01T00:00:00.000000Z"


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])))
def test_a_time_is_written_as_its_fields_say_whichever_way(moment: datetime) -> None:
    """format_time's fast path (orjson, for a fraction) writes what formatting the fields does."""
    utc = moment.astimezone(UTC)
    expected = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}"
        f":{utc.second:02d}.{utc.microsecond:06d}Z"
    )

    assert format_time(moment) == expected
    # A copy, so the two-entry cache of the formatted times is not what answers.
    assert format_time(moment + timedelta(0)) == expected


@st.composite
def composed_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Every envelope field (what NewEvent.composed takes), plain, with a few made odd."""
    odd = draw(
        st.sets(st.sampled_from(sorted(set(ODD) - {"data", "expected_version"})), max_size=2)
    )
    return {
        key: draw(ODD[key] if key in odd else PLAIN[key])
        for key in PLAIN
        if key not in ("data", "expected_version")
    }


def composed_from(text: str, fields: dict[str, Any]) -> NewEvent:
    renamed = {"id": "event_id", "type": "kind"}
    return NewEvent.composed(
        text, **{renamed.get(key, key): value for key, value in fields.items()}
    )


@given(composed_fields(), st.dictionaries(json_keys, floatless_values, max_size=6))
def test_a_composed_proposal_is_the_one_validation_builds(
    fields: dict[str, Any], data: dict[str, Any]
) -> None:
    """NewEvent.composed builds what validation does from the same fields, or the same errors.

    Odd values included (other types, times in other zones or naive, ids validation
    refuses, text not in NFC): composed() leaves them to the general path.
    """
    fields = {**fields, "data": data}
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    fast, fast_errors = built(lambda: composed_from(text, fields))
    full, full_errors = built(lambda: NewEvent.model_validate(fields))

    assert fast_errors == full_errors
    if fast is not None and full is not None:
        assert fast == full
        assert fast.model_fields_set == full.model_fields_set
        assert list(fast.model_dump()) == list(full.model_dump())
        assert seal(fast, 3, 1, "ab" * 32) == seal(full, 3, 1, "ab" * 32)
        assert seal(fast, 3, 1, "ab" * 32) == sealed_slowly(fast, 3, 1, "ab" * 32)


def test_a_plain_composed_proposal_is_composed_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain fields (what the umpire passes for a message) never reach the general path."""

    def general(*_: object) -> NewEvent:
        raise AssertionError("went the general way")

    fields = {
        "id": "agency-1.1.0",
        "source": "party/agency-1",
        "type": "coop.msg.written_request",
        "subject": "case-1",
        "time": T0,
        "data": {"message": {"text": "Grüße, Москва", "n": 2**63}, "violations": []},
        "exercise": "exercise-1",
        "sender": "agency-1",
        "recipient": "agency-4",
        "correlationid": "case-1",
        "causationid": "agency-4.0.9",
        "wallclock": T0 + timedelta(microseconds=17),
        "schemaversion": 2,
    }
    text = orjson.dumps(fields["data"], option=orjson.OPT_SORT_KEYS).decode()
    reference = NewEvent.model_validate(fields)
    monkeypatch.setattr(NewEvent, "encoded", general)

    event = composed_from(text, fields)

    assert event == reference
    assert event.model_fields_set == reference.model_fields_set
    assert seal(event, 1, 1, GENESIS_HASH) == seal(reference, 1, 1, GENESIS_HASH)
    assert seal(event, 1, 1, GENESIS_HASH) == sealed_slowly(event, 1, 1, GENESIS_HASH)
