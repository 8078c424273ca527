"""The agreement in force for an exercise: its profile, its parties and its settings.

"Promptly" (Art. 6.1) and "as soon as possible" (Art. 6.4) are not fixed by
the text, so each exercise sets them; the 3 days of Art. 4.2 are fixed, by
the agreement's profile (protocol/profile.py).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from simulator.protocol.ids import LanguageTag
from simulator.protocol.parties import Party
from simulator.protocol.profile import AgreementProfile, default_profile

# Art. 4.2 of the default agreement: "no more than 3 days later they must be confirmed in
# writing". Other agreements fix their own window: `Agreement.profile.deadlines`.
WRITTEN_CONFIRMATION_WINDOW = default_profile().deadlines.written_confirmation


class AgreementSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    promptly: timedelta = Field(default=timedelta(days=1), gt=timedelta(0))
    as_soon_as_possible: timedelta = Field(default=timedelta(days=10), gt=timedelta(0))
    working_language: LanguageTag = "ru"


class SignatureStatus(StrEnum):
    """What checking a signed message's signature found."""

    VALID = "valid"
    INVALID = "invalid"  # forged or altered
    UNCHECKED = "unchecked"  # no key to check it with, or nothing to check


# Checking a signature is pure computation over the message and public keys
# the exercise holds, so it is injected rather than done here.
SignatureVerifier = Callable[[object], SignatureStatus]


def _unchecked(_message: object) -> SignatureStatus:
    return SignatureStatus.UNCHECKED


@dataclass(frozen=True, slots=True)
class Agreement:
    parties: Mapping[str, Party]
    settings: AgreementSettings = field(default_factory=AgreementSettings)
    verify_signature: SignatureVerifier = _unchecked
    profile: AgreementProfile = field(default_factory=default_profile)

    @classmethod
    def of(
        cls,
        parties: list[Party] | tuple[Party, ...],
        settings: AgreementSettings | None = None,
        verify_signature: SignatureVerifier = _unchecked,
        profile: AgreementProfile | None = None,
    ) -> "Agreement":
        by_id = {p.id: p for p in parties}
        if len(by_id) != len(parties):
            raise ValueError("party ids must be unique")
        return cls(
            by_id, settings or AgreementSettings(), verify_signature, profile or default_profile()
        )
