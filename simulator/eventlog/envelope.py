"""The event envelope: a CloudEvents 1.0 structured-mode record, its canonical bytes and hash.

An event is stored, hashed, exported and published as one canonical JSON text:
keys sorted, no whitespace, UTF-8, every string NFC-normalised, NaN and
Infinity refused, optional attributes that are unset left out. The hash of an
event is ``sha256(EVENT_HASH_DOMAIN + canonical bytes of the envelope without
its "hash" member)``; the envelope includes ``prevhash``, so the hashes form a
chain, and it includes ``wallclock``, so the hash covers every attribute.

Two paths build events cheaply without weakening any of that. A proposal of
values that are canonical already (exact str, aware datetime, dict of JSON
values and int; NFC text), which is what writers pass, is checked here in
Python instead of by pydantic's per-field validators; anything else goes
through full validation, so the event and the errors are the same either way.
An event read back from the log its store wrote is checked for shape, not
validated field by field (see ``from_stored_line``): verify() does the full
check. Canonical text without floats is written by orjson, which writes it
byte for byte as json does, several times faster.
"""

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import from_json

GENESIS_HASH = "0" * 64
"""The ``prevhash`` of the first event of every log."""

EVENT_HASH_DOMAIN = b"coop-sim/event/v1\x00"
"""Prefixed to the canonical bytes before hashing, so an event hash can never be
mistaken for the digest of anything else the project hashes or signs."""

# Deeper nesting than this is refused with a clear error instead of a
# RecursionError from the walker or the C encoder.
MAX_JSON_DEPTH = 200

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1)]
# strict: a position or version that arrives as "5" or 5.0 is not the integer
# that was hashed, so it is refused rather than coerced.
SchemaVersion = Annotated[int, Field(strict=True, ge=1)]

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)

_NFC = unicodedata.normalize


def canonical_json(value: Any, _depth: int = 0) -> Any:
    """Return a copy of a JSON value with NFC strings and only JSON types.

    Tuples become lists and subclasses (str or int enums, ...) their plain
    type; anything that is not JSON (NaN, Infinity, non-string keys, keys that
    collide once normalised, other types) raises ValueError.
    """
    return _canonical(value, _depth, [])


# The walk below runs for every value of every event built, so objects and
# arrays check their members' types inline (a call per scalar would double
# its cost) and only containers and unusual values recurse. ``floats`` gets
# an entry for every float met: orjson writes some floats differently from
# json (1e-05 as 0.00001), so text with floats is encoded by json instead.


def _canonical(value: Any, depth: int, floats: list[None]) -> Any:
    kind = type(value)
    if kind is dict:
        return _canonical_object(value, depth, floats)
    if kind is list:
        return _canonical_array(value, depth, floats)
    if kind is str:
        return value if value.isascii() else _NFC("NFC", value)
    if value is None or kind is bool or kind is int:
        return value
    return _canonical_other(value, depth, floats)


def _canonical_object(value: dict[Any, Any], depth: int, floats: list[None]) -> dict[str, Any]:
    if depth >= MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise ValueError(f"JSON object keys must be strings, not {type(key).__name__}")
            key = str(key)  # noqa: PLW2901 - a str subclass becomes its plain text
        if not key.isascii():
            key = _NFC("NFC", key)  # noqa: PLW2901 - the key is stored normalised
        kind = type(item)
        if kind is str:
            out[key] = item if item.isascii() else _NFC("NFC", item)
        elif item is None or kind is bool or kind is int:
            out[key] = item
        elif kind is dict:
            out[key] = _canonical_object(item, depth + 1, floats)
        elif kind is list:
            out[key] = _canonical_array(item, depth + 1, floats)
        else:
            out[key] = _canonical_other(item, depth + 1, floats)
    # The keys of ``value`` are distinct, so fewer keys out means that two
    # met once normalised (an ASCII key can meet a non-ASCII one: NFC turns
    # the Kelvin sign into K).
    if len(out) != len(value):
        raise ValueError(f"JSON object keys collide after NFC normalisation: {_collision(value)!r}")
    return out


def _collision(value: dict[Any, Any]) -> str:
    seen: set[str] = set()
    for key in value:
        normalised = _NFC("NFC", str(key))
        if normalised in seen:
            return normalised
        seen.add(normalised)
    raise AssertionError("no two keys collide")  # pragma: no cover - called only on a collision


def _canonical_array(
    value: list[Any] | tuple[Any, ...], depth: int, floats: list[None]
) -> list[Any]:
    if depth >= MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    out: list[Any] = []
    append = out.append
    for item in value:
        kind = type(item)
        if kind is str:
            append(item if item.isascii() else _NFC("NFC", item))
        elif item is None or kind is bool or kind is int:
            append(item)
        elif kind is dict:
            append(_canonical_object(item, depth + 1, floats))
        elif kind is list:
            append(_canonical_array(item, depth + 1, floats))
        else:
            append(_canonical_other(item, depth + 1, floats))
    return out


def _canonical_other(value: Any, depth: int, floats: list[None]) -> Any:
    """Floats, tuples and subclasses of the JSON types; ``depth`` counts ``value`` itself."""
    if depth >= MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        floats.append(None)
        return value
    if kind is tuple:
        return _canonical_array(value, depth, floats)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return _canonical(str(value), depth, floats)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _canonical_other(float(value), depth, floats)
    if isinstance(value, dict):
        return _canonical_object(dict(value), depth, floats)
    if isinstance(value, list | tuple):
        return _canonical_array(list(value), depth, floats)
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def _encode(value: Any, has_floats: bool) -> str:
    """The canonical text of a value that is canonical already (plain JSON types, NFC)."""
    if not has_floats:
        # For JSON without floats orjson writes exactly what _ENCODER writes
        # (sorted keys, no whitespace, the same escapes, UTF-8; the tests
        # check every code point), several times faster. It refuses integers
        # beyond 64 bits and lone surrogates, which json still takes.
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return _ENCODER.encode(value)


def canonical_text(value: object) -> str:
    """The canonical JSON text of a JSON value."""
    floats: list[None] = []
    result = _canonical(value, 0, floats)
    return _encode(result, bool(floats))


def canonical_bytes(value: object) -> bytes:
    """The canonical JSON bytes of a JSON value: the same value always gives the same bytes."""
    return canonical_text(value).encode()


class _Unusual(Exception):
    """Something the fast paths leave to full validation."""


# The walk of a proposal's data on the fast path: a copy of data made only of
# exact JSON types, else _Unusual. It does not normalise: the caller checks
# the text it encodes to for NFC as a whole (cheaper than string by string),
# and leaves data that is not NFC already to the walk above.
def _plain_object(value: dict[Any, Any], depth: int, floats: list[None]) -> dict[str, Any]:
    if depth >= MAX_JSON_DEPTH:
        raise _Unusual
    out: dict[str, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            raise _Unusual
        if kind is str or kind is int or kind is bool or item is None:
            out[key] = item
        elif kind is dict:
            out[key] = _plain_object(item, depth + 1, floats)
        elif kind is list:
            out[key] = _plain_array(item, depth + 1, floats)
        else:
            out[key] = _plain_float(item, depth + 1, floats)
    return out


def _plain_array(value: list[Any], depth: int, floats: list[None]) -> list[Any]:
    if depth >= MAX_JSON_DEPTH:
        raise _Unusual
    out: list[Any] = []
    append = out.append
    for item in value:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            append(item)
        elif kind is dict:
            append(_plain_object(item, depth + 1, floats))
        elif kind is list:
            append(_plain_array(item, depth + 1, floats))
        else:
            append(_plain_float(item, depth + 1, floats))
    return out


def _plain_float(value: object, depth: int, floats: list[None]) -> float:
    # As _canonical_other: a float is refused as deep as a container is.
    if type(value) is not float or not math.isfinite(value) or depth >= MAX_JSON_DEPTH:
        raise _Unusual
    floats.append(None)
    return value


# The last two UTC times formatted, by identity, the latest used first: a writer
# stamps a whole batch with one datetime object (the umpire's `at`), and each event
# with its own wall-clock time besides, so with one entry the two evicted each other
# and both were formatted for every event. Held here, the objects cannot be freed and
# their addresses reused; only UTC times, which nothing about can change (another
# zone's offsets are its own code); replaced as one tuple, safe across threads.
_last_times: tuple[datetime | None, str, datetime | None, str] = (None, "", None, "")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a 'Z': the only time format the log writes."""
    global _last_times  # noqa: PLW0603 - a two-entry cache, see above
    last = _last_times
    if last[0] is moment:
        return last[1]
    if last[2] is moment:
        _last_times = (moment, last[3], last[0], last[1])
        return last[3]
    utc = moment
    if utc.tzinfo is not UTC:
        if utc.tzinfo is None:
            raise ValueError("a naive datetime has no place in the log; give it a time zone")
        utc = utc.astimezone(UTC)
    if utc.microsecond and type(utc) is datetime:
        # orjson writes a UTC time with a fraction exactly so, in C: 2.5 times as fast as
        # the %-formatting below, and every event has a wall-clock time of its own to
        # format (tests/eventlog/test_envelope.py compares the two). A whole second it
        # writes without the fraction, so that one is left to the formatting below.
        text = orjson.dumps(utc, option=orjson.OPT_UTC_Z)[1:-1].decode()
    else:
        # %-formatting of the fields is about twice as fast as isoformat() here.
        text = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
        )
    if moment.tzinfo is UTC:
        _last_times = (moment, text, last[0], last[1])
    return text


def _nfc_or_none(value: str | None) -> str | None:
    if value is None or value.isascii():
        return value
    return unicodedata.normalize("NFC", value)


class _Envelope(BaseModel):
    """Attributes shared by a proposed and a stored event.

    Strings are NFC-normalised and times converted to UTC on validation, and
    ``data`` becomes a plain JSON object. The model is frozen and ``data``
    must be treated as frozen too: its canonical text is computed once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: EventId
    source: Name
    type: Name
    subject: Name | None = None
    time: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)
    exercise: Name
    sender: Name | None = None
    recipient: Name | None = None
    correlationid: Name | None = None
    causationid: Name | None = None
    wallclock: AwareDatetime
    schemaversion: SchemaVersion = 1

    @field_validator(
        "source",
        "type",
        "subject",
        "exercise",
        "sender",
        "recipient",
        "correlationid",
        "causationid",
    )
    @classmethod
    def _nfc(cls, value: str | None) -> str | None:
        return _nfc_or_none(value)

    @field_validator("time", "wallclock")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @field_validator("data")
    @classmethod
    def _json_object(cls, value: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = canonical_json(value)
        return result

    @field_serializer("time", "wallclock")
    def _rfc3339(self, value: datetime) -> str:
        return format_time(value)

    # The canonical text of every attribute that does not depend on where the
    # event lands, computed once (see _static_parts); False if not canonical.
    _parts: tuple[str, str, str] | Literal[False] | None = PrivateAttr(default=None)
    # The whole canonical line with its hash, (hash, line): a proposal's as the last
    # seal() made it, an event's as committed_event() had it from its proposal. Lets
    # the line stored be the line published, without composing it again.
    _line: tuple[str, str] | None = PrivateAttr(default=None)

    def _canonical_parts(self) -> tuple[str, str, str] | None:
        # Straight to the private dict: BaseModel.__getattr__ costs more than
        # the rest of sealing an event.
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        parts = private["_parts"]
        if parts is None:
            # json, not orjson: nothing says this data went through the walk
            # that rules out floats (a model_construct()ed or read event).
            parts = _static_parts(self.__dict__, _ENCODER.encode(self.data))
            private["_parts"] = parts = parts if _is_canonical(parts) else False
        return parts or None

    def __eq__(self, other: object) -> bool:
        # Fields only: the cached text above is not part of an event's identity.
        return type(self) is type(other) and self.__dict__ == other.__dict__

    # data is a dict, so an event never was hashable; say so explicitly.
    __hash__ = None  # type: ignore[assignment]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As BaseModel.model_copy, without the cached text of the original."""
        copied = super().model_copy(update=update, deep=deep)
        copied._parts = None
        copied._line = None
        return copied


class NewEvent(_Envelope):
    """What a writer proposes; the store assigns position, case version and hashes.

    ``expected_version`` makes the append conditional: it fails with
    VersionConflict unless the subject (case) is at exactly that version,
    0 meaning the case has no events yet.
    """

    expected_version: Annotated[int, Field(strict=True, ge=0)] | None = None

    if not TYPE_CHECKING:
        # Hidden from type checkers, which then keep checking NewEvent(...)
        # against the fields: the pydantic plugin writes that signature only
        # for a model without an __init__ of its own.
        def __init__(self, /, **given: Any) -> None:
            if not _init_plain(self, given):
                # Anything else (a time as text, a str subclass, text not in
                # NFC, a bad value): full validation gives the model or the error.
                super().__init__(**given)

        # Tells pydantic this __init__ validates as BaseModel's does, so that
        # model_validate() keeps running full validation directly (and the
        # tests can compare the two).
        __init__.__pydantic_base_init__ = True

    @model_validator(mode="after")
    def _version_needs_case(self) -> Self:
        if self.expected_version is not None and self.subject is None:
            raise ValueError("expected_version needs a subject: only a case has a version")
        # Encoded now, while the proposal is built, so that the writer's
        # transaction (serialised, on the store's one thread) stays short.
        self._canonical_parts()
        return self

    @classmethod
    def encoded(cls, data_text: str, given: dict[str, Any]) -> "NewEvent":
        """``NewEvent(**given)``, for a writer that has the canonical text of its data already.

        The writer vouches that ``data`` holds only dicts with str keys, lists,
        str, int, bool and None (no floats, no subclasses), nested less than
        MAX_JSON_DEPTH deep, that nothing else will change it, and that
        ``data_text`` is its text with sorted keys and no whitespace
        (``orjson.dumps(data, option=OPT_SORT_KEYS)``), which for such data is
        the canonical text if its strings are NFC. That is checked here; data
        that is not NFC, and everything NewEvent's own fast path would not
        take, goes through full validation, so the event is the same either way.
        Saves walking and encoding data the writer has just encoded itself.
        """
        event = cls.__new__(cls)
        if _init_plain(event, given, data_text):
            return event
        return cls(**given)

    @classmethod
    def composed(
        cls,
        data_text: str,
        *,
        event_id: str,
        source: str,
        kind: str,
        time: datetime,
        data: dict[str, Any],
        exercise: str,
        wallclock: datetime,
        subject: str | None = None,
        sender: str | None = None,
        recipient: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        schemaversion: int = 1,
    ) -> "NewEvent":
        """``NewEvent.encoded(data_text, {...})`` of these fields (``event_id`` is ``id``,
        ``kind`` is ``type``), for a writer that stages an event per message it decides.

        ``data`` and ``data_text`` as for ``encoded``. The canonical text of the
        envelope is composed straight from the arguments, without the keyword dict
        and the per-key checks of the general path (a sixth of the umpire's time per
        event went there). What this does not take as it is (a time not in UTC, a
        value of another type, text not in NFC, an id validation refuses) goes the
        general way, so the event, or the error, is the same either way
        (tests/eventlog/test_envelope.py compares them).
        """
        if (
            type(event_id) is str
            and type(source) is str
            and source
            and type(kind) is str
            and kind
            and type(exercise) is str
            and exercise
            and (subject is None or (type(subject) is str and subject))
            and (sender is None or (type(sender) is str and sender))
            and (recipient is None or (type(recipient) is str and recipient))
            and (correlationid is None or (type(correlationid) is str and correlationid))
            and (causationid is None or (type(causationid) is str and causationid))
            and type(time) is datetime
            and time.tzinfo is UTC
            and type(wallclock) is datetime
            and wallclock.tzinfo is UTC
            and type(schemaversion) is int
            and schemaversion >= 1
            and type(data) is dict
            and _EVENT_ID(event_id) is not None
        ):
            parts = _parts_of(
                event_id,
                source,
                kind,
                subject,
                time,
                data_text,
                exercise,
                sender,
                recipient,
                correlationid,
                causationid,
                wallclock,
                schemaversion,
            )
            if _is_canonical(parts):
                fields = {
                    "id": event_id,
                    "source": source,
                    "type": kind,
                    "subject": subject,
                    "time": time,
                    "data": data,
                    "exercise": exercise,
                    "sender": sender,
                    "recipient": recipient,
                    "correlationid": correlationid,
                    "causationid": causationid,
                    "wallclock": wallclock,
                    "schemaversion": schemaversion,
                    "expected_version": None,
                }
                return _assemble(cls.__new__(cls), fields, _COMPOSED_SET.copy(), parts)
        given: dict[str, Any] = {
            "id": event_id,
            "source": source,
            "type": kind,
            "subject": subject,
            "time": time,
            "data": data,
            "exercise": exercise,
            "sender": sender,
            "recipient": recipient,
            "correlationid": correlationid,
            "causationid": causationid,
            "wallclock": wallclock,
            "schemaversion": schemaversion,
        }
        return cls.encoded(data_text, given)

    @classmethod
    def from_event(cls, event: "Event", expected_version: int | None = None) -> "NewEvent":
        """The proposal that, appended at the same place, reproduces ``event`` exactly."""
        fields = {name: event.__dict__[name] for name in _ENVELOPE_FIELDS}
        fields["expected_version"] = expected_version
        return _assemble(cls.__new__(cls), fields, set(fields), None)


class Event(_Envelope):
    """A committed event: a CloudEvents 1.0 envelope with the log's extensions."""

    specversion: Literal["1.0"] = "1.0"
    datacontenttype: Literal["application/json"] = "application/json"
    position: Annotated[int, Field(strict=True, ge=1)]
    caseversion: Annotated[int, Field(strict=True, ge=0)]
    prevhash: Hex64
    hash: Hex64

    @model_validator(mode="after")
    def _version_matches_case(self) -> Self:
        if self.subject is None and self.caseversion != 0:
            raise ValueError("an event without a subject has caseversion 0")
        if self.subject is not None and self.caseversion < 1:
            raise ValueError("an event of a case has caseversion 1 or more")
        return self

    def with_data(self, data: dict[str, Any], schemaversion: int) -> "Event":
        """The same event with other data at another schema version (for upgraders).

        It keeps the stored hash and prevhash, which vouch for the stored original.
        """
        return self.model_copy(
            update={"data": canonical_json(data), "schemaversion": schemaversion}
        )


_ENVELOPE_FIELDS = tuple(_Envelope.model_fields)
# The fields a composed proposal was given (NewEvent.composed): every envelope field.
_COMPOSED_SET = set(_ENVELOPE_FIELDS)
# Every field of a committed event (committed_event gives it all of them).
_EVENT_SET = set(Event.model_fields)
_PROPOSAL_FIELDS = frozenset(NewEvent.model_fields)
_STORED_FIELDS = frozenset(Event.model_fields)
_EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch
"""EventId's pattern; fullmatch, because re's ``$`` also matches before a final newline."""
_set_attribute = object.__setattr__

_M = TypeVar("_M", bound=_Envelope)


def _assemble(
    model: _M, fields: dict[str, Any], fields_set: set[str], parts: tuple[str, str, str] | None
) -> _M:
    """Fill a bare instance with these field values, as model_construct() does, minus its
    per-field loop; the caller vouches that the values are what validation would give."""
    _set_attribute(model, "__dict__", fields)
    _set_attribute(model, "__pydantic_fields_set__", fields_set)
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", {"_parts": parts, "_line": None})
    return model


class _Absent:
    """Marks a keyword that was not given (None is a value some fields refuse)."""


_ABSENT = _Absent()


def _init_plain(model: NewEvent, given: dict[str, Any], data_text: str | None = None) -> bool:
    """Fill ``model`` from ``given`` as validation would; False, leaving it bare, if not plain.

    Plain means canonical already: exact types (str, datetime with a zone,
    dict of JSON types with str keys, int) and NFC text, which is what every
    writer in this project passes. Anything else, valid or not, is left to
    pydantic, so this never accepts what validation refuses nor builds
    anything else (tests/eventlog/test_envelope.py compares the two).
    ``data_text``: see NewEvent.encoded.
    """
    if not _PROPOSAL_FIELDS.issuperset(given):
        return False
    get = given.get
    try:
        event_id = given["id"]
        source = given["source"]
        kind = given["type"]
        exercise = given["exercise"]
        time = given["time"]
        wallclock = given["wallclock"]
    except KeyError:
        return False
    subject = get("subject")
    sender = get("sender")
    recipient = get("recipient")
    correlationid = get("correlationid")
    causationid = get("causationid")
    schemaversion = get("schemaversion", 1)
    expected_version = get("expected_version")
    data = get("data", _ABSENT)
    # One expression over locals rather than a helper per field: calls are
    # what this path exists to save.
    if not (
        type(event_id) is str
        and type(source) is str
        and source
        and type(kind) is str
        and kind
        and type(exercise) is str
        and exercise
        and (subject is None or (type(subject) is str and subject))
        and (sender is None or (type(sender) is str and sender))
        and (recipient is None or (type(recipient) is str and recipient))
        and (correlationid is None or (type(correlationid) is str and correlationid))
        and (causationid is None or (type(causationid) is str and causationid))
        and type(time) is datetime
        and type(wallclock) is datetime
        and type(schemaversion) is int
        and schemaversion >= 1
        and (
            expected_version is None
            or (type(expected_version) is int and expected_version >= 0 and subject is not None)
        )
        and _EVENT_ID(event_id) is not None
    ):
        return False
    # AwareDatetime, then _utc (astimezone(UTC) of a UTC time is that time).
    try:
        if time.tzinfo is not UTC:
            if time.utcoffset() is None:
                return False
            time = time.astimezone(UTC)
        if wallclock.tzinfo is not UTC:
            if wallclock.utcoffset() is None:
                return False
            wallclock = wallclock.astimezone(UTC)
    except Exception:  # a zone's own code failed: full validation reports it as it does
        return False
    if data is _ABSENT:
        data, data_text = {}, "{}"
    elif type(data) is not dict:
        return False
    elif data_text is None:
        floats: list[None] = []
        try:
            data = _plain_object(data, 0, floats)
        except _Unusual:
            return False
        data_text = _encode(data, bool(floats))
    # Else the writer vouches for data and its text (NewEvent.encoded); NFC is checked below.
    fields = {
        "id": event_id,
        "source": source,
        "type": kind,
        "subject": subject,
        "time": time,
        "data": data,
        "exercise": exercise,
        "sender": sender,
        "recipient": recipient,
        "correlationid": correlationid,
        "causationid": causationid,
        "wallclock": wallclock,
        "schemaversion": schemaversion,
        "expected_version": expected_version,
    }
    parts = _static_parts(fields, data_text)
    # NFC as a whole means every string in it was NFC already (see
    # _is_canonical), so normalising would have changed nothing.
    if not _is_canonical(parts):
        return False
    _assemble(model, fields, set(given), parts)
    return True


# Times read back, by their text: events of a log share a few (a round's
# simulated time, a batch's wall-clock time). Bounded; cleared when full.
_TIMES: dict[str, datetime] = {}
_TIMES_LIMIT = 10_000


def _stored_time(text: str) -> datetime:
    """datetime.fromisoformat(text), remembered; TypeError or ValueError as it raises them."""
    moment = _TIMES.get(text)
    if moment is None:
        moment = datetime.fromisoformat(text)
        if len(_TIMES) >= _TIMES_LIMIT:
            _TIMES.clear()
        _TIMES[text] = moment
    return moment


def _stored_event(envelope: dict[str, Any]) -> Event | None:
    """The Event a parsed stored line holds, checked for shape only; None if not that shape.

    Trusts what the store wrote: NFC strings, a well-formed id and hashes,
    canonical text. verify() checks all of that.
    """
    fields_set = set(envelope)
    if not fields_set <= _STORED_FIELDS:
        return None
    try:
        event_id = envelope["id"]
        source = envelope["source"]
        kind = envelope["type"]
        time = _stored_time(envelope["time"])
        data = envelope["data"]
        exercise = envelope["exercise"]
        wallclock = _stored_time(envelope["wallclock"])
        schemaversion = envelope["schemaversion"]
        position = envelope["position"]
        caseversion = envelope["caseversion"]
        prevhash = envelope["prevhash"]
        digest = envelope["hash"]
        specversion = envelope["specversion"]
        datacontenttype = envelope["datacontenttype"]
    except (KeyError, TypeError, ValueError):  # TypeError: a time that is not text
        return None
    get = envelope.get
    subject = get("subject")
    sender = get("sender")
    recipient = get("recipient")
    correlationid = get("correlationid")
    causationid = get("causationid")
    # One expression over locals rather than a helper per field, as above.
    if not (
        type(event_id) is str
        and type(source) is str
        and type(kind) is str
        and type(exercise) is str
        and type(prevhash) is str
        and type(digest) is str
        and type(data) is dict
        and (sender is None or type(sender) is str)
        and (recipient is None or type(recipient) is str)
        and (correlationid is None or type(correlationid) is str)
        and (causationid is None or type(causationid) is str)
        and time.tzinfo is UTC
        and wallclock.tzinfo is UTC
        and type(position) is int
        and position >= 1
        and type(schemaversion) is int
        and schemaversion >= 1
        and type(caseversion) is int
        and (caseversion == 0 if subject is None else type(subject) is str and caseversion >= 1)
        and specversion == "1.0"
        and datacontenttype == "application/json"
    ):
        return None
    fields = {
        "id": event_id,
        "source": source,
        "type": kind,
        "subject": subject,
        "time": time,
        "data": data,
        "exercise": exercise,
        "sender": sender,
        "recipient": recipient,
        "correlationid": correlationid,
        "causationid": causationid,
        "wallclock": wallclock,
        "schemaversion": schemaversion,
        "specversion": specversion,
        "datacontenttype": datacontenttype,
        "position": position,
        "caseversion": caseversion,
        "prevhash": prevhash,
        "hash": digest,
    }
    return _assemble(Event.__new__(Event), fields, fields_set, None)


# The keys in canonical (sorted) order are: caseversion causationid
# correlationid data datacontenttype exercise | hash | id position prevhash
# recipient schemaversion sender source specversion subject time type
# wallclock. Only caseversion, position, prevhash and hash depend on where an
# event lands, so the rest is encoded once, into three parts that fit around
# them; sealing an event in the writer's transaction is then a few string
# joins and one sha256. tests/eventlog/test_envelope.py checks the result
# against canonical_text() of the equivalent dict.
def _static_parts(fields: Mapping[str, Any], data_text: str) -> tuple[str, str, str]:
    return _parts_of(
        fields["id"],
        fields["source"],
        fields["type"],
        fields["subject"],
        fields["time"],
        data_text,
        fields["exercise"],
        fields["sender"],
        fields["recipient"],
        fields["correlationid"],
        fields["causationid"],
        fields["wallclock"],
        fields["schemaversion"],
    )


def _parts_of(
    event_id: str,
    source: str,
    kind: str,
    subject: str | None,
    time: datetime,
    data_text: str,
    exercise: str,
    sender: str | None,
    recipient: str | None,
    correlationid: str | None,
    causationid: str | None,
    wallclock: datetime,
    schemaversion: int,
) -> tuple[str, str, str]:
    """_static_parts of these values (positional: NewEvent.composed calls it for every event)."""
    after_caseversion = ""
    if causationid is not None:
        after_caseversion = f',"causationid":{encode_basestring(causationid)}'
    if correlationid is not None:
        after_caseversion += f',"correlationid":{encode_basestring(correlationid)}'
    after_caseversion += (
        f',"data":{data_text},"datacontenttype":"application/json"'
        f',"exercise":{encode_basestring(exercise)},'
    )
    before_position = f'"id":{encode_basestring(event_id)},"position":'
    after_prevhash = (
        "" if recipient is None else f',"recipient":{encode_basestring(recipient)}'
    ) + f',"schemaversion":{schemaversion:d}'
    if sender is not None:
        after_prevhash += f',"sender":{encode_basestring(sender)}'
    after_prevhash += f',"source":{encode_basestring(source)},"specversion":"1.0"'
    if subject is not None:
        after_prevhash += f',"subject":{encode_basestring(subject)}'
    after_prevhash += (
        f',"time":"{format_time(time)}","type":{encode_basestring(kind)}'
        f',"wallclock":"{format_time(wallclock)}"}}'
    )
    return after_caseversion, before_position, after_prevhash


def _is_canonical(parts: tuple[str, str, str]) -> bool:
    # ASCII is always NFC. Otherwise NFC of the whole text implies NFC of every
    # string in it: quotes and commas never combine with their neighbours.
    first, second, third = parts
    return (
        (first.isascii() or unicodedata.is_normalized("NFC", first))
        and (second.isascii() or unicodedata.is_normalized("NFC", second))
        and (third.isascii() or unicodedata.is_normalized("NFC", third))
    )


_HASH_SEED = hashlib.sha256(EVENT_HASH_DOMAIN)


def _digest(*texts: str) -> str:
    """The event hash of the concatenation of ``texts`` (the envelope without its hash)."""
    hasher = _HASH_SEED.copy()
    for text in texts:
        hasher.update(text.encode())
    return hasher.hexdigest()


def _envelope_dict(
    fields: "_Envelope", position: int, caseversion: int, prevhash: str
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": fields.id,
        "source": fields.source,
        "type": fields.type,
        "time": format_time(fields.time),
        "datacontenttype": "application/json",
        "data": fields.data,
        "exercise": fields.exercise,
        "position": position,
        "caseversion": caseversion,
        "wallclock": format_time(fields.wallclock),
        "schemaversion": fields.schemaversion,
        "prevhash": prevhash,
    }
    for key in ("subject", "sender", "recipient", "correlationid", "causationid"):
        value = getattr(fields, key)
        if value is not None:
            envelope[key] = value
    return envelope


def _around_hash(
    parts: tuple[str, str, str], position: int, caseversion: int, prevhash: str
) -> tuple[str, str]:
    """The canonical text before and after the "hash" member, from the static parts."""
    after_caseversion, before_position, after_prevhash = parts
    return (
        f'{{"caseversion":{caseversion:d}{after_caseversion}',
        f'{before_position}{position:d},"prevhash":"{prevhash}"{after_prevhash}',
    )


def _seal(
    fields: "_Envelope", position: int, caseversion: int, prevhash: str
) -> tuple[str, str, str]:
    """(text before the hash member, text after it, hash) of ``fields`` stored at ``position``."""
    parts = fields._canonical_parts()
    if parts is not None:
        head, tail = _around_hash(parts, position, caseversion, prevhash)
        return head, tail, _digest(head, tail)
    # Only a model built without validation gets here: normalise everything.
    envelope = _envelope_dict(fields, position, caseversion, prevhash)
    digest = _digest(canonical_text(envelope))
    member = f'"hash":"{digest}",'
    text = canonical_text({**envelope, "hash": digest})
    cut = text.rindex(member)
    return text[:cut], text[cut + len(member) :], digest


def seal(proposal: NewEvent, position: int, caseversion: int, prevhash: str) -> tuple[str, str]:
    """The hash and the canonical JSON text of ``proposal`` stored at ``position``.

    The proposal keeps the last (hash, text) it was sealed to, for committed_event().
    """
    private: dict[str, Any] = proposal.__pydantic_private__  # type: ignore[assignment]
    parts = private["_parts"]
    if parts:
        # _seal, inlined: this runs for every event appended, in the write transaction.
        after_caseversion, before_position, after_prevhash = parts
        head = f'{{"caseversion":{caseversion:d}{after_caseversion}'
        tail = f'{before_position}{position:d},"prevhash":"{prevhash}"{after_prevhash}'
        hasher = _HASH_SEED.copy()
        hasher.update(head.encode())
        hasher.update(tail.encode())
        digest = hasher.hexdigest()
    else:
        head, tail, digest = _seal(proposal, position, caseversion, prevhash)
    line = f'{head}"hash":"{digest}",{tail}'
    private["_line"] = (digest, line)
    return digest, line


def committed_event(
    proposal: NewEvent, position: int, caseversion: int, prevhash: str, digest: str
) -> Event:
    """The Event a store made of ``proposal`` at ``position`` (what reading it back gives).

    For a writer that has just appended and knows where each proposal landed
    (the store's ``Appended``) and the hash before the first: it need not
    read its own batch back. ``digest`` is the hash the store computed.
    """
    # A proposal's fields are the envelope's and expected_version, in that order.
    fields = proposal.__dict__.copy()
    del fields["expected_version"]
    fields["specversion"] = "1.0"
    fields["datacontenttype"] = "application/json"
    fields["position"] = position
    fields["caseversion"] = caseversion
    fields["prevhash"] = prevhash
    fields["hash"] = digest
    private: dict[str, Any] = proposal.__pydantic_private__  # type: ignore[assignment]
    # The text the proposal was sealed to is this event's line if its hash is this one:
    # the hash covers every other attribute.
    line = private.get("_line")
    # _assemble, inlined (a committer builds an event per event appended); the fields
    # set is every field of Event, as set(fields) would have it.
    event = Event.__new__(Event)
    _set_attribute(event, "__dict__", fields)
    _set_attribute(event, "__pydantic_fields_set__", _EVENT_SET.copy())
    _set_attribute(event, "__pydantic_extra__", None)
    _set_attribute(
        event,
        "__pydantic_private__",
        {
            "_parts": private["_parts"] or None,
            "_line": line if line is not None and line[0] == digest else None,
        },
    )
    return event


def to_json_line(event: Event) -> str:
    """The structured-mode CloudEvent as one line of canonical JSON (no newline)."""
    private: dict[str, Any] = event.__pydantic_private__  # type: ignore[assignment]
    line: tuple[str, str] | None = private.get("_line")
    if line is not None and line[0] == event.hash:
        return line[1]
    parts = event._canonical_parts()
    if parts is not None:
        # Not _seal: the line carries the event's own hash, so it is not computed again.
        head, tail = _around_hash(parts, event.position, event.caseversion, event.prevhash)
    else:
        head, tail, _ = _seal(event, event.position, event.caseversion, event.prevhash)
    return f'{head}"hash":"{event.hash}",{tail}'


def from_json_line(line: str | bytes) -> Event:
    """Parse one structured-mode CloudEvent; raises pydantic.ValidationError if it is not one."""
    return Event.model_validate_json(line)


def from_stored_line(line: str | bytes) -> Event:
    """An event read back from the log that wrote it: parsed, and checked for shape only.

    For the read path, after the caller has checked the line against its
    hash: the store wrote it canonical and valid, so it is not validated
    again field by field (verify() does that). A line of another shape goes
    through from_json_line, and so raises pydantic.ValidationError as it does.
    """
    try:
        # pydantic-core's parser, not orjson's: orjson turns an integer past
        # 64 bits into a float, and data may hold any integer.
        envelope = from_json(line, allow_inf_nan=False)
    except ValueError:
        return from_json_line(line)
    event = _stored_event(envelope) if type(envelope) is dict else None
    return event if event is not None else from_json_line(line)


def trusted_event(fields: dict[str, Any], fields_set: set[str]) -> Event:
    """An Event of these field values (all of them, in Event's field order), not validated.

    For a reader that has checked a stored line against its hash and decoded
    it with a typed decoder of the same shape (see stored.py): the values are
    what validation would give, and the caller vouches for that.
    """
    return _assemble(Event.__new__(Event), fields, fields_set, None)


def compute_hash(event: Event) -> str:
    """The hash an event ought to carry, recomputed from all its other attributes."""
    return _seal(event, event.position, event.caseversion, event.prevhash)[2]


_HASH_MEMBER = b'"hash":"'
_COMMA = ord(",")
_sha256 = hashlib.sha256


def _hash_span(raw: bytes) -> tuple[int, int] | None:
    """Where a stored text's top-level hash member starts, and where its 64 digits end."""
    # After the top-level "hash" member only scalar members follow, and a
    # quote inside a string is escaped, so the last match is the top-level one.
    start = raw.rfind(_HASH_MEMBER)
    end = start + len(_HASH_MEMBER) + 64
    if start < 1 or raw[start - 1] != _COMMA or raw[end : end + 2] != b'",':
        return None
    return start, end


def hash_holds(raw: bytes) -> bool:
    """Whether a stored text's own hash member is the hash of its bytes without that member.

    `stored_hash`'s test in one step, for the read path's hot loop (one hashing call
    over one joined buffer, no hex text compared apart); the tests hold the two to the
    same verdicts.
    """
    span = _hash_span(raw)
    if span is None:
        return False
    start, end = span
    digest = _sha256(EVENT_HASH_DOMAIN + raw[:start] + raw[end + 2 :]).hexdigest()
    return raw[start + len(_HASH_MEMBER) : end] == digest.encode()


def stored_hash(text: str | bytes) -> tuple[str, str] | None:
    """Split a stored text into (hash it claims, hash of its bytes without that member).

    Works on the bytes as stored (a text is taken as its UTF-8 encoding, which
    is what the store writes), without re-encoding the event, so any changed
    byte shows. Returns None when the text has no top-level hash member where
    one belongs.
    """
    raw = text.encode() if isinstance(text, str) else text
    span = _hash_span(raw)
    if span is None:
        return None
    start, end = span
    claimed = raw[start + len(_HASH_MEMBER) : end].decode("latin-1")
    hasher = _HASH_SEED.copy()
    # Views, not slices: the two halves are hashed where they lie, uncopied.
    view = memoryview(raw)
    hasher.update(view[:start])
    hasher.update(view[end + 2 :])
    digest = hasher.hexdigest()
    return claimed, digest
