"""The append-only event log: envelope, EventStore interface, SQLite and PostgreSQL backends."""

from simulator.eventlog.checkpoints import CHECKPOINT_DOMAIN, Checkpoint, SignedCheckpoint
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
    JsonlImportError,
    LogError,
    LogNotFoundError,
    NotALogError,
    SigningKeyError,
    StorageError,
    VersionConflict,
)
from simulator.eventlog.jsonl import export_jsonl, import_jsonl
from simulator.eventlog.keys import default_key_path, load_or_create_signing_key, public_key_hex
from simulator.eventlog.postgres import PostgresEventStore
from simulator.eventlog.sqlite import SqliteEventStore
from simulator.eventlog.store import Appended, EventStore, InspectableStore, StoredRow
from simulator.eventlog.upgrade import Upgrader, UpgradeRegistry
from simulator.eventlog.verify import VerifyReport, verify

__all__ = [
    "CHECKPOINT_DOMAIN",
    "EVENT_HASH_DOMAIN",
    "GENESIS_HASH",
    "Appended",
    "Checkpoint",
    "CorruptLogError",
    "DuplicateIdMismatch",
    "Event",
    "EventStore",
    "InspectableStore",
    "JsonlImportError",
    "LogError",
    "LogNotFoundError",
    "NewEvent",
    "NotALogError",
    "PostgresEventStore",
    "SignedCheckpoint",
    "SigningKeyError",
    "SqliteEventStore",
    "StorageError",
    "StoredRow",
    "UpgradeRegistry",
    "Upgrader",
    "VerifyReport",
    "VersionConflict",
    "canonical_bytes",
    "committed_event",
    "compute_hash",
    "default_key_path",
    "export_jsonl",
    "format_time",
    "from_json_line",
    "import_jsonl",
    "load_or_create_signing_key",
    "public_key_hex",
    "to_json_line",
    "verify",
]
