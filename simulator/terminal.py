"""Words from a participant or a scenario, made safe to print on a person's terminal.

A terminal acts on what it is sent: ESC and the C1 controls start sequences
that set its title, clear its screen, draw hyperlinks or answer back; BEL,
backspace and a carriage return move or overwrite what is shown; bidi
overrides turn the rest of a line around. None of that is the words of a
message, and a controller's terminal must not be driven by a trainee's seat:
`visible` writes each such character as an escape (`\\x1b`, `\\u202e`), so it
is seen, not obeyed.
"""

import re

__all__ = ["visible"]

# C0 (but tab and newline, which the callers fold or lay out), DEL and C1; the bidi
# embeddings, overrides and isolates (U+202A-E, U+2066-9) of "Trojan Source"; and
# invisible characters that have no place in a message (zero-width space, word joiner,
# byte order mark). Zero-width (non-)joiners stay: some scripts and emoji need them.
_UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every character a terminal would act on, or hide, written as an escape."""
    return _UNSEEN.sub(_escape, text)
