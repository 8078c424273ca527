"""The conversations a load run drives: whole Article 4-6 cases, step by step, as pure data.

Each path is the sequence of message types of one case and who sends each
(the requesting or the requested party). A step is sent once the party
whose turn it is has seen the previous step committed, so the load is made
of real conversations that the umpire folds and checks like any other.
Every path ends in a terminal state without a violation (checked by a test
that runs each path through the sequencer).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.errors import InputError
from simulator.protocol import Party
from simulator.protocol.drafting import draft
from simulator.protocol.parties import Official

Side = Literal["requesting", "requested"]

# path name -> steps (message type, sender side, extra fields)
PATHS: dict[str, tuple[tuple[str, Side, dict[str, Any]], ...]] = {
    # Art. 4 request, 6.4 results.
    "accepted": (
        ("written_request", "requesting", {}),
        ("acceptance", "requested", {}),
        ("results", "requested", {}),
    ),
    # Art. 5.2: conditions proposed and accepted, then executed.
    "consultation": (
        ("written_request", "requesting", {}),
        ("consultation", "requested", {}),
        ("conditions_accepted", "requesting", {}),
        ("results", "requested", {}),
    ),
    # Art. 5.2 then 5.1/5.3: consulted first, conditions rejected, refused in full.
    "refusal_full": (
        ("written_request", "requesting", {}),
        ("consultation", "requested", {}),
        ("conditions_rejected", "requesting", {}),
        ("refusal", "requested", {"scope": "full"}),
    ),
    # Art. 5.3 and 6.4: part refused (after consultation), the rest executed.
    "refusal_partial": (
        ("written_request", "requesting", {}),
        ("consultation", "requested", {}),
        ("conditions_rejected", "requesting", {}),
        ("refusal", "requested", {"scope": "partial", "refused_parts": ["part-b"]}),
        ("results", "requested", {"partial": True}),
    ),
    # Art. 6.2: additional information asked for and given during execution.
    "information": (
        ("written_request", "requesting", {}),
        ("acceptance", "requested", {}),
        ("information_request", "requested", {}),
        ("additional_information", "requesting", {}),
        ("results", "requested", {}),
    ),
    # Art. 4.2: an urgent oral request, confirmed in writing, then executed.
    "oral": (
        ("oral_request", "requesting", {"urgent": True}),
        ("written_confirmation", "requesting", {"urgent": True}),
        ("acceptance", "requested", {}),
        ("results", "requested", {}),
    ),
}

REQUEST_BODY: dict[str, Any] = {
    "area": "public_order",
    "essence": "A procedural load-test case.",
    "purpose": "To measure the message flow.",
    "justification": "Article 2 cooperation.",
    "assistance_sought": "Exchange of regulatory texts.",
    "parts": ["part-a", "part-b"],
}


class Mix(BaseModel):
    """Shares of the paths (any non-negative weights; they are normalised)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accepted: float = Field(default=0.4, ge=0, allow_inf_nan=False)
    consultation: float = Field(default=0.2, ge=0, allow_inf_nan=False)
    refusal_full: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    refusal_partial: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    information: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    oral: float = Field(default=0.1, ge=0, allow_inf_nan=False)

    def shares(self) -> dict[str, float]:
        weights = self.model_dump()
        total = sum(weights.values())
        if total <= 0:
            raise InputError("the mix gives no path a share above 0")
        if not math.isfinite(total):
            # 1e308 and 1e308: each finite, their sum not, and every share NaN.
            raise InputError("the mix's shares add up past what a number holds: scale them down")
        return {name: w / total for name, w in weights.items()}

    def messages_per_case(self) -> float:
        return sum(share * len(PATHS[name]) for name, share in self.shares().items())


def load_mix(path: Path) -> Mix:
    """A mix from a YAML or JSON file of `path: share` lines; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--mix {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--mix {path}: not YAML or JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--mix {path}: not text (byte {exc.start} is not UTF-8)") from None
    if not isinstance(data, Mapping):
        raise InputError(f"--mix {path}: expected a mapping of path names to shares")
    # Paths left out of the file get no share, rather than a default one.
    given = dict.fromkeys(PATHS, 0.0) | dict(data)
    try:
        mix = Mix.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"--mix {path}: {problems} (paths: {', '.join(PATHS)})") from None
    mix.shares()
    return mix


def load_party(party_id: str) -> Party:
    """A fictional agency for load runs, complete enough that requests break no rule."""
    return Party(
        id=party_id,
        name=f"Agency {party_id}",
        head=Official(name=f"Head of {party_id}", title="Head"),
        deputies=(Official(name=f"Deputy of {party_id}", title="Deputy"),),
        seal=f"seal-{party_id}",
        coordination_unit=f"Coordination unit of {party_id}",
    )


@dataclass(slots=True)
class Conversation:
    """One case in flight: its path, its parties and how far it has got."""

    case_id: str
    path: str
    requesting: Party
    requested: Party
    padding: str = ""
    step: int = 0
    # Its number in its generator (`ledger.CaseLedger`) and when it was due to start.
    number: int = 0
    started: float = 0.0

    @property
    def steps(self) -> int:
        return len(PATHS[self.path])

    def message_id(self, step: int) -> str:
        return f"{self.case_id}.{step}"

    def sender(self, step: int) -> Party:
        side = PATHS[self.path][step][1]
        return self.requesting if side == "requesting" else self.requested

    def recipient(self, step: int) -> Party:
        side = PATHS[self.path][step][1]
        return self.requested if side == "requesting" else self.requesting

    def message(self, step: int) -> dict[str, Any]:
        kind, _, extra = PATHS[self.path][step]
        fields: dict[str, Any] = dict(extra)
        if kind in ("written_request", "oral_request", "written_confirmation"):
            fields.update(REQUEST_BODY)
            if self.padding:
                # --payload-bytes: free text the protocol allows, to size the message.
                fields["other_information"] = self.padding
        if kind == "written_confirmation":
            fields["confirms"] = self.message_id(0)
        return draft(
            kind,
            message_id=self.message_id(step),
            case_id=self.case_id,
            sender=self.sender(step),
            recipient=self.recipient(step),
            fields=fields,
            in_reply_to=self.message_id(step - 1) if step else None,
        )


__all__ = ["PATHS", "Conversation", "Mix", "load_mix", "load_party"]
