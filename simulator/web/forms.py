"""The messages a seat may send in a case now, and the forms to write them.

"Allowed now" is asked of the protocol itself: each message type is drafted
with harmless content and folded into the case (`apply`); a type the case's
state or the party's role does not allow yields one of the out-of-order
violations. Content defects (a refusal without reasons) do not count here:
they are the trainee's to make, and the umpire's to record.
"""

import enum
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from simulator.projections.milestones import OUT_OF_ORDER
from simulator.protocol import MESSAGE_TYPES, Agreement, Case, Party, apply, parse_message
from simulator.protocol.drafting import DEFAULT_FIELDS, REQUEST_TYPES, draft
from simulator.protocol.messages import Area, RefusalGround

OPENING_TYPES = ("written_request", "oral_request", "offer")
# Filled in for the trainee: who, which case, the reply chain. The seal goes with the signatory.
_ENVELOPE = frozenset(
    {"type", "message_id", "case_id", "sender", "recipient", "in_reply_to", "language", "seal"}
)
_DRAFT_SIGNATURE = "signature"


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    kind: str  # text, lines, checkbox, select, multi, datetime, duration, party, signatory
    label: str
    choices: tuple[str, ...] = ()
    default: str | bool | None = None
    placeholder: str = ""
    required: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "choices": list(self.choices),
            "default": self.default,
            "placeholder": self.placeholder,
            "required": self.required,
        }


@dataclass(frozen=True, slots=True)
class Form:
    kind: str
    title: str
    help: str
    fields: tuple[FormField, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "help": self.help,
            "fields": [f.as_json() for f in self.fields],
        }


def _choices(annotation: Any) -> tuple[str, ...] | None:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return tuple(str(m.value) for m in annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(getattr(a, "value", a)) for a in typing.get_args(annotation))
    return None


def _placeholder(kind: str, name: str) -> str:
    """A hint, marked as one: "e.g. …", the boilerplate of this very message type.

    Not another type's: two types share a field name (`note`), and an acknowledgement
    must not suggest "The request will be executed."
    """
    example = DEFAULT_FIELDS.get(kind, {}).get(name)
    if isinstance(example, list):
        example = "; ".join(str(e) for e in example)
    return f"e.g. {example}" if example else ""


def _field(kind: str, name: str, annotation: Any, default: Any, required: bool) -> FormField:
    label = name.replace("_", " ")
    placeholder = _placeholder(kind, name)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    if name == "grounds":
        return FormField(name, "multi", "grounds (Art. 5.1)", tuple(g.value for g in RefusalGround))
    if name == _DRAFT_SIGNATURE:
        return FormField(name, "signatory", "signed by")
    if name == "third_party":
        return FormField(name, "party", "third party", required=True)
    if name == "confirms":
        return FormField(name, "text", "confirms (oral request id)", required=True)
    choices = _choices(annotation)
    if choices is not None:
        shown = default.value if isinstance(default, enum.Enum) else default
        return FormField(name, "select", label, choices, None if shown is None else str(shown))
    if annotation is bool:
        return FormField(name, "checkbox", label, default=bool(default))
    if annotation is timedelta:
        return FormField(name, "duration", label, placeholder="e.g. P2D or PT6H (ISO 8601)")
    if annotation is datetime or "datetime" in str(annotation).lower():
        return FormField(name, "datetime", label + " (UTC)")
    if typing.get_origin(annotation) is tuple:
        return FormField(name, "lines", label + " (one per line)", placeholder=placeholder)
    return FormField(name, "text", label, placeholder=placeholder, required=required)


def form_for(kind: str) -> Form:
    model = MESSAGE_TYPES[kind]
    fields = []
    for name, info in model.model_fields.items():
        if name in _ENVELOPE:
            continue
        if name == "medium" and kind == "oral_request":
            continue
        fields.append(_field(kind, name, info.annotation, info.default, info.is_required()))
    doc = (model.__doc__ or "").strip().splitlines()
    return Form(kind, kind.replace("_", " "), doc[0] if doc else "", tuple(fields))


FORMS: dict[str, Form] = {kind: form_for(kind) for kind in MESSAGE_TYPES}


def counterpart(case: Case | None, party: str, kind: str, others: Sequence[str]) -> str | None:
    """Whom a message of `kind` from `party` in this case goes to."""
    if case is None:
        return None
    if kind == "results_transfer":
        consented = sorted(case.transfer_consents)
        outside = [p for p in others if p not in (case.requesting, case.requested)]
        chosen = consented or outside
        return chosen[0] if chosen else None
    for one, other in (
        (case.requesting, case.requested),
        (case.requested, case.requesting),
        (case.offered_by, case.offered_to),
        (case.offered_to, case.offered_by),
    ):
        if one == party and other is not None:
            return other
    return None


def _probe_fields(kind: str, case: Case, third: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if kind in REQUEST_TYPES or kind == "offer":
        fields["area"] = case.area or Area.PUBLIC_ORDER.value
    if kind == "written_confirmation":
        fields["confirms"] = case.oral_request_id or "probe.0"
    if kind in ("transfer_consent_request", "transfer_consent"):
        fields["third_party"] = third or "probe"
    return fields


# A refusal is offered where either scope is allowed: in execution only a
# partial one is (Art. 5.1), and the trainee picks the scope in the form.
_PROBE_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "refusal": ({}, {"scope": "partial", "refused_parts": ["probe"]}),
}


def allowed_now(
    case: Case, party: Party, parties: Mapping[str, Party], agreement: Agreement, at: datetime
) -> list[str]:
    """Message types the procedure lets `party` send in `case` at `at`, in the types' order."""
    others = sorted(p for p in parties if p != party.id)
    outside = [p for p in others if p not in (case.requesting, case.requested)]
    allowed = []
    for kind in MESSAGE_TYPES:
        recipient = counterpart(case, party.id, kind, others)
        if recipient is None or recipient not in parties:
            continue
        fields = _probe_fields(kind, case, outside[0] if outside else None)
        for variant in _PROBE_VARIANTS.get(kind, ({},)):
            drafted = draft(
                kind,
                message_id="probe.1",
                case_id=case.case_id,
                sender=party,
                recipient=parties[recipient],
                fields={**fields, **variant},
            )
            try:
                message = parse_message(drafted)
            except ValidationError:
                continue
            _, found = apply(case, message, at, agreement)
            if not any(v.rule_id in OUT_OF_ORDER for v in found):
                allowed.append(kind)
                break
    return allowed


class FormError(ValueError):
    """What the trainee wrote cannot be a message at all; the text says which field."""


def json_kind(value: object) -> str:
    """What a JSON value is, in the words a person reading the refusal knows."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "text"


def _shape_problems(form: Form, values: Mapping[str, Any]) -> list[str]:
    """What in `values` is not as the form sends it: fields it has not, or values that are
    not text (a list of text for a multiple choice; a checkbox may say true or false).

    Taken as they came, `null` had been recorded as the text "None", an object as its
    Python repr and a list as its first line; a misspelt field dropped without a word.
    """
    kinds = {item.name: item.kind for item in form.fields}
    problems = [
        f"the {form.title} form has no field {name!r} (its fields: {', '.join(kinds)})"
        for name in values
        if name not in kinds
    ]
    for name, value in values.items():
        kind = kinds.get(name)
        if kind is None or isinstance(value, str):
            continue
        if kind == "multi":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{name}: must be a list of text, not {json_kind(value)}")
        elif not (kind == "checkbox" and isinstance(value, bool)):
            problems.append(f"{name}: must be text, not {json_kind(value)}")
    return problems


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name, "")
    return value if isinstance(value, str) else str(value).lower()


def message_from_form(
    kind: str,
    values: Mapping[str, Any],
    *,
    sender: Party,
    recipient: Party,
    case_id: str,
    message_id: str,
    in_reply_to: str | None,
) -> dict[str, Any]:
    """The message a filled-in form stands for, exactly as written: no blank is filled in."""
    if kind not in FORMS:
        raise FormError(f"{kind!r} is not a message type")
    if misshapen := _shape_problems(FORMS[kind], values):
        raise FormError("; ".join(misshapen[:5]))
    fields: dict[str, Any] = {}
    for item in FORMS[kind].fields:
        raw = values.get(item.name)
        if item.kind == "checkbox":
            fields[item.name] = _text(values, item.name) in ("on", "true", "1")
        elif item.kind == "multi":
            chosen = raw if isinstance(raw, list) else ([raw] if raw else [])
            fields[item.name] = [str(c) for c in chosen if str(c).strip()]
        elif item.kind == "lines":
            text = _text(values, item.name)
            fields[item.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif item.kind == "signatory":
            name = _text(values, item.name)
            signer = next(
                (o for o in (sender.head, *sender.deputies) if o.name == name and name), None
            )
            fields[item.name] = (
                None if signer is None else {"name": signer.name, "title": signer.title}
            )
        elif item.kind in ("datetime", "duration", "select", "party"):
            text = _text(values, item.name).strip()
            if text:
                fields[item.name] = text + (
                    "Z" if item.kind == "datetime" and len(text) <= 16 else ""
                )
            elif item.kind == "party":
                fields[item.name] = ""
        else:
            fields[item.name] = _text(values, item.name)
    message = draft(
        kind,
        message_id=message_id,
        case_id=case_id,
        sender=sender,
        recipient=recipient,
        fields=fields,
        in_reply_to=in_reply_to,
    )
    if "signature" in fields and fields["signature"] is None:
        message["seal"] = None
    try:
        parse_message(message)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or kind}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise FormError(problems) from None
    return message
