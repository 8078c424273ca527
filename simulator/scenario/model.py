"""The scenario format as frozen pydantic models: one exercise, its parties, policies and timeline.

Pure: no files, clock or randomness (the loader reads files; the runtime
samples delays with its own seeded random source). Every check that needs
more than one field (a policy a party names, the party an inject comes
from, the case a condition watches) is made here too, so a scenario built
in code is held to the same rules as one read from YAML.

Checks that find several problems at once raise one pydantic error of type
`PROBLEMS_ERROR` whose context carries each problem with its location
relative to the failing model; the loader expands them so that every
problem names its own field and line.

What the runtime fills in, so that a scenario never spells it out:
- every message's envelope (`ENVELOPE_FIELDS`: ids, case, sender,
  recipient, type, the message it replies to);
- `RUNTIME_FIELDS` of some types (a written confirmation's `confirms`: for
  an inject, the oral request of the inject its `send.confirms` names, or
  of the one oral-request inject of its case);
- `INHERITED_FIELDS` when a scenario leaves them out (a written
  confirmation repeats the request content of the oral request it
  confirms, Art. 4.2);
- `signature` and `seal` when left out: the sender's head and seal; an
  explicit `signature: null` sends the message unsigned;
- `language` when left out: the sending party's `language`.
"""

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from simulator.messaging.topics import check_party_id
from simulator.protocol import (
    DEFAULT_PROFILE_ID,
    MESSAGE_TYPES,
    REQUEST_CONTENT_FIELDS,
    RULES_BY_ID,
    Agreement,
    AgreementProfile,
    AgreementSettings,
    Area,
    Binding,
    CaseState,
    Party,
    SignatureVerifier,
    default_profile,
    load_profile,
    profile_ids,
    sending_problems,
)
from simulator.protocol.ids import (
    CASE_ID_PATTERN,
    PARTY_ID_PATTERN,
    LanguageTag,
    explained,
)
from simulator.scenario.delay import DELAY_TAGS, NO_DELAY, Delay
from simulator.scenario.duration import Duration, PositiveDuration, format_duration

FORMAT_VERSION = 1
SILENCE = "silence"
MAX_GENERATED_CASES = 100_000
# The most a message a scenario writes may take, encoded (its fields in UTF-8 JSON). Its
# envelope, signature and the submission or event around it come on top, and a written
# confirmation may repeat an oral request's content beside its own: twice this and ample
# room fit the wire's 256 KiB (messaging.wire.MAX_PAYLOAD_BYTES), which brokers carry.
MAX_MESSAGE_BYTES = 96 * 1024
# The most the record that opens an exercise (`coop.exercise.started`: every party with its
# officials, each official's public key, the agreements and every profile but the default
# one) may take. Every party receives it in one broker message, which the wire's 256 KiB
# bound (messaging.wire.MAX_PAYLOAD_BYTES) must hold with the event's own fields.
MAX_OPENING_BYTES = 224 * 1024
# An official's public key as the opening record holds it: 64 hex digits, quoted, a colon
# and a comma.
_KEY_BYTES = 64 + 4

# A location inside a scenario, as pydantic reports it: keys and list indexes.
Loc = tuple[str | int, ...]
PROBLEMS_ERROR = "scenario_problems"

ENVELOPE_FIELDS = frozenset({"message_id", "case_id", "sender", "recipient", "type", "in_reply_to"})
ORAL = "oral_request"
CONFIRMATION = "written_confirmation"
RUNTIME_FIELDS: Mapping[str, frozenset[str]] = {"written_confirmation": frozenset({"confirms"})}
# Art. 4.2: the written confirmation is the full written request, so by
# default it repeats what the oral request said.
INHERITED_FIELDS: Mapping[str, frozenset[str]] = {"written_confirmation": REQUEST_CONTENT_FIELDS}
# A reply (policy response or follow-up) answers within a case, so it may also
# take these from the case: consent is given for the third party it was asked about.
REPLY_INHERITED_FIELDS: Mapping[str, frozenset[str]] = {
    "transfer_consent": frozenset({"third_party"})
}

# Tags of the unions below. They appear in pydantic error locations between
# a key and what is inside it, never as keys in a file (the angle brackets
# see to that), so the loader skips them when it follows a location through
# the YAML and when it names the field.
POLICY_NAME_TAG = "<policy name>"
INLINE_POLICY_TAG = "<inline policy>"
STATE_CONDITION_TAG = "<state condition>"
MESSAGE_CONDITION_TAG = "<message condition>"
RULE_CONDITION_TAG = "<rule condition>"
UNION_TAGS = frozenset(
    {
        POLICY_NAME_TAG,
        INLINE_POLICY_TAG,
        STATE_CONDITION_TAG,
        MESSAGE_CONDITION_TAG,
        RULE_CONDITION_TAG,
        *DELAY_TAGS,
    }
)

_NAME = re.compile(r"[a-z0-9_-]{1,64}")
# Keys written as `.key` in a field path; others as `['a key']`.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NAME_SCHEMA = {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}


# --- reporting -------------------------------------------------------------


def field_path(loc: Iterable[str | int]) -> str:
    """`("parties", 1, "id")` as `parties[1].id`, the way problems name fields."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in UNION_TAGS or part == "[key]":
            continue
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def error_text(error: ErrorDetails) -> str:
    """A pydantic error's message for an author: no "Value error, " preamble, the value given."""
    kind = error["type"]
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden" and error["loc"]:
        return f"unknown key {str(error['loc'][-1])!r}"
    text = error["msg"]
    given = error.get("input")
    if kind.startswith("enum") or kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        if isinstance(given, str):
            text += _suggest(given, expected)
    if isinstance(given, str | int | float | bool) and len(str(given)) <= 80:
        text += f" (got {given!r})"
    return text


def _refuse(problems: Sequence[tuple[Loc, str]]) -> NoReturn:
    summary = "; ".join(f"{field_path(loc)}: {text}" if loc else text for loc, text in problems)
    raise PydanticCustomError(
        PROBLEMS_ERROR, "{summary}", {"summary": summary, "problems": tuple(problems)}
    )


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- names ------------------------------------------------------------------


def _named(what: str) -> AfterValidator:
    def check(value: str) -> str:
        if _NAME.fullmatch(value) is None:
            raise ValueError(f"{what} {value!r} must match [a-z0-9_-]{{1,64}}")
        return value

    return AfterValidator(check)


def _scenario_party_id(value: str) -> str:
    check_party_id(value)
    return value


def _message_type(value: str) -> str:
    if value == SILENCE:
        raise ValueError(
            f"{SILENCE!r} is only a policy response, not a message type: "
            "to send nothing, leave this out"
        )
    if value not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {value!r}{_suggest(value, MESSAGE_TYPES)}")
    return value


def _reply_type(value: str) -> str:
    if value != SILENCE and value not in MESSAGE_TYPES:
        choices = [*MESSAGE_TYPES, SILENCE]
        raise ValueError(
            f"unknown message type {value!r}{_suggest(value, choices)}; "
            f"a reply is a message type or {SILENCE!r}"
        )
    return value


def _rule_id(value: str) -> str:
    if value not in RULES_BY_ID:
        raise ValueError(
            f"unknown rule {value!r}{_suggest(value, RULES_BY_ID)}; `simulator rules` lists them"
        )
    return value


ExerciseId = Annotated[str, _named("exercise id"), WithJsonSchema(_NAME_SCHEMA)]
EntryId = Annotated[str, _named("id"), WithJsonSchema(_NAME_SCHEMA)]
PolicyName = Annotated[str, _named("policy name"), WithJsonSchema(_NAME_SCHEMA)]
# Plain strings checked in Python, so the error names the id ("party id 'a/b' must
# match ...") rather than quoting a regular expression at a scenario's author.
ScenarioPartyId = Annotated[
    str, explained(PARTY_ID_PATTERN, "party id"), WithJsonSchema(_NAME_SCHEMA)
]
ScenarioCaseId = Annotated[str, explained(CASE_ID_PATTERN, "case id"), WithJsonSchema(_NAME_SCHEMA)]
MessageType = Annotated[
    str,
    AfterValidator(_message_type),
    WithJsonSchema({"type": "string", "enum": sorted(MESSAGE_TYPES)}),
]
ReplyType = Annotated[
    str,
    AfterValidator(_reply_type),
    WithJsonSchema({"type": "string", "enum": [*sorted(MESSAGE_TYPES), SILENCE]}),
]
RuleId = Annotated[
    str, AfterValidator(_rule_id), WithJsonSchema({"type": "string", "enum": sorted(RULES_BY_ID)})
]
Probability = Annotated[float, Field(ge=0, le=1, strict=True, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


def _one_line(value: str) -> str:
    # A title with a line break had added headings of its own to report.md.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a title is one line: no line break, tab or other control character")
    return value


Title = Annotated[
    str,
    Field(min_length=1, max_length=300),
    AfterValidator(_one_line),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 300,
            "pattern": "^[^\\u0000-\\u001f\\u007f]*$",
        }
    ),
]
Prose = Annotated[str, Field(max_length=20_000)]
MessageFields = Annotated[
    dict[str, Any],
    Field(
        description=(
            "The message's own fields, checked against that message type. The envelope "
            "(message_id, case_id, sender, recipient, type, in_reply_to) is filled in by the "
            "runtime; signature and seal default to the sender's head and seal, language to "
            "the sender's own language."
        )
    ),
]


def _instant(value: Any) -> Any:
    # YAML reads an unquoted timestamp itself; say what is missing in its terms.
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no timezone: add one, like {value.isoformat()}Z or +03:00"
        )
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(
            f"{value.isoformat()} is a date: give a time and a timezone too, "
            f"like {value.isoformat()}T09:00:00Z"
        )
    return value


# The runtime adds durations of up to a century each (the exercise's length, the
# agreement's deadlines, delays) to the start, in UTC: a start near the calendar's
# ends validated, then the run died on day 1 with an OverflowError.
EARLIEST_START = datetime(1000, 1, 1, tzinfo=UTC)
LATEST_START = datetime(9000, 1, 1, tzinfo=UTC)


def _representable(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_START <= utc < LATEST_START:
        raise ValueError(
            f"{value.isoformat()} is outside the times the simulator can run: a start "
            f"from {EARLIEST_START.year} up to {LATEST_START.year - 1} (UTC)"
        )
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_instant), AfterValidator(_representable)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- message contents -------------------------------------------------------

# Envelope values for checking `fields` by building the message: valid, and
# distinct so that the protocol's own checks (sender differs from
# recipient) do not fire on the placeholders.
_PLACEHOLDERS: dict[str, str] = {
    "message_id": "scenario-check",
    "case_id": "scenario-check",
    "sender": "scenario-sender",
    "recipient": "scenario-recipient",
}
_RUNTIME_PLACEHOLDERS: dict[str, str] = {"confirms": "scenario-check"}
_RUNTIME_HINTS: dict[str, str] = {
    "confirms": " (an inject names the oral request's inject with `send.confirms`)"
}


def inject_message_id(inject_id: str) -> str:
    """The message id an inject's message is sent with (`.` is in no party id: no collision)."""
    return f"inject.{inject_id}"


def message_field_problems(
    message_type: str, fields: Mapping[str, Any], *, reply: bool = False
) -> list[tuple[Loc, str]]:
    """What is wrong with `fields` for a message of `message_type` (locations under `fields`)."""
    cls = MESSAGE_TYPES[message_type]
    runtime = RUNTIME_FIELDS.get(message_type, frozenset())
    inherited = INHERITED_FIELDS.get(message_type, frozenset())
    if reply:
        inherited |= REPLY_INHERITED_FIELDS.get(message_type, frozenset())
    problems: list[tuple[Loc, str]] = []
    given: dict[str, Any] = {}
    for key, value in fields.items():
        if key in ENVELOPE_FIELDS or key in runtime:
            hint = _RUNTIME_HINTS.get(key, "")
            problems.append(
                (("fields", key), f"{key} is filled in by the runtime: leave it out{hint}")
            )
        elif key not in cls.model_fields:
            own = sorted(set(cls.model_fields) - ENVELOPE_FIELDS - runtime)
            problems.append(
                (
                    ("fields", key),
                    f"{message_type} has no field {key!r}{_suggest(key, own)}; "
                    f"its fields are {', '.join(own)}",
                )
            )
        else:
            given[key] = value
    placeholders = {**_PLACEHOLDERS, **{k: _RUNTIME_PLACEHOLDERS[k] for k in runtime}}
    try:
        made = cls.model_validate({**given, **placeholders})
    except ValidationError as invalid:
        for error in invalid.errors():
            loc = error["loc"]
            if error["type"] == "missing" and len(loc) == 1:
                if loc[0] not in inherited:
                    problems.append((("fields",), f"{message_type} needs the field {loc[0]!r}"))
            elif loc and loc[0] in given:
                problems.append((("fields", *loc), error_text(error)))
            else:
                problems.append((("fields",), error_text(error)))
    else:
        problems += [(("fields", key), why) for key, why in sending_problems(made)]
        size = len(made.model_dump_json().encode())
        if size > MAX_MESSAGE_BYTES:
            problems.append(
                (
                    ("fields",),
                    f"this {message_type} takes {size:,} bytes encoded (UTF-8: up to 4 bytes a "
                    f"character); a message carries at most {MAX_MESSAGE_BYTES:,}: shorten "
                    "its texts",
                )
            )
    return problems


class FollowUp(_Model):
    """A message the same party sends later, after the one it follows is committed.

    The follow-ups in one `then` list form a chain: each is sent `after` its
    delay counted from the commit of the one before it (the first from its
    parent). A follow-up's own `then` starts when that follow-up is
    committed, alongside the rest of its list.
    """

    reply: MessageType = Field(description="The message type to send.")
    after: Delay = Field(
        default=NO_DELAY,
        description="How long after the previous message is committed (default 0s).",
        json_schema_extra={"default": "0s"},
    )
    fields: MessageFields = Field(default_factory=dict)
    then: tuple["FollowUp", ...] = Field(
        default=(), description="Follow-ups after this one, by the same party."
    )

    @model_validator(mode="after")
    def _fields_fit(self) -> "FollowUp":
        if self.reply == SILENCE:
            return self
        problems = message_field_problems(self.reply, self.fields, reply=True)
        if problems:
            _refuse(problems)
        return self


_CASE_PATTERN = re.compile(r"[a-z0-9_-]{1,64}\*?")


class ResponseWhen(_Model):
    """Where a response applies: every condition given must hold for the case."""

    agreement: EntryId | None = Field(
        default=None,
        description=(
            "The id of the agreement (in `agreements`) the case is under; with a single "
            "`agreement`, its profile's id."
        ),
    )
    area: Area | None = Field(default=None, description="The area the case's request names.")
    case: Annotated[str, explained(_CASE_PATTERN, "case id or prefix*")] | None = Field(
        default=None,
        description='The case id, or a prefix ending in "*" (e.g. "routine-*").',
    )

    def holds(self, *, agreement: str | None, area: str | None, case_id: str) -> bool:
        if self.agreement is not None and self.agreement != agreement:
            return False
        if self.area is not None and self.area.value != area:
            return False
        if self.case is not None:
            if self.case.endswith("*"):
                return case_id.startswith(self.case[:-1])
            return case_id == self.case
        return True


class Response(FollowUp):
    """One way a policy may answer a message it receives; one is picked by weight.

    `reply: silence` sends nothing (and so takes no fields, delay or
    follow-ups); it can still be picked by weight. With `when`, the response
    is one of the choices only in the cases it describes, and there it is
    preferred to the responses without `when`: so a party may answer
    differently under each agreement, in each area or in one case.
    """

    reply: ReplyType = Field(description=f"The message type to send, or {SILENCE!r}.")
    weight: Weight = Field(
        default=1.0, description="Relative chance of picking this response (default 1)."
    )
    when: ResponseWhen | None = Field(
        default=None,
        description=(
            "Only in these cases (agreement, area, case). The responses whose `when` holds "
            "are the choices; where none holds, those without `when` are."
        ),
    )

    @model_serializer(mode="wrap")
    def _no_when_unsaid(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A run records its scenario; a response without `when` is recorded as it was
        # before `when` existed, so the log of an older scenario stays the same.
        data = handler(self)
        if isinstance(data, dict) and self.when is None:
            data.pop("when", None)
        return data

    @model_validator(mode="after")
    def _silence_is_bare(self) -> "Response":
        if self.reply == SILENCE:
            # Judged by value, not by which keys were written, so that a dump
            # with every default spelled out validates again.
            extra = [
                key
                for key, empty in (
                    ("after", self.after == NO_DELAY),
                    ("fields", not self.fields),
                    ("then", not self.then),
                )
                if not empty
            ]
            if extra:
                _refuse(
                    [((key,), f"{SILENCE} sends nothing, so it takes no {key}") for key in extra]
                )
        return self


class Mistakes(_Model):
    """Deliberate mistakes for training, each a probability drawn per message.

    They apply to what the party sends by itself: policy responses and every
    follow-up (also those of its injects and generators), not to an inject's
    or generated message itself, which is sent as written.
    """

    forget_written_confirmation: Probability = Field(
        default=0.0, description="Chance of dropping a planned written_confirmation follow-up."
    )
    refuse_without_reasons: Probability = Field(
        default=0.0, description="Chance of blanking `reasons` in a refusal."
    )
    unsigned_request: Probability = Field(
        default=0.0,
        description="Chance of sending a written request or confirmation without signature.",
    )
    wrong_language: Probability = Field(
        default=0.0, description="Chance of writing in another language than the working one."
    )
    late_reply: Probability = Field(
        default=0.0, description="Chance of adding `late_by` to a reply's delay."
    )
    late_by: Duration = Field(
        default=timedelta(0), description="How much later a late reply comes."
    )
    act_on_forged_request: Probability = Field(
        default=0.0,
        description=(
            "Chance of answering a request whose signature does not verify as if it were "
            "genuine, instead of asking for additional confirmation (Art. 4.2)."
        ),
    )

    miss_withdrawal: Probability = Field(
        default=0.0,
        description=(
            "Chance of missing a withdrawal: the party carries on with what it had planned in "
            "the case (results, notices) as if the request stood (drawn once per withdrawal "
            "it sends or receives)."
        ),
    )

    @model_validator(mode="after")
    def _late_by_given(self) -> "Mistakes":
        if self.late_reply > 0 and self.late_by == timedelta(0):
            _refuse([(("late_by",), "late_reply needs a late_by longer than 0s")])
        return self


Responses = Annotated[tuple[Response, ...], Field(min_length=1)]


class Policy(_Model):
    """How a simulated party answers what it receives, and the mistakes it makes."""

    description: Prose = Field(default="", description="Free text for the controller.")
    on: dict[MessageType, Responses] = Field(
        default_factory=dict,
        description=(
            "For each message type the party receives: the possible responses, one picked "
            "by weight. A type not listed gets no response."
        ),
    )
    mistakes: Mistakes = Field(default_factory=Mistakes, description="Deliberate mistakes.")

    @model_validator(mode="after")
    def _some_weight(self) -> "Policy":
        problems: list[tuple[Loc, str]] = [
            (("on", received), "at least one response needs a weight above 0")
            for received, responses in self.on.items()
            if not any(r.weight > 0 for r in responses)
        ]
        # The pick draws up to the sum: an infinite one would always land on the last.
        problems += [
            (
                ("on", received),
                "the weights add up to more than the largest number there is: they are "
                "relative chances, so write them smaller in the same proportions",
            )
            for received, responses in self.on.items()
            if math.isinf(sum(r.weight for r in responses))
        ]
        if problems:
            _refuse(problems)
        return self


# --- parties ----------------------------------------------------------------


def _policy_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return POLICY_NAME_TAG
    if isinstance(value, Mapping | Policy):
        return INLINE_POLICY_TAG
    return None


PolicyRef = Annotated[
    Annotated[PolicyName, Tag(POLICY_NAME_TAG)] | Annotated[Policy, Tag(INLINE_POLICY_TAG)],
    Discriminator(
        _policy_kind,
        custom_error_type="policy_ref",
        custom_error_message="a policy is the name of one in `policies`, or a policy mapping",
    ),
]

_PARTY_DESCRIPTIONS = {
    "name": "The agency's full name.",
    "language": "The language the party writes in (a language tag, e.g. ru).",
    "head": "The head of the party (Art. 4.4: may sign written requests).",
    "deputies": "The deputies (Art. 4.4: may sign written requests); at least one.",
}


def _describe_party(schema: dict[str, Any]) -> None:
    for name, text in _PARTY_DESCRIPTIONS.items():
        schema["properties"][name].setdefault("description", text)


class ScenarioParty(Party):
    """A party to the exercise: a `simulator.protocol.Party` plus who plays it."""

    model_config = ConfigDict(json_schema_extra=_describe_party)

    id: Annotated[ScenarioPartyId, AfterValidator(_scenario_party_id)] = Field(
        description="Party id, [a-z0-9_-]{1,64}; not one of the simulator's own names."
    )
    policy: PolicyRef | None = Field(
        default=None,
        description=(
            "How the simulated party answers: the name of a policy in `policies`, or an "
            "inline policy. Without one it sends nothing by itself."
        ),
    )
    human: bool = Field(default=False, description="A trainee plays this seat.")

    def party(self) -> Party:
        """The plain protocol party, without the scenario's additions."""
        return Party.model_validate(self.model_dump(include=set(Party.model_fields)))


# A scenario's own agreement profiles (`profiles`), while the scenario is being validated:
# its agreements name them like shipped ones, and their defaults and checks need them before
# the scenario exists. Set by `Scenario._with_own_profiles` around the whole validation.
_OWN_PROFILES: ContextVar[Mapping[str, AgreementProfile]] = ContextVar(
    "own_profiles", default=MappingProxyType({})
)


def _find_profile(profile_id: str) -> AgreementProfile | None:
    """The scenario's own profile of that id, or the shipped one, or None."""
    own = _OWN_PROFILES.get().get(profile_id)
    if own is not None:
        return own
    return load_profile(profile_id) if profile_id in profile_ids() else None


def _known_profiles() -> str:
    return ", ".join([*profile_ids(), *_OWN_PROFILES.get()])


class ScenarioAgreement(AgreementSettings):
    """The agreement settings, with durations written the scenario way ("1d")."""

    profile: str = Field(
        default=DEFAULT_PROFILE_ID,
        description=(
            "The agreement the umpire enforces: a shipped profile (`simulator agreements`) or "
            "the id of one of the scenario's `profiles`. `default` is the cooperation "
            "agreement of 19 November 2020."
        ),
    )

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if _find_profile(value) is None:
            raise ValueError(f"no agreement profile {value!r}; there are: {_known_profiles()}")
        return value

    @model_serializer(mode="wrap")
    def _default_profile_unsaid(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A run records its scenario; one under the default profile records it as it was
        # recorded before profiles existed, so its log stays the same byte for byte.
        data = handler(self)
        if isinstance(data, dict) and self.profile == DEFAULT_PROFILE_ID:
            data.pop("profile", None)
        return data

    promptly: PositiveDuration = Field(
        default=default_profile().deadlines.promptly,
        description=(
            'Art. 6.1: how soon an impediment must be notified ("promptly"). Left out: the '
            "profile's (1d under the default agreement)."
        ),
    )
    as_soon_as_possible: PositiveDuration = Field(
        default=default_profile().deadlines.as_soon_as_possible,
        description=(
            "Art. 6.4: how soon results are due after execution starts. Left out: the "
            "profile's (10d under the default agreement)."
        ),
    )
    working_language: LanguageTag = Field(
        default=default_profile().languages[0],
        description=(
            "Art. 9: the working language (a language tag), one of the profile's. Left out: "
            "the profile's first (ru under the default agreement)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        # What the scenario leaves out is the agreement's own: its profile's deadlines and
        # its first working language (the default profile's are the fields' defaults).
        if not isinstance(data, Mapping):
            return data
        profile_id = data.get("profile", DEFAULT_PROFILE_ID)
        profile = _find_profile(profile_id) if isinstance(profile_id, str) else None
        if profile is None:
            return data  # the field's own validator names the unknown profile
        return {
            "promptly": profile.deadlines.promptly,
            "as_soon_as_possible": profile.deadlines.as_soon_as_possible,
            "working_language": profile.languages[0],
            **data,
        }

    @model_validator(mode="after")
    def _language_of_the_agreement(self) -> "ScenarioAgreement":
        profile = _find_profile(self.profile)
        if profile is None:
            return self  # named by the field's validator
        if self.working_language not in profile.languages:
            raise ValueError(
                f"working_language {self.working_language!r} is not a language of the agreement "
                f"{profile.id!r} (Art. {profile.languages_article}: "
                f"{', '.join(profile.languages)})"
            )
        return self

    def settings(self) -> AgreementSettings:
        """The plain protocol settings."""
        return AgreementSettings.model_validate(self.model_dump(exclude={"profile"}))


class ScenarioBinding(ScenarioAgreement):
    """One of several agreements in an exercise: its profile, its settings, whom it binds."""

    id: EntryId = Field(description="The agreement's id in this exercise (policies' `when`).")
    parties: tuple[ScenarioPartyId, ...] = Field(
        min_length=2,
        description="The parties it binds: two for a bilateral agreement, more for a convention.",
    )

    @model_serializer(mode="wrap")
    def _all_said(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Unlike the single `agreement`, a binding always says its profile.
        return handler(self)

    def binding(self, profile: AgreementProfile) -> Binding:
        return Binding(
            id=self.id,
            profile=profile,
            settings=AgreementSettings.model_validate(
                self.model_dump(exclude={"profile", "id", "parties"})
            ),
            parties=self.parties,
        )


# --- timeline ---------------------------------------------------------------


class MessageTemplate(_Model):
    """A message without its route: what a generator sends in each case."""

    type: MessageType = Field(description="The message type.")
    fields: MessageFields = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_fit(self) -> "MessageTemplate":
        problems = message_field_problems(self.type, self.fields)
        if problems:
            _refuse(problems)
        return self


class InjectMessage(MessageTemplate):
    """The message an inject puts into the exercise, as if `from` had sent it."""

    model_config = ConfigDict(populate_by_name=True)

    sender: ScenarioPartyId = Field(alias="from", description="The sending party.")
    recipient: ScenarioPartyId = Field(alias="to", description="The receiving party.")
    case: ScenarioCaseId = Field(description="The case id, [a-z0-9_-]{1,64}.")
    confirms: EntryId | None = Field(
        default=None,
        description=(
            "Only for a written_confirmation: the id of the inject that sends the oral_request "
            "it confirms (Art. 4.2). Left out: the one oral_request inject of the same case."
        ),
    )

    @model_validator(mode="after")
    def _two_parties(self) -> "InjectMessage":
        if self.sender == self.recipient:
            _refuse([(("to",), f"the message goes from {self.sender!r} to itself")])
        if self.confirms is not None and self.type != CONFIRMATION:
            _refuse([(("confirms",), f"only a {CONFIRMATION} confirms an oral request")])
        return self


class CaseStateCondition(_Model):
    """Holds once the case has reached the state."""

    case: ScenarioCaseId = Field(description="The case to watch.")
    state: CaseState = Field(description="The state the case reaches.")


class MessageCondition(_Model):
    """Holds once a message of that type is committed in the case."""

    case: ScenarioCaseId = Field(description="The case to watch.")
    message: MessageType = Field(description="The message type committed in it.")


class RuleCondition(_Model):
    """Holds once a violation of the rule is recorded (in the case, if one is named)."""

    rule: RuleId = Field(description="A rule id, as `simulator rules` lists them.")
    case: ScenarioCaseId | None = Field(default=None, description="Only in this case.")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, CaseStateCondition):
        return STATE_CONDITION_TAG
    if isinstance(value, MessageCondition):
        return MESSAGE_CONDITION_TAG
    if isinstance(value, RuleCondition):
        return RULE_CONDITION_TAG
    if isinstance(value, Mapping):
        if "rule" in value:
            return RULE_CONDITION_TAG
        if "state" in value:
            return STATE_CONDITION_TAG
        if "message" in value:
            return MESSAGE_CONDITION_TAG
    return None


Condition = Annotated[
    Annotated[CaseStateCondition, Tag(STATE_CONDITION_TAG)]
    | Annotated[MessageCondition, Tag(MESSAGE_CONDITION_TAG)]
    | Annotated[RuleCondition, Tag(RULE_CONDITION_TAG)],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message=(
            "a condition is {case, state}, {case, message} or {rule} with an optional case"
        ),
    ),
]


class Inject(_Model):
    """A message put into the exercise at a time, or once a condition holds."""

    id: EntryId = Field(description="Unique among injects and generators.")
    at: Duration | None = Field(
        default=None, description="Offset from the start. Exactly one of `at` and `when`."
    )
    when: Condition | None = Field(
        default=None,
        description="A condition on the log; the inject fires once, when it first holds.",
    )
    after: Delay = Field(
        default=NO_DELAY,
        description="With `when`: the delay after the condition first holds (default 0s).",
        json_schema_extra={"default": "0s"},
    )
    send: InjectMessage = Field(description="The message.")
    then: tuple[FollowUp, ...] = Field(
        default=(), description="Follow-ups by the sender, e.g. an oral request's confirmation."
    )
    tamper: Literal["signature", "content"] | None = Field(
        default=None,
        description=(
            "For training: `signature` sends the message with a forged signature (a key "
            "that is not the signatory's); `content` alters it after it was signed. Either "
            "way its Ed25519 signature does not verify."
        ),
    )

    @model_validator(mode="after")
    def _one_trigger(self) -> "Inject":
        if self.at is None and self.when is None:
            _refuse([((), "an inject needs `at` (a time) or `when` (a condition)")])
        if self.at is not None and self.when is not None:
            _refuse([(("when",), "give `at` or `when`, not both")])
        if self.at is not None and self.after != NO_DELAY:
            _refuse(
                [(("after",), "`after` counts from a `when` condition; with `at`, add it to `at`")]
            )
        signed = ("written_request", "written_confirmation", "additional_confirmation")
        if self.tamper is not None and self.send.type not in signed:
            _refuse([(("tamper",), f"a {self.send.type} carries no signature to tamper with")])
        if self.tamper is not None and self.send.fields.get("signature", {}) is None:
            _refuse([(("tamper",), "the message is sent unsigned (signature: null)")])
        return self


def _one_or_many(value: Any) -> Any:
    return (value,) if isinstance(value, str) else value


Route = Annotated[
    tuple[ScenarioPartyId, ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=1_000),
    WithJsonSchema(
        {
            "oneOf": [
                _NAME_SCHEMA,
                {"type": "array", "items": _NAME_SCHEMA, "minItems": 1, "maxItems": 1000},
            ]
        }
    ),
]


class Generator(_Model):
    """Many similar cases: `count` messages from a template, one new case each.

    Case n (from 1) is `case_id(n)`, sent at `start` plus n-1 sampled
    `every` delays, from `senders[(n-1) % len(senders)]` to
    `recipients[(n-1) % len(recipients)]`.
    """

    model_config = ConfigDict(populate_by_name=True)

    id: EntryId = Field(description="Unique among injects and generators; prefixes case ids.")
    senders: Route = Field(alias="from", description="The sending party, or several in turn.")
    recipients: Route = Field(alias="to", description="The receiving party, or several in turn.")
    count: int = Field(
        strict=True, ge=1, le=MAX_GENERATED_CASES, description="How many cases (1-100000)."
    )
    start: Duration = Field(default=timedelta(0), description="Offset of the first case.")
    every: Delay = Field(description="Delay between one case and the next (seeded).")
    send: MessageTemplate = Field(description="The message, without from, to or case.")
    then: tuple[FollowUp, ...] = Field(default=(), description="Follow-ups by the sender.")

    def case_id(self, n: int) -> str:
        """The id of the n-th case, counting from 1."""
        return f"{self.id}-{n:04d}"

    def route(self, n: int) -> tuple[str, str]:
        """Sender and recipient of the n-th case, counting from 1."""
        return self.senders[(n - 1) % len(self.senders)], self.recipients[
            (n - 1) % len(self.recipients)
        ]

    def creates(self, case_id: str) -> bool:
        """Whether `case_id` is one of this generator's cases."""
        prefix = f"{self.id}-"
        if not case_id.startswith(prefix):
            return False
        digits = case_id[len(prefix) :]
        return (
            digits.isdigit()
            and 1 <= int(digits) <= self.count
            and self.case_id(int(digits)) == case_id
        )

    @model_validator(mode="after")
    def _cases_fit(self) -> "Generator":
        problems: list[tuple[Loc, str]] = []
        last = self.case_id(self.count)
        if _NAME.fullmatch(last) is None:
            problems.append(
                (
                    ("id",),
                    f"case ids made from it would be too long ({last!r} has over 64 characters)",
                )
            )
        # The route repeats after lcm(len(senders), len(recipients)) cases.
        for n in range(1, min(self.count, len(self.senders) * len(self.recipients)) + 1):
            sender, recipient = self.route(n)
            if sender == recipient:
                problems.append(
                    (
                        ("to",),
                        f"case {n} would go from {sender!r} to itself; reorder `from` or `to`",
                    )
                )
                break
        # A request names both parties (Art. 4.3); left out, each case's names are filled
        # in from its own sender and recipient. One name for several would be wrong in
        # every case but its own's, each a request-incomplete breach nobody planted.
        for key, way, route in (
            ("requesting_party_name", "from", self.senders),
            ("requested_party_name", "to", self.recipients),
        ):
            if len(route) > 1 and key in self.send.fields:
                problems.append(
                    (
                        ("send", "fields", key),
                        f"names one party, but the cases go {way} {', '.join(route)} in turn: "
                        "leave it out, and each case's request names its own parties",
                    )
                )
        if problems:
            _refuse(problems)
        return self


class Expectation(_Model):
    """An outcome the run summary scores: a message committed, or a state reached, in time."""

    id: EntryId = Field(description="Unique among expectations.")
    description: Prose = Field(default="", description="What is expected, for the summary.")
    case: ScenarioCaseId | None = Field(
        default=None, description="The case; leave out for every case of the run."
    )
    message: MessageType | None = Field(
        default=None, description="A message type that must be committed in the case."
    )
    state: CaseState | None = Field(default=None, description="A state the case must reach.")
    within: PositiveDuration | None = Field(
        default=None,
        description="Deadline counted from the case's opening; leave out for the end of the run.",
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> "Expectation":
        if (self.message is None) == (self.state is None):
            _refuse([((), "an expectation names exactly one of `message` and `state`")])
        return self


# --- the scenario -----------------------------------------------------------


class Scenario(_Model):
    """One exercise: who takes part, how they behave, and what happens when."""

    model_config = ConfigDict(
        title="Scenario",
        json_schema_extra={"description": "A tabletop exercise of the assistance procedure."},
    )

    version: Literal[1] = Field(description="The format version; only 1 exists.")
    exercise: ExerciseId = Field(description="The exercise id, [a-z0-9_-]{1,64}.")
    title: Title = Field(description="A one-line title.")
    description: Prose = Field(default="", description="Free text for the controller.")
    seed: int = Field(
        default=0,
        strict=True,
        ge=0,
        le=2**63 - 1,
        description="Default seed of the run's random source; `simulator run --seed` overrides.",
    )
    start: Instant = Field(description="Simulated start, with a timezone.")
    duration: PositiveDuration = Field(
        description="Longest simulated length; the run ends then, or earlier if nothing is pending."
    )
    profiles: tuple[AgreementProfile, ...] = Field(
        default=(),
        description=(
            "Agreements of the scenario's own, beside the shipped ones: each an agreement "
            "profile (the format of simulator/protocol/profiles/*.yaml), or in the file the "
            "path of one, relative to the scenario. `agreement.profile` and `agreements` name "
            "them by id."
        ),
    )
    agreement: ScenarioAgreement = Field(
        default_factory=ScenarioAgreement,
        description="The agreement's settings, when one agreement binds every party.",
    )
    agreements: tuple[ScenarioBinding, ...] = Field(
        default=(),
        description=(
            "Several agreements, each binding some of the parties (instead of `agreement`). "
            "A case is under the first that binds both its parties; a request between "
            "parties that share none is a violation (no-common-agreement)."
        ),
    )
    parties: tuple[ScenarioParty, ...] = Field(
        min_length=2, max_length=1_000, description="The parties; at least two."
    )
    policies: dict[PolicyName, Policy] = Field(
        default_factory=dict, description="Named policies the parties refer to."
    )
    injects: tuple[Inject, ...] = Field(default=(), description="Messages on the timeline.")
    generators: tuple[Generator, ...] = Field(default=(), description="Many similar cases.")
    expectations: tuple[Expectation, ...] = Field(
        default=(), description="Outcomes scored in the run summary."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _with_own_profiles(cls, data: Any, handler: ModelWrapValidatorHandler["Scenario"]) -> Any:
        # The scenario's own profiles are known to every part of it while it is validated
        # (`_OWN_PROFILES`); one that does not validate is left to the `profiles` field's
        # own errors, and agreements naming it then find no such profile.
        own: dict[str, AgreementProfile] = {}
        if isinstance(data, Mapping):
            for entry in data.get("profiles") or ():
                try:
                    profile = AgreementProfile.model_validate(entry)
                except ValidationError:
                    continue
                own.setdefault(profile.id, profile)
        elif isinstance(data, Scenario):
            own = {p.id: p for p in data.profiles}
        token = _OWN_PROFILES.set(own)
        try:
            return handler(data)
        finally:
            _OWN_PROFILES.reset(token)

    def profile_named(self, profile_id: str) -> AgreementProfile:
        """The scenario's own profile of that id, or else the shipped one."""
        for profile in self.profiles:
            if profile.id == profile_id:
                return profile
        return load_profile(profile_id)

    @property
    def end(self) -> datetime:
        """When the run ends at the latest."""
        return self.start + self.duration

    def party(self, party_id: str) -> ScenarioParty:
        for party in self.parties:
            if party.id == party_id:
                return party
        raise KeyError(party_id)

    def policy_of(self, party_id: str) -> Policy | None:
        """The party's policy, with a name looked up in `policies`."""
        policy = self.party(party_id).policy
        return self.policies[policy] if isinstance(policy, str) else policy

    def protocol_agreement(self, verify_signature: SignatureVerifier | None = None) -> Agreement:
        """The agreement in force, as the protocol's case fold takes it."""
        parties = [p.party() for p in self.parties]
        settings = self.agreement.settings()
        profile = self.profile_named(self.agreement.profile)
        bindings = tuple(b.binding(self.profile_named(b.profile)) for b in self.agreements)
        if verify_signature is None:
            return Agreement.of(parties, settings, profile=profile, bindings=bindings)
        return Agreement.of(parties, settings, verify_signature, profile, bindings)

    def agreement_between(self, one: str, other: str) -> str | None:
        """The id of the agreement a case between two parties is under, as policies name it.

        With one `agreement`, its profile's id; with several, the first that binds both.
        """
        if not self.agreements:
            return self.agreement.profile
        return next(
            (b.id for b in self.agreements if one in b.parties and other in b.parties), None
        )

    @model_serializer(mode="wrap")
    def _no_agreements_unsaid(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A run records its scenario; one with a single agreement is recorded as before
        # `agreements` existed, so its log stays the same byte for byte.
        data = handler(self)
        if isinstance(data, dict):
            # One of the two is said, never both, so the dump validates again.
            data.pop("agreement" if self.agreements else "agreements", None)
            if not self.profiles:
                data.pop("profiles", None)
        return data

    def confirmed_inject(self, inject: Inject) -> Inject | None:
        """The inject whose oral request a written-confirmation inject confirms (Art. 4.2)."""
        if inject.send.type != CONFIRMATION:
            return None
        wanted = inject.send.confirms
        for other in self.injects:
            if wanted is not None and other.id == wanted:
                return other
            if wanted is None and other.send.type == ORAL and other.send.case == inject.send.case:
                return other
        return None

    def inject_fields(self, inject: Inject) -> dict[str, Any]:
        """The fields an inject's message is drafted with, the runtime's ones filled in.

        A written confirmation names the oral request it confirms and, unless its
        own fields say otherwise, repeats that request's content (Art. 4.2: it is
        the full written request).
        """
        oral = self.confirmed_inject(inject)
        if oral is None:
            return dict(inject.send.fields)
        inherited = INHERITED_FIELDS[CONFIRMATION]
        return {
            **{k: v for k, v in oral.send.fields.items() if k in inherited},
            "confirms": inject_message_id(oral.id),
            **inject.send.fields,
        }

    def creates_case(self, case_id: str) -> bool:
        """Whether an inject names the case or a generator makes it."""
        return any(i.send.case == case_id for i in self.injects) or any(
            g.creates(case_id) for g in self.generators
        )

    @model_validator(mode="after")
    def _references(self) -> "Scenario":
        problems = list(_cross_checks(self))
        if problems:
            _refuse(problems)
        return self


def _cross_checks(s: Scenario) -> Iterator[tuple[Loc, str]]:
    parties = _Parties([p.id for p in s.parties])
    yield from _party_checks(s, parties)
    yield from _agreement_checks(s, parties)
    yield from _opening_checks(s)
    yield from _timeline_checks(s, parties)
    yield from _case_checks(s)
    yield from _confirmation_checks(s)


def _confirmation_checks(s: Scenario) -> Iterator[tuple[Loc, str]]:
    """A written confirmation on the timeline must know the oral request it confirms.

    Its `confirms` and request content come from an oral-request inject, so
    one that names none (or one that is no oral request of its case and
    parties) is refused here rather than failing when it comes due.
    """
    by_id = {inject.id: inject for inject in s.injects}
    for i, inject in enumerate(s.injects):
        send = inject.send
        if send.type != CONFIRMATION:
            continue
        if send.confirms is None:
            orals = [o.id for o in s.injects if o.send.type == ORAL and o.send.case == send.case]
            if len(orals) > 1:
                yield (
                    ("injects", i, "send", "type"),
                    f"injects {', '.join(orals)} all send an {ORAL} in case {send.case!r}: "
                    "name the one this confirms with `confirms: <inject id>`",
                )
                continue
            if not orals:
                yield (
                    ("injects", i, "send", "type"),
                    f"a {CONFIRMATION} confirms an oral request (Art. 4.2), and no inject sends "
                    f"an {ORAL} in case {send.case!r}: send that first, and name it with "
                    "`confirms: <inject id>`, or make the confirmation a follow-up (`then`) "
                    "of the oral request",
                )
                continue
        here: Loc = ("injects", i, "send", "confirms" if send.confirms else "type")
        oral = s.confirmed_inject(inject)
        if oral is None:
            assert send.confirms is not None
            yield (
                here,
                f"no inject {send.confirms!r}{_suggest(send.confirms, by_id)} "
                f"(injects: {_listing(by_id)})",
            )
        elif oral.send.type != ORAL:
            yield here, f"inject {oral.id!r} sends a message of type {oral.send.type}, not {ORAL}"
        elif oral.send.case != send.case:
            yield (
                here,
                f"inject {oral.id!r} is in case {oral.send.case!r}, this confirmation in "
                f"{send.case!r}",
            )
        elif (oral.send.sender, oral.send.recipient) != (send.sender, send.recipient):
            yield (
                here,
                f"the oral request of inject {oral.id!r} went from {oral.send.sender!r} to "
                f"{oral.send.recipient!r}; its confirmation goes the same way",
            )
    for i, generator in enumerate(s.generators):
        if generator.send.type == CONFIRMATION:
            yield (
                ("generators", i, "send", "type"),
                f"a generator opens new cases, with no oral request in them to confirm: "
                f"generate the {ORAL} and confirm it in `then`",
            )


class _Parties:
    """The scenario's party ids, and how to say that a name is not one of them."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.known = set(ids)

    def unknown(self, name: str) -> str:
        return (
            f"{name!r} is not a party of this scenario{_suggest(name, self.known)} "
            f"(parties: {_listing(self.ids)})"
        )

    def check(self, name: str, loc: Loc) -> Iterator[tuple[Loc, str]]:
        if name not in self.known:
            yield loc, self.unknown(name)


def _agreement_checks(s: Scenario, parties: _Parties) -> Iterator[tuple[Loc, str]]:
    own: dict[str, int] = {}
    for i, profile in enumerate(s.profiles):
        if profile.id in profile_ids():
            yield (
                ("profiles", i, "id"),
                f"{profile.id!r} is a shipped agreement profile: give yours another id",
            )
        elif profile.id in own:
            yield (
                ("profiles", i, "id"),
                f"profile id {profile.id!r} is already used by profiles[{own[profile.id]}]",
            )
        own.setdefault(profile.id, i)
    if s.agreements and "agreement" in s.model_fields_set:
        yield ("agreement",), "give `agreement` (one for all parties) or `agreements`, not both"
    seen: set[str] = set()
    for i, binding in enumerate(s.agreements):
        if binding.id in seen:
            yield ("agreements", i, "id"), f"agreement id {binding.id!r} is used twice"
        seen.add(binding.id)
        for j, party in enumerate(binding.parties):
            yield from parties.check(party, ("agreements", i, "parties", j))
        if len(set(binding.parties)) != len(binding.parties):
            yield ("agreements", i, "parties"), "a party is named twice"
        profile = s.profile_named(binding.profile)
        if profile.kind == "bilateral" and len(binding.parties) != 2:
            yield (
                ("agreements", i, "parties"),
                f"{binding.profile!r} is a bilateral agreement: it binds exactly two parties",
            )
    known = {b.id for b in s.agreements} if s.agreements else {s.agreement.profile}
    for i, inject in enumerate(s.injects):
        named = inject.send.fields.get("agreement")
        if named is not None and named not in known:
            yield (
                ("injects", i, "send", "fields", "agreement"),
                f"no agreement {named!r} in this exercise (there are: {', '.join(sorted(known))})",
            )
    for here, response in _conditioned_responses(s):
        wanted = response.when.agreement if response.when else None
        if wanted is not None and wanted not in known:
            yield (
                (*here, "when", "agreement"),
                f"no agreement {wanted!r} in this exercise (there are: {', '.join(sorted(known))})",
            )


def _conditioned_responses(s: Scenario) -> Iterator[tuple[Loc, Response]]:
    """Each response with a `when`, in named policies and in those written inline."""
    policies: list[tuple[Loc, Policy]] = [
        (("parties", i, "policy"), p.policy)
        for i, p in enumerate(s.parties)
        if isinstance(p.policy, Policy)
    ]
    policies += [(("policies", name), policy) for name, policy in s.policies.items()]
    for here, policy in policies:
        for received, responses in policy.on.items():
            for k, response in enumerate(responses):
                if response.when is not None:
                    yield (*here, "on", received, k), response


def _party_checks(s: Scenario, parties: _Parties) -> Iterator[tuple[Loc, str]]:
    first_at: dict[str, int] = {}
    for i, party in enumerate(s.parties):
        if party.id in first_at:
            yield (
                ("parties", i, "id"),
                f"party id {party.id!r} is already used by parties[{first_at[party.id]}]",
            )
        first_at.setdefault(party.id, i)
        if isinstance(party.policy, str) and party.policy not in s.policies:
            defined = f"defined: {_listing(s.policies)}" if s.policies else "none defined"
            yield (
                ("parties", i, "policy"),
                f"no policy named {party.policy!r} in `policies`"
                f"{_suggest(party.policy, s.policies)} ({defined})",
            )
        if isinstance(party.policy, Policy):
            yield from _policy_parties(party.policy, ("parties", i, "policy"), parties)
    for name, policy in s.policies.items():
        yield from _policy_parties(policy, ("policies", name), parties)


def _opening_checks(s: Scenario) -> Iterator[tuple[Loc, str]]:
    """The record that opens the exercise must fit the one broker message that brings it to
    every party: otherwise no party could start (the run stopped after a minute without a
    report, or as the broker refused it)."""
    recorded = {s.agreement.profile, *(b.profile for b in s.agreements)} - {DEFAULT_PROFILE_ID}
    sizes = {
        "parties": sum(len(p.party().model_dump_json().encode()) + 1 for p in s.parties),
        "keys": sum(
            len(p.id) + 4 + sum(len(o.name.encode()) + 2 + _KEY_BYTES for o in officials)
            for p in s.parties
            for officials in [(p.head, *p.deputies)]
        ),
        "profiles": sum(len(s.profile_named(i).model_dump_json().encode()) for i in recorded),
        "agreements": sum(len(b.model_dump_json().encode()) for b in s.agreements),
    }
    size = sum(sizes.values())
    if size > MAX_OPENING_BYTES:
        where: Loc = ("profiles",) if sizes["profiles"] > size // 2 else ("parties",)
        yield (
            where,
            f"the record that opens the exercise, which every party receives, would take "
            f"{size:,} bytes ({len(s.parties):,} parties with their officials and keys: "
            f"{sizes['parties'] + sizes['keys']:,}; agreement profiles: {sizes['profiles']:,}); "
            f"at most {MAX_OPENING_BYTES:,} fit a broker message: fewer parties or deputies, "
            "or shorter names and profile texts",
        )


def _timeline_checks(s: Scenario, parties: _Parties) -> Iterator[tuple[Loc, str]]:
    end = s.duration
    try:
        s.start + s.duration
    except OverflowError:
        yield ("duration",), "the exercise would end after the year 9999"

    def before_end(offset: timedelta, loc: Loc) -> Iterator[tuple[Loc, str]]:
        if offset >= end:
            yield (
                loc,
                f"{format_duration(offset)} is not before the end of the exercise "
                f"({format_duration(end)})",
            )

    # Injects and generators share one namespace: both name timeline entries.
    seen: dict[str, str] = {}

    def unique(entry_id: str, where: str, loc: Loc) -> Iterator[tuple[Loc, str]]:
        if entry_id in seen:
            yield loc, f"id {entry_id!r} is already used by {seen[entry_id]}"
        seen.setdefault(entry_id, where)

    for i, inject in enumerate(s.injects):
        here: Loc = ("injects", i)
        yield from unique(inject.id, f"injects[{i}]", (*here, "id"))
        yield from parties.check(inject.send.sender, (*here, "send", "from"))
        yield from parties.check(inject.send.recipient, (*here, "send", "to"))
        if inject.at is not None:
            yield from before_end(inject.at, (*here, "at"))
        yield from _field_parties(inject.send.fields, (*here, "send"), parties)
        yield from _follow_up_parties(inject.then, (*here, "then"), parties)

    for i, generator in enumerate(s.generators):
        here = ("generators", i)
        yield from unique(generator.id, f"generators[{i}]", (*here, "id"))
        for key, route in (("from", generator.senders), ("to", generator.recipients)):
            for j, name in enumerate(route):
                # A single party is written without a list, so has no index to point at.
                yield from parties.check(name, (*here, key, j) if len(route) > 1 else (*here, key))
        yield from before_end(generator.start, (*here, "start"))
        yield from _field_parties(generator.send.fields, (*here, "send"), parties)
        yield from _follow_up_parties(generator.then, (*here, "then"), parties)


def _case_checks(s: Scenario) -> Iterator[tuple[Loc, str]]:
    # One set for all lookups: scenarios may hold many thousands of injects.
    named_set = frozenset(i.send.case for i in s.injects)

    def created(case: str) -> bool:
        return case in named_set or any(g.creates(case) for g in s.generators)

    def unknown_case(case: str) -> str:
        named = sorted(named_set)
        ranges = [f"{g.case_id(1)}..{g.case_id(g.count)}" for g in s.generators]
        cases = _listing([*named, *ranges]) or "none"
        return (
            f"no inject or generator creates case {case!r}{_suggest(case, named)} (cases: {cases})"
        )

    for i, inject in enumerate(s.injects):
        watched = inject.when.case if inject.when is not None else None
        if watched is not None and not created(watched):
            yield ("injects", i, "when", "case"), unknown_case(watched)

    def matched(prefix: str) -> bool:
        return any(case.startswith(prefix) for case in named_set) or any(
            g.case_id(n).startswith(prefix) for g in s.generators for n in range(1, g.count + 1)
        )

    # A trainee opens cases under ids of their own choosing, which a policy may answer.
    if not any(p.human for p in s.parties):
        for here, response in _conditioned_responses(s):
            wanted = response.when.case if response.when is not None else None
            if wanted is None:
                continue
            if wanted.endswith("*") and not matched(wanted[:-1]):
                yield (
                    (*here, "when", "case"),
                    unknown_case(wanted).replace("creates case", "creates a case matching", 1),
                )
            elif not wanted.endswith("*") and not created(wanted):
                yield (*here, "when", "case"), unknown_case(wanted)

    first_at: dict[str, int] = {}
    for i, expectation in enumerate(s.expectations):
        if expectation.id in first_at:
            first = first_at[expectation.id]
            yield (
                ("expectations", i, "id"),
                f"id {expectation.id!r} is already used by expectations[{first}]",
            )
        first_at.setdefault(expectation.id, i)
        if expectation.case is not None and not created(expectation.case):
            yield ("expectations", i, "case"), unknown_case(expectation.case)


# Message fields that name a party; they must name one of the scenario's.
_PARTY_FIELDS = ("third_party",)


def _field_parties(
    fields: Mapping[str, Any], here: Loc, parties: _Parties
) -> Iterator[tuple[Loc, str]]:
    for key in _PARTY_FIELDS:
        value = fields.get(key)
        if isinstance(value, str):
            yield from parties.check(value, (*here, "fields", key))


def _follow_up_parties(
    follow_ups: Sequence[FollowUp], here: Loc, parties: _Parties
) -> Iterator[tuple[Loc, str]]:
    for i, follow_up in enumerate(follow_ups):
        yield from _field_parties(follow_up.fields, (*here, i), parties)
        yield from _follow_up_parties(follow_up.then, (*here, i, "then"), parties)


def _policy_parties(policy: Policy, here: Loc, parties: _Parties) -> Iterator[tuple[Loc, str]]:
    for received, responses in policy.on.items():
        yield from _follow_up_parties(responses, (*here, "on", received), parties)
