"""Parties to the agreement: head, deputies, seal and coordination unit."""

import unicodedata
from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.protocol.ids import LanguageTag, PartyId


class Official(BaseModel):
    """A person who may sign for a party (Art. 4.4): its head or a deputy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=200)


class Party(BaseModel):
    """An agency bound by the agreement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PartyId
    name: str = Field(min_length=1, max_length=300)
    language: LanguageTag = "ru"
    head: Official
    deputies: tuple[Official, ...] = Field(min_length=1)
    seal: str = Field(min_length=1, max_length=200, description="The seal's identifier.")
    coordination_unit: str = Field(
        min_length=1, max_length=300, description="Art. 10: the unit that sends and receives."
    )

    @model_validator(mode="after")
    def _signatories_distinct(self) -> "Party":
        # Compared as the log keeps text (NFC): two spellings of one name are one person
        # there, and the record of the officials' keys holds each name once.
        names = [unicodedata.normalize("NFC", o.name) for o in (self.head, *self.deputies)]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"party {self.id!r}: head and deputies must be different people "
                f"({', '.join(repr(name) + ' twice' for name in twice)})"
            )
        return self

    def may_sign(self, name: str, kinds: Collection[str] = ("head", "deputy")) -> bool:
        """Art. 4.4: only the head or a deputy signs a written request.

        `kinds` are who the agreement lets sign (its profile's `signatories`): some
        agreements let only the head sign.
        """
        if name == self.head.name:
            return "head" in kinds
        return "deputy" in kinds and any(d.name == name for d in self.deputies)
