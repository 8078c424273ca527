"""The append-only event log: envelope, EventStore interface, SQLite and PostgreSQL backends."""

from typing import TYPE_CHECKING, Any

from simulator.eventlog.checkpoints import (
    CHECKPOINT_DOMAIN,
    CHECKPOINT_DOMAIN_V2,
    Checkpoint,
    SignedCheckpoint,
)
from simulator.eventlog.envelope import (
    EVENT_HASH_DOMAIN,
    GENESIS_HASH,
    Event,
    NewEvent,
    canonical_bytes,
    committed_event,
    compute_hash,
    format_time,
    from_json_line,
    to_json_line,
)
from simulator.eventlog.errors import (
    CorruptLogError,
    DuplicateIdMismatch,
    FencedError,
    JsonlImportError,
    LogBusyError,
    LogError,
    LogNotFoundError,
    NotALogError,
    SettingsError,
    SigningKeyError,
    StorageError,
    VersionConflict,
)
from simulator.eventlog.jsonl import (
    export_checkpoints,
    export_jsonl,
    import_jsonl,
    read_checkpoints,
    record_provenance,
)
from simulator.eventlog.keys import (
    default_key_path,
    key_fingerprint,
    load_or_create_signing_key,
    parse_public_key,
    public_key_hex,
    public_key_pem,
    read_public_key,
)
from simulator.eventlog.merged import MergedLog
from simulator.eventlog.provenance import ImportNote
from simulator.eventlog.settings import CheckpointSettings
from simulator.eventlog.sqlite import SqliteEventStore
from simulator.eventlog.store import Appended, EventStore, InspectableStore, StoredRow
from simulator.eventlog.upgrade import Upgrader, UpgradeRegistry
from simulator.eventlog.verify import KeyUse, VerifyReport, verify
from simulator.eventlog.witness import Witness, open_witness

if TYPE_CHECKING:
    from simulator.eventlog.postgres import PostgresEventStore
    from simulator.eventlog.witness_postgres import create_witness


def __getattr__(name: str) -> Any:
    # PostgreSQL's backend, on first use: psycopg takes a tenth of a second to import,
    # which every command on a SQLite log (and every simulated run) would pay.
    if name == "PostgresEventStore":
        from simulator.eventlog.postgres import PostgresEventStore  # noqa: PLC0415

        return PostgresEventStore
    if name == "create_witness":
        from simulator.eventlog.witness_postgres import create_witness  # noqa: PLC0415

        return create_witness
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKPOINT_DOMAIN",
    "CHECKPOINT_DOMAIN_V2",
    "EVENT_HASH_DOMAIN",
    "GENESIS_HASH",
    "Appended",
    "Checkpoint",
    "CheckpointSettings",
    "CorruptLogError",
    "DuplicateIdMismatch",
    "Event",
    "EventStore",
    "FencedError",
    "ImportNote",
    "InspectableStore",
    "JsonlImportError",
    "KeyUse",
    "LogBusyError",
    "LogError",
    "LogNotFoundError",
    "MergedLog",
    "NewEvent",
    "NotALogError",
    "PostgresEventStore",
    "SettingsError",
    "SignedCheckpoint",
    "SigningKeyError",
    "SqliteEventStore",
    "StorageError",
    "StoredRow",
    "UpgradeRegistry",
    "Upgrader",
    "VerifyReport",
    "VersionConflict",
    "Witness",
    "canonical_bytes",
    "committed_event",
    "compute_hash",
    "create_witness",
    "default_key_path",
    "export_checkpoints",
    "export_jsonl",
    "format_time",
    "from_json_line",
    "import_jsonl",
    "key_fingerprint",
    "load_or_create_signing_key",
    "open_witness",
    "parse_public_key",
    "public_key_hex",
    "public_key_pem",
    "read_checkpoints",
    "read_public_key",
    "record_provenance",
    "to_json_line",
    "verify",
]
