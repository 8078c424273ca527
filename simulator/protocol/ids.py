"""Identifier types: party, case and message ids, validated before any use.

Party ids end up in MQTT topics, client ids and broker user names, where
`+`, `#`, `/`, NUL or a leading `$` would change meaning (a Mosquitto user
named `x/y` could publish into user `x`'s pattern-ACL topics). Restricting
them to a small ASCII alphabet also rules out confusables and non-NFC forms.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

PARTY_ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
CASE_ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
MESSAGE_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _checker(pattern: re.Pattern[str], what: str) -> "AfterValidator":
    # fullmatch, not `^...$`: `$` also matches before a trailing newline.
    def check(value: str) -> str:
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise ValueError(f"{what} {value!r} must match {pattern.pattern}")
        return value

    return AfterValidator(check)


PartyId = Annotated[str, _checker(PARTY_ID_PATTERN, "party id")]
CaseId = Annotated[str, _checker(CASE_ID_PATTERN, "case id")]
MessageId = Annotated[str, _checker(MESSAGE_ID_PATTERN, "message id")]
LanguageTag = Annotated[str, _checker(LANGUAGE_PATTERN, "language tag")]


def is_party_id(value: object) -> bool:
    """True when `value` may be used as a party id (and so in a topic)."""
    return isinstance(value, str) and PARTY_ID_PATTERN.fullmatch(value) is not None
