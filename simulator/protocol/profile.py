"""Agreement profiles: what the umpire enforces under one assistance agreement, as data.

A profile names the agreement, the parties it binds, its areas of
cooperation, its grounds for refusal, its working languages, its fixed and
its exercise-set deadlines, who may sign, the coordination units, and for
every rule of the rule book the article it cites in that agreement's
numbering. The shipped profiles are YAML files in `profiles/`; `default` is
the cooperation agreement of 19 November 2020 the simulator was built on.

Reading a shipped profile is reading package data that ships with the code,
once per process: no file a user names, nothing that differs between runs;
so it stays in the pure protocol, where the case fold needs it.
"""

import functools
import importlib.resources
import unicodedata
from datetime import timedelta
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from simulator.protocol.ids import LanguageTag
from simulator.protocol.messages import Area
from simulator.protocol.rules import RULES, RULES_BY_ID, Rule, Violation

DEFAULT_PROFILE_ID = "default"
ProfileId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


# The longest a deadline may be: the scenario's longest duration (100 years), so that an
# instant of an exercise plus any deadline stays a date the runtime can represent.
LONGEST_DEADLINE = timedelta(days=36_525)


def _with_unit(value: object) -> object:
    # pydantic reads a bare number as seconds; a profile's reader could as well mean days.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} has no unit: write an ISO 8601 duration like 'P3D' or 'PT12H'")
    return value


def _keepable(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("a deadline must be longer than 0 seconds")
    if value.microseconds:
        raise ValueError("a deadline is counted in whole seconds")
    if value > LONGEST_DEADLINE:
        raise ValueError(f"a deadline is at most {LONGEST_DEADLINE.days} days")
    return value


TimeLimit = Annotated[timedelta, BeforeValidator(_with_unit), AfterValidator(_keepable)]
"""A time limit of an agreement: whole seconds, above 0, at most 100 years, with a unit."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(_Model):
    """How one rule reads under the agreement: the article, and its own wording if it differs."""

    article: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description='The article the rule cites, in this agreement\'s numbering ("—": none).'
    )
    summary: Text | None = Field(
        default=None, description="The rule in this agreement's words, where they differ."
    )


class BoundParty(_Model):
    """A signatory of the agreement as the text names it, and its coordination units."""

    name: Text = Field(description="The signatory as the agreement's text names it.")
    coordination_units: tuple[Text, ...] = Field(
        min_length=1, description="The units that send and receive for it."
    )


class Deadlines(_Model):
    """The agreement's time limits: fixed by its text, or left to the exercise."""

    # Fixed by the text (Art. 4.2 of the default: "no more than 3 days later").
    written_confirmation: TimeLimit = Field(
        description="How soon an oral request is confirmed in writing."
    )
    written_confirmation_article: str = Field(description="The article that fixes it.")
    # Left to the exercise; these are the defaults a scenario may change.
    promptly: TimeLimit = Field(description='"Promptly" for impediments, unless the scenario says.')
    as_soon_as_possible: TimeLimit = Field(
        description='"As soon as possible" for results, unless the scenario says.'
    )


class AgreementProfile(_Model):
    id: ProfileId = Field(description="The profile's id, [a-z0-9-]; scenarios name it.")
    title: Text = Field(description="The agreement's full title.")
    short_title: Annotated[str, Field(min_length=1, max_length=120)] = Field(
        description="A short name, for sentences and headings."
    )
    kind: Literal["bilateral", "multilateral"] = Field(
        description="bilateral: it binds two parties; multilateral: two or more."
    )
    signed: Text = Field(description="Where and when it was signed.")
    source: Text = Field(description="Where its text comes from.")
    parties: tuple[BoundParty, ...] = Field(
        min_length=2, description="Its signatories as the text names them."
    )
    scope_article: str = Field(description="The article on who cooperates under it.")
    areas_article: str = Field(description="The article listing the areas of cooperation.")
    areas: dict[str, Text] = Field(
        min_length=1, description="The areas of cooperation it covers, by the simulator's ids."
    )
    refusal_article: str = Field(description="The article listing the grounds for refusal.")
    refusal_grounds: dict[str, Text] = Field(
        min_length=1, description="The grounds on which assistance may be refused, by id."
    )
    languages_article: str = Field(description="The article on working languages.")
    languages: tuple[LanguageTag, ...] = Field(
        min_length=1, description="Its working languages; an exercise works in one of them."
    )
    signatories: tuple[Literal["head", "deputy"], ...] = Field(
        min_length=1, description="Who may sign a written request: head, deputy."
    )
    signatories_article: str = Field(description="The article on who signs.")
    deadlines: Deadlines = Field(description="Its time limits.")
    rules: dict[str, Citation] = Field(
        description="Every rule of the rule book, with the article it cites here."
    )

    @field_validator("refusal_grounds")
    @classmethod
    def _grounds_distinct_as_logged(cls, grounds: dict[str, str]) -> dict[str, str]:
        # The log keeps text as NFC: two spellings of one id would be one key there.
        ids = [unicodedata.normalize("NFC", ground) for ground in grounds]
        twice = sorted({ground for ground in ids if ids.count(ground) > 1})
        if twice:
            raise ValueError(
                f"{', '.join(map(repr, twice))} is given twice, in two Unicode spellings of "
                "one id: write it once"
            )
        return grounds

    @model_validator(mode="after")
    def _fits_the_rule_book(self) -> "AgreementProfile":
        if self.kind == "bilateral" and len(self.parties) != 2:
            raise ValueError(f"profile {self.id!r}: a bilateral agreement binds two parties")
        # A message names its area from a closed list (messages.Area) so that every party
        # reads it the same way; a profile chooses among them.
        strange = sorted(set(self.areas) - {a.value for a in Area})
        if strange:
            raise ValueError(
                f"profile {self.id!r}: {', '.join(map(repr, strange))} is not an area of "
                f"cooperation the simulator knows; the areas are: "
                f"{', '.join(a.value for a in Area)}"
            )
        missing = sorted(set(RULES_BY_ID) - set(self.rules))
        unknown = sorted(set(self.rules) - set(RULES_BY_ID))
        if missing or unknown:
            raise ValueError(
                f"profile {self.id!r} must cite every rule of the rule book once: "
                f"missing {missing}, unknown {unknown}"
            )
        return self

    def article(self, rule: Rule) -> str:
        return self.rules[rule.id].article

    def rule(self, rule: Rule) -> Rule:
        """The rule as this agreement reads it: its article, and its wording where given."""
        citation = self.rules[rule.id]
        return Rule(rule.id, citation.article, rule.severity, citation.summary or rule.summary)

    def rule_book(self) -> tuple[Rule, ...]:
        return tuple(self.rule(rule) for rule in RULES)

    def cite(self, violation: Violation) -> Violation:
        """`violation` citing this agreement's article for its rule."""
        article = self.rules[violation.rule_id].article
        if article == violation.article:
            return violation
        return Violation(
            violation.rule_id,
            article,
            violation.severity,
            violation.detail,
            violation.case_id,
            violation.message_id,
            violation.party,
        )


def describe_window(window: timedelta) -> str:
    """A fixed time limit as an agreement says it: "3 days", "1 day", "24 hours"."""
    if window % timedelta(days=1) == timedelta(0):
        days = window // timedelta(days=1)
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{window / timedelta(hours=1):g} hours"


def _directory() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("simulator.protocol").joinpath("profiles")


@functools.cache
def profile_ids() -> tuple[str, ...]:
    """The shipped profiles, `default` first."""
    names = sorted(
        p.name.removesuffix(".yaml") for p in _directory().iterdir() if p.name.endswith(".yaml")
    )
    return (DEFAULT_PROFILE_ID, *(n for n in names if n != DEFAULT_PROFILE_ID))


@functools.cache
def load_profile(profile_id: str) -> AgreementProfile:
    """A shipped profile by id; KeyError names the ones there are."""
    if profile_id not in profile_ids():
        known = ", ".join(profile_ids())
        raise KeyError(f"no agreement profile {profile_id!r}; there are: {known}")
    text = _directory().joinpath(f"{profile_id}.yaml").read_text(encoding="utf-8")
    profile = AgreementProfile.model_validate(yaml.safe_load(text))
    if profile.id != profile_id:
        raise ValueError(f"profiles/{profile_id}.yaml says its id is {profile.id!r}")
    return profile


def default_profile() -> AgreementProfile:
    return load_profile(DEFAULT_PROFILE_ID)
