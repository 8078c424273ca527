"""What travels over MQTT between parties and the umpire, and its size limit.

Payloads are JSON objects with a `kind`. Committed events travel as
structured-mode CloudEvents (the log's own JSON lines), several per MQTT
message. Every payload is size-checked before it is decoded, so an
oversize or hostile payload costs nothing but its rejection.
"""

import json
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
)

from simulator.context import MAX_SPEED, MIN_SPEED
from simulator.protocol.ids import PartyId

MAX_PAYLOAD_BYTES = 256 * 1024
# Deeply nested JSON costs recursion before validation can refuse it.
MAX_JSON_DEPTH = 64


class WireError(ValueError):
    """A payload that is not a well-formed wire message; the text is the reason given back."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Submission(_Wire):
    """A party submits one protocol message; `seq` counts its submissions from 1.

    `due`: in a realtime run, the simulated time a simulated party's plan came
    due. The umpire records the message then rather than when it arrived (a
    millisecond on the wire is minutes at a high speed), never before what it
    has recorded already nor after its own clock, and only from a party it
    runs on a policy: a person's message is recorded when it arrives.
    """

    kind: Literal["submission"] = "submission"
    party: PartyId
    seq: Annotated[int, Field(ge=1, le=2**53)]
    message: dict[str, Any]
    due: AwareDatetime | None = None

    @model_serializer(mode="wrap")
    def _no_due_unsaid(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Written only when given: a submission without one has the bytes it had before
        # `due` existed, and a rejection's id is its payload's.
        data = handler(self)
        if isinstance(data, dict) and self.due is None:
            data.pop("due", None)
        return data


_Delay = Annotated[timedelta, Field(ge=timedelta(0))]


class Lookahead(_Wire):
    """How soon, at the soonest, a party acts on an event it has not seen yet.

    Until then, the umpire of a simulated run commits what falls due without
    asking the party: nothing it would plan is due yet, and it plans the same
    when asked later, since a plan's time is its trigger's plus a delay. By
    message type: `own`, after a message of its own is committed; `received`,
    after a message sent to it. A type not listed, and any event that is not a
    message, it never acts on.
    """

    own: dict[str, _Delay] = {}
    received: dict[str, _Delay] = {}


class RoundDone(_Wire):
    """A party has handled every event up to the round's head and sent `seqs` in it.

    `ahead` names the submissions it sent before their time, with the time each
    is due: their messages are settled already (nothing the party may yet see
    changes them), so the umpire holds each and decides it when its time comes,
    without a round to ask for it. `retracted` names submissions it takes back:
    plans dropped because their case was withdrawn; the umpire forgets any it
    holds (and ignores any that arrive later), so none is decided. `next_due`
    is the party's next plan not sent.
    `lookahead` is its promise of how soon it acts on an event it is yet to
    see (None: no promise, so it is asked after every commit it may see).
    """

    kind: Literal["round_done"] = "round_done"
    party: PartyId
    round: Annotated[int, Field(ge=0)]
    seqs: tuple[Annotated[int, Field(ge=1)], ...] = ()
    next_due: AwareDatetime | None = None
    ahead: tuple[tuple[Annotated[int, Field(ge=1)], AwareDatetime], ...] = ()
    retracted: tuple[Annotated[int, Field(ge=1)], ...] = ()
    lookahead: Lookahead | None = None
    # The submissions it makes in the round (due now or sent ahead), carried here
    # rather than each in a message of its own; each is taken as if it came alone.
    submissions: tuple[Submission, ...] = ()

    def named(self) -> tuple[int, ...]:
        """Every submission the report says was sent: in the round, and ahead of its time."""
        return (*self.seqs, *(seq for seq, _ in self.ahead))


class CatchUpRequest(_Wire):
    """A party missed events: send it every event it may see after `after`."""

    kind: Literal["catch_up_request"] = "catch_up_request"
    party: PartyId
    after: Annotated[int, Field(ge=0)]


class PlanStated(_Wire):
    """A party's current plan in a realtime run, stated when it changes (and now and then).

    `seen` counts the events it has folded: the umpire takes the statement as
    current only while that equals what the party may see, so an exercise is
    never judged idle from a statement made before the latest events.
    """

    kind: Literal["plan"] = "plan"
    party: PartyId
    seen: Annotated[int, Field(ge=0)]
    next_due: AwareDatetime | None = None
    seqs: tuple[Annotated[int, Field(ge=1)], ...] = ()
    # Submissions sent and then taken back as their case was withdrawn: never to be
    # decided (the umpire drops them, and whatever comes under their numbers).
    retracted: tuple[Annotated[int, Field(ge=1)], ...] = ()


ControlCommand = Literal["pause", "resume", "speed", "jump", "inject", "note", "stop", "status"]


class Control(_Wire):
    """A controller's command to the umpire: pause, resume, speed, jump, inject, note, stop, status.

    With an `id` the umpire answers on the answers topic (`ControlAnswer`).
    """

    kind: Literal["control"] = "control"
    command: ControlCommand
    # Strict: `true` or `"60"` is no speed (lax mode took them as x1 and x60).
    speed: (
        Annotated[float, Field(strict=True, ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)] | None
    ) = None
    inject: Annotated[str, Field(max_length=200)] | None = None
    text: Annotated[str, Field(max_length=5000)] | None = None
    id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class ControlAnswer(_Wire):
    """The umpire's answer to a control command: carried out (`ok`) or not, and why."""

    kind: Literal["answer"] = "answer"
    id: str
    command: ControlCommand
    ok: bool
    detail: str
    status: dict[str, Any] | None = None


def decode_answer(payload: bytes) -> ControlAnswer:
    data = decode_json(payload, 1024 * 1024)
    try:
        return ControlAnswer.model_validate(data)
    except ValidationError as exc:
        raise WireError(describe(exc)) from None


def decode_control(payload: bytes) -> Control:
    data = decode_json(payload, 64 * 1024)
    try:
        return Control.model_validate(data)
    except ValidationError as exc:
        raise WireError(describe(exc)) from None


PartyToUmpire = Annotated[
    Submission | RoundDone | CatchUpRequest | PlanStated, Field(discriminator="kind")
]
_PARTY_TO_UMPIRE: TypeAdapter[Submission | RoundDone | CatchUpRequest | PlanStated] = TypeAdapter(
    PartyToUmpire
)


class Events(_Wire):
    """Committed events, as CloudEvents JSON objects, in position order."""

    kind: Literal["events"] = "events"
    events: tuple[dict[str, Any], ...]
    replay: bool = False
    # The partition whose umpire committed them, where an exercise's cases are split
    # among umpires: positions are numbered in each partition's own log.
    partition: int | None = None


class Round(_Wire):
    """The umpire's clock: round `round` at simulated `time`; the log's head is `head`.

    `visible` tells each party how many events it may see up to `head`, so a
    party that holds fewer knows it missed some and asks to catch up. Only the
    parties in `ask` report the round (`RoundDone`).
    """

    kind: Literal["round"] = "round"
    round: int
    time: AwareDatetime
    head: int
    visible: dict[str, int]
    paused: bool = False
    speed: float | None = None
    # The parties that must answer this round: those with events they have not
    # reported on, or a plan due by `time`. The others have nothing new to say and
    # stay silent. None (a marker from before asking was introduced): everyone answers.
    ask: tuple[PartyId, ...] | None = None


class Tick(_Wire):
    """The umpire's clock in a realtime run: simulated `time` now, at `speed`, paused or not.

    Published on a steady tick, at once on a control change, and after every
    commit (so `head` and `visible` tell parties what they should hold, as a
    round marker does). A party runs its own clock from the last tick.
    """

    kind: Literal["tick"] = "tick"
    time: AwareDatetime
    head: int
    visible: dict[str, int]
    paused: bool = False
    speed: float
    # As `Events.partition`: where an exercise's cases are split among umpires, each
    # announces its own clock, and `head` and `visible` are of its partition's log.
    partition: int | None = None


class Ended(_Wire):
    kind: Literal["ended"] = "ended"
    head: int
    time: AwareDatetime
    reason: str


class Rejected(_Wire):
    """The umpire refused a submission; `reason` says why, in words for the sender."""

    kind: Literal["rejected"] = "rejected"
    seq: int | None
    message_id: str | None
    reason: str
    position: int | None = None


class CatchUp(_Wire):
    kind: Literal["catch_up"] = "catch_up"
    events: tuple[dict[str, Any], ...]
    head: int
    # As `Events.partition`: the partition whose log `head` and the positions are of.
    partition: int | None = None


UmpireToParty = Annotated[
    Events | Round | Tick | Ended | Rejected | CatchUp, Field(discriminator="kind")
]
_UMPIRE_TO_PARTY: TypeAdapter[Events | Round | Tick | Ended | Rejected | CatchUp] = TypeAdapter(
    UmpireToParty
)


def encode(message: _Wire) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


def _depth(value: Any, limit: int) -> int:
    """How deep `value` nests, a scalar in a container one level below it; past `limit`, stop.

    Level by level, carrying only the containers down: a payload of events is
    mostly strings and numbers, and walking each of them cost three times as much.
    """
    if not isinstance(value, (dict, list)):
        return 1
    level: list[Any] = [value]
    depth = 1
    while depth <= limit:
        deeper: list[Any] = []
        filled = False
        for item in level:
            values = item.values() if isinstance(item, dict) else item
            if values:
                filled = True
                deeper += [v for v in values if isinstance(v, (dict, list))]
        if not filled:
            return depth
        depth += 1
        if not deeper:
            return depth
        level = deeper
    return depth


def _no_constant(name: str) -> None:
    raise WireError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        # 1e999 parses as infinity, which no later check expects and JSON cannot write back.
        raise WireError(f"number {text[:40]} is out of range")
    return value


def decode_json(payload: bytes, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Parse a payload into a JSON object, refusing oversize, non-UTF-8, NaN and deep nesting."""
    if len(payload) > limit:
        raise WireError(f"payload of {len(payload)} bytes exceeds the limit of {limit} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise WireError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except WireError:
        raise
    except ValueError as exc:
        # Python refuses integers of more than 4300 digits (int_max_str_digits); escaping
        # as a plain ValueError, that stopped the umpire's receiver.
        raise WireError(f"not JSON we accept: {str(exc)[:80]}") from None
    if not isinstance(value, dict):
        raise WireError(f"expected a JSON object, got {type(value).__name__}")
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise WireError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def describe(error: ValidationError, limit: int = 5) -> str:
    """A short, sender-facing summary of what failed validation and where."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "(top)"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def decode_from_party(
    payload: bytes, limit: int = MAX_PAYLOAD_BYTES
) -> Submission | RoundDone | CatchUpRequest | PlanStated:
    data = decode_json(payload, limit)
    try:
        return _PARTY_TO_UMPIRE.validate_python(data)
    except ValidationError as exc:
        raise WireError(describe(exc)) from None


def decode_from_umpire(payload: bytes) -> Events | Round | Tick | Ended | Rejected | CatchUp:
    # The umpire's own messages can be large (catch-up), so no small limit here;
    # the broker's message_size_limit still bounds them.
    data = decode_json(payload, limit=64 * 1024 * 1024)
    try:
        return _UMPIRE_TO_PARTY.validate_python(data)
    except ValidationError as exc:
        raise WireError(describe(exc)) from None
