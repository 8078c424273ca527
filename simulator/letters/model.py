"""A letter as data: everything its rendering shows, already in the letter's language."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Block(_Model):
    """One part of the letter's body: a heading (maybe none) over paragraphs or a list."""

    heading: str = ""
    lines: list[str]
    listed: bool = False


class Signatory(_Model):
    name: str
    title: str
    # "head" or "deputy head" in the letter's language; "" for someone who may not sign.
    role: str


SignatureCheck = Literal["verified", "invalid", "unchecked", "paper", "missing", "not_required"]


class Letter(_Model):
    """The official letter a written message stands for."""

    exercise: str
    position: int
    case_id: str
    message_id: str
    message_type: str
    # The message's language, and the template it is shown with ("ru" or "en").
    language: str
    template: str
    time: datetime
    date: str
    # The sender's outgoing number: the case and the case's version of this event.
    reference: str
    # The letter this one answers: its number and date, when it is in the log.
    reply_reference: str | None
    reply_date: str | None
    # The addressee's oral request this one answers (Art. 4.2): it has a date, no number.
    reply_oral_date: str | None = None
    sender_name: str
    # Art. 10: the coordination unit sends and receives the correspondence.
    sender_unit: str
    recipient_name: str
    recipient_unit: str
    title: str
    blocks: list[Block]
    signatory: Signatory | None
    seal: str | None
    check: SignatureCheck
    # The line under the signature: whether the signature verified.
    verification: str
    # Further remarks for the reader (a signatory who may not sign, another language).
    remarks: list[str]

    @property
    def stem(self) -> str:
        """The file name without its suffix: position, case and type, so files sort in order."""
        return letter_stem(self.position, self.case_id, self.message_type)


def letter_stem(position: int, case_id: str, message_type: str) -> str:
    """`00002-energy-1-written_request`; case ids and types are safe in a file name."""
    return f"{position:05d}-{case_id}-{message_type}"
