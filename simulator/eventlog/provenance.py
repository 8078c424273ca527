"""Provenance of an imported log: where it came from, and which key re-signed what.

An import writes a new log, and the new log's checkpoints are signed by the
importing machine's key: whatever the file said, this machine now vouches
for it. So that this never happens silently, the import keeps the source's
own checkpoints (they still vouch for the events they covered, under the
source's key) and records an ImportNote in the store's metadata, which
`log verify` and `log show` print.
"""

from pydantic import BaseModel, ConfigDict, ValidationError

from simulator.eventlog.keys import key_fingerprint


class ImportNote(BaseModel):
    """How a log was imported, as recorded in its metadata (``eventlog.import``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    source: str
    """The file the events came from, as named on the command line."""
    imported_at: str
    resigned_by: str
    """The public key (hex) of the importing machine, which signs this log's own checkpoints."""
    first_position: int
    last_position: int
    source_logs: tuple[str, ...]
    """The log ids the source's checkpoints name (the new log has an id of its own)."""
    source_keys: tuple[str, ...]
    """The keys that signed the source's checkpoints (hex)."""
    source_checkpoints: int
    source_vouched_until: int | None
    """The highest position a source checkpoint vouches for; None without them."""

    def describe(self) -> str:
        """One sentence for people: when, from where, and which key vouches for what."""
        span = (
            f"position {self.first_position}"
            if self.first_position == self.last_position
            else f"positions {self.first_position}–{self.last_position}"
        )
        until = self.source_vouched_until
        if self.source_checkpoints and until is not None:
            keys = ", ".join(key_fingerprint(key) for key in self.source_keys)
            source = (
                f"the source's own {self.source_checkpoints} checkpoints (key {keys}) were kept "
                f"and vouch up to position {until}"
            )
        else:
            source = (
                "it came without the source's checkpoints, so nothing but the re-signing key "
                "vouches for its events"
            )
        return (
            f"imported {self.imported_at} from {self.source}: this machine's key "
            f"{key_fingerprint(self.resigned_by)} re-signed {span} (the log's own checkpoints); "
            f"{source}"
        )

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> "ImportNote":
        """Read a recorded note back; ValueError if it is not one."""
        try:
            return cls.model_validate_json(text, strict=False)
        except ValidationError as exc:
            raise ValueError(f"not an import record ({exc.errors()[0]['msg']})") from exc
