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
# What an exercise leaves unsaid is the default agreement's: its profile says it once.
_DEFAULT = default_profile()


class AgreementSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    promptly: timedelta = Field(default=_DEFAULT.deadlines.promptly, gt=timedelta(0))
    as_soon_as_possible: timedelta = Field(
        default=_DEFAULT.deadlines.as_soon_as_possible, gt=timedelta(0)
    )
    working_language: LanguageTag = _DEFAULT.languages[0]


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
class Binding:
    """One of several agreements in an exercise: which parties it binds, on what terms."""

    id: str
    profile: AgreementProfile
    settings: AgreementSettings
    parties: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Agreement:
    """What an exercise's umpire enforces.

    With no `bindings`, one agreement binds every party (`profile`, `settings`).
    With bindings, each case is under the one its request names, or else the
    first of them that binds both its parties (`binding_between`), and is
    folded under that one's profile and settings (`under`); `profile` and
    `settings` are then the first binding's.
    """

    parties: Mapping[str, Party]
    settings: AgreementSettings = field(default_factory=AgreementSettings)
    verify_signature: SignatureVerifier = _unchecked
    profile: AgreementProfile = field(default_factory=default_profile)
    bindings: tuple[Binding, ...] = ()
    # The agreement as each binding sees it, made once: folding a message asks for it.
    _views: dict[str, "Agreement"] = field(default_factory=dict, compare=False, repr=False)

    def binding_between(self, one: str, other: str) -> Binding | None:
        """The first agreement that binds both parties, if any."""
        for binding in self.bindings:
            if one in binding.parties and other in binding.parties:
                return binding
        return None

    def first_binding_of(self, party: str) -> Binding | None:
        return next((b for b in self.bindings if party in b.parties), None)

    def under(self, binding_id: str | None) -> "Agreement":
        """This exercise's agreement as a case under the binding `binding_id` is folded."""
        if binding_id is None or not self.bindings:
            return self
        view = self._views.get(binding_id)
        if view is None:
            binding = next(b for b in self.bindings if b.id == binding_id)
            view = self._views[binding_id] = Agreement(
                self.parties, binding.settings, self.verify_signature, binding.profile
            )
        return view

    @classmethod
    def of(
        cls,
        parties: list[Party] | tuple[Party, ...],
        settings: AgreementSettings | None = None,
        verify_signature: SignatureVerifier = _unchecked,
        profile: AgreementProfile | None = None,
        bindings: tuple[Binding, ...] = (),
    ) -> "Agreement":
        by_id = {p.id: p for p in parties}
        if len(by_id) != len(parties):
            raise ValueError("party ids must be unique")
        if len({b.id for b in bindings}) != len(bindings):
            raise ValueError("agreement ids must be unique")
        if bindings:
            settings, profile = bindings[0].settings, bindings[0].profile
        return cls(
            by_id,
            settings or AgreementSettings(),
            verify_signature,
            profile or default_profile(),
            bindings,
        )
