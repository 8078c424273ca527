"""Identifier types: party, case and message ids, validated before any use.

Party ids end up in MQTT topics, client ids and broker user names, where
`+`, `#`, `/`, NUL or a leading `$` would change meaning (a Mosquitto user
named `x/y` could publish into user `x`'s pattern-ACL topics). Restricting
them to a small ASCII alphabet also rules out confusables and non-NFC forms.
"""

import hashlib
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

PARTY_ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
CASE_ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
MESSAGE_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _anchored(pattern: re.Pattern[str]) -> StringConstraints:
    # Checked by pydantic-core's Rust regex, several times faster than a Python
    # validator on the fold's hot path; there `$` is the end of the text only.
    return StringConstraints(pattern=f"^(?:{pattern.pattern})$")


PartyId = Annotated[str, _anchored(PARTY_ID_PATTERN)]
CaseId = Annotated[str, _anchored(CASE_ID_PATTERN)]
MessageId = Annotated[str, _anchored(MESSAGE_ID_PATTERN)]
LanguageTag = Annotated[str, _anchored(LANGUAGE_PATTERN)]


def explained(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A slower check whose error names what was wrong, for files people write (scenarios)."""

    def check(value: str) -> str:
        # fullmatch: `$` in a Python pattern would also match before a trailing newline.
        if pattern.fullmatch(value) is None:
            raise ValueError(f"{what} {value!r} must match {pattern.pattern}")
        return value

    return AfterValidator(check)


# The umpire's namespace: the ids it gives its own events (the start, the end, elapsed
# deadlines, the controller's actions, rejections) and the messages it sends for the
# scenario (injects, generated cases). A participant's message id may not begin so: a
# message event's id is its message id, and a participant that took one of these would
# make the umpire's own event collide with it in the log.
UMPIRE_ID_PREFIXES = ("exercise-", "umpire-", "control-", "rej-", "inject.", "gen.")


def in_umpire_namespace(message_id: str) -> bool:
    return message_id.startswith(UMPIRE_ID_PREFIXES)


def is_party_id(value: object) -> bool:
    """True when `value` may be used as a party id (and so in a topic)."""
    return isinstance(value, str) and PARTY_ID_PATTERN.fullmatch(value) is not None


def partition_of(case_id: str, partitions: int) -> int:
    """The partition a case belongs to: a stable hash of its id, the same in every process.

    (Python's own `hash` of a string differs between processes, so it cannot be used.)
    """
    if partitions < 1:
        raise ValueError(f"an exercise has at least one partition, not {partitions}")
    digest = hashlib.blake2b(case_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions
