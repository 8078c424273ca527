"""Signed checkpoints and their key: domain-separated signatures, a 0600 key file, torn lines."""

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.eventlog import (
    SigningKeyError,
    SqliteEventStore,
    default_key_path,
    load_or_create_signing_key,
    public_key_hex,
    verify,
)
from simulator.eventlog.checkpoints import (
    Checkpoint,
    CheckpointFile,
    SignedCheckpoint,
    sign_checkpoint,
)
from simulator.eventlog.envelope import GENESIS_HASH

from .helpers import now, proposals

CHECKPOINT = Checkpoint("log-1", 10, "ab" * 32, "2026-11-22T09:00:00.000000Z")


def test_the_key_is_created_0600_in_the_configured_directory(key_dir: Path) -> None:
    """The first use creates an Ed25519 key file readable by its owner only; later uses load it."""
    first = load_or_create_signing_key()
    second = load_or_create_signing_key()

    path = default_key_path()
    assert path.parent == key_dir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_hex(first) == public_key_hex(second)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A signing key with group or world permissions is refused, naming the file."""
    path = tmp_path / "key.pem"
    load_or_create_signing_key(path)
    os.chmod(path, 0o644)

    with pytest.raises(SigningKeyError, match="chmod 600") as caught:
        load_or_create_signing_key(path)

    assert caught.value.path == str(path)


def test_a_checkpoint_verifies_only_with_its_key_and_content() -> None:
    """A signature verifies for the signed checkpoint and key, and not for changed content."""
    key = Ed25519PrivateKey.generate()
    signed = sign_checkpoint(CHECKPOINT, key)
    moved = SignedCheckpoint(
        Checkpoint("log-1", 11, CHECKPOINT.hash, CHECKPOINT.time), signed.key, signed.signature
    )

    assert signed.verifies_with(public_key_hex(key))
    assert not signed.verifies_with(public_key_hex(Ed25519PrivateKey.generate()))
    assert not moved.verifies_with(public_key_hex(key))


def test_a_signature_over_the_same_bytes_without_the_domain_is_refused() -> None:
    """Domain separation: signing the checkpoint's bytes for another purpose does not make one."""
    key = Ed25519PrivateKey.generate()
    payload = CHECKPOINT.payload()
    other_purpose = key.sign(payload[payload.index(b"\x00") + 1 :]).hex()

    reused = SignedCheckpoint(CHECKPOINT, public_key_hex(key), other_purpose)

    assert not reused.verifies_with(public_key_hex(key))


def test_checkpoint_lines_round_trip() -> None:
    """A signed checkpoint written as a line reads back equal."""
    signed = sign_checkpoint(CHECKPOINT, Ed25519PrivateKey.generate())

    assert SignedCheckpoint.from_record(json.loads(signed.to_line())) == signed


def test_a_torn_last_line_is_ignored_and_cut_off_before_the_next_write(tmp_path: Path) -> None:
    """A line a crash left without its newline is no checkpoint, and the next append removes it."""
    side = CheckpointFile(tmp_path / "log.db.checkpoints")
    signed = sign_checkpoint(CHECKPOINT, Ed25519PrivateKey.generate())
    side.append(signed, durable=True)
    with side.path.open("a") as file:
        file.write(signed.to_line()[:40])

    readable = side.entries()
    side.drop_torn_tail()
    side.append(signed, durable=True)

    assert [entry.record for entry in readable] == [signed]
    assert side.path.read_text() == (signed.to_line() + "\n") * 2


async def test_a_new_log_starts_with_a_genesis_checkpoint(tmp_path: Path) -> None:
    """Creating a log writes a checkpoint of position 0, so a vanished side file shows later."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        entries = await store.checkpoint_entries()

    [genesis] = [entry.record for entry in entries]
    assert genesis is not None
    assert (genesis.checkpoint.position, genesis.checkpoint.hash) == (0, GENESIS_HASH)


async def test_a_log_verifies_across_many_checkpoints_and_reopenings(tmp_path: Path) -> None:
    """Several sessions, each checkpointing, leave a log whose every checkpoint checks out."""
    path = tmp_path / "log.db"
    for session in range(3):
        async with SqliteEventStore(
            path, now=now, checkpoint_every=7, checkpoint_seconds=0
        ) as store:
            await store.append(proposals(f"s{session}", 10))

    report = await verify(path)

    assert report.ok, report.problem
    # genesis, then 10, 20 and 30 by count, and a closing one at each of them
    assert report.checkpoints_checked == 7
    assert report.closed is True
