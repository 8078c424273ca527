"""What the event log refuses or cannot do, one class per way it goes wrong.

    LogError                  root: anything raised by simulator.eventlog
    ├── VersionConflict       a case moved on since the writer last read it
    ├── DuplicateIdMismatch   an event id came back with different content
    ├── LogNotFoundError      there is no log where one was expected
    ├── NotALogError          a path or schema holds something that is not an event log
    ├── CorruptLogError       an event log that is damaged or tampered with
    ├── StorageError          the database failed (I/O error, disk full, busy too long)
    ├── LogBusyError          another process is writing the log (its writer's claim)
    ├── SigningKeyError       the checkpoint signing key is unusable or not this log's
    ├── SettingsError         a checkpoint setting (from the environment) is invalid
    └── JsonlImportError      a JSON Lines file that cannot be imported as it stands

They are plain Exception subclasses so that the project's error root can adopt
them later; each carries the attributes a caller needs to act on it.
"""


class LogError(Exception):
    """Root of every error raised by the event log."""


class VersionConflict(LogError):
    """The case's current version is not the one the writer expected."""

    def __init__(self, case_id: str, expected: int, actual: int, event_id: str) -> None:
        self.case_id = case_id
        self.expected = expected
        self.actual = actual
        self.event_id = event_id
        super().__init__(
            f"case {case_id!r} is at version {actual}, but event {event_id!r} expected "
            f"version {expected}; reload the case and decide again"
        )


class DuplicateIdMismatch(LogError):
    """An event id that is already taken arrived with different content."""

    def __init__(self, event_id: str, position: int, fields: tuple[str, ...]) -> None:
        self.event_id = event_id
        self.position = position
        self.fields = fields
        super().__init__(
            f"event id {event_id!r} is already used at position {position} by an event "
            f"whose {', '.join(fields)} differ; an id names exactly one event"
        )


class LogNotFoundError(LogError):
    """Nothing exists where a log was expected, and creating one was not allowed."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: no event log here")


class NotALogError(LogError):
    """The location holds something else; it was left exactly as it was."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: not an event log ({reason}); it was not modified")


class CorruptLogError(LogError):
    """An event log whose stored content fails its own checks."""

    def __init__(self, path: str, reason: str, position: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{path}: corrupt event log{where}: {reason}")


class StorageError(LogError):
    """The database refused or failed an operation; nothing was half-written."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class LogBusyError(LogError):
    """Another process holds the log's writer claim: a run is still writing it."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path}: a run is still writing this log ({holder}); a second writer would "
            "interleave its events with that run's: stop it (simulator control stop) or "
            "let it end first"
        )


class FencedError(LogError):
    """Another writer has claimed the log since this one did: this one must stop writing."""

    def __init__(self, path: str, owner: str, current: str | None) -> None:
        self.owner = owner
        self.current = current
        super().__init__(
            f"{path}: this writer ({owner}) no longer owns the log: "
            f"{current or 'nobody'} claimed it since; nothing was written"
        )


class SigningKeyError(LogError):
    """The checkpoint signing key cannot be used for this log."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SettingsError(LogError):
    """A checkpoint setting is invalid; ``name`` is the environment variable or argument."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class JsonlImportError(LogError):
    """A line of a JSON Lines import is unreadable or does not continue the chain."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        self.reason = reason
        super().__init__(f"line {line}: {reason}")


def format_problem(recorded: str | None, expected: str) -> str:
    """What is wrong with a log's format record: missing, or another version's."""
    if recorded is None:
        return "marked as an event log but its format record is missing"
    return (
        f"marked as an event log but its format record says {recorded!r}, not {expected!r} "
        "(another version's log, or an edited one)"
    )
