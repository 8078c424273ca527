"""The Ed25519 key that signs checkpoints: where it lives, created 0600 on first use."""

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from simulator.eventlog.errors import SigningKeyError

KEY_DIR_ENV = "SIMULATOR_KEY_DIR"
KEY_FILE_NAME = "checkpoint-ed25519.pem"


def default_key_path() -> Path:
    """``$SIMULATOR_KEY_DIR/checkpoint-ed25519.pem``, else under ~/.local/share/coop-simulator."""
    configured = os.environ.get(KEY_DIR_ENV)
    base = Path(configured) if configured else Path.home() / ".local" / "share" / "coop-simulator"
    return base / KEY_FILE_NAME


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte public key in hex: how logs and checkpoints name a key."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load a private key file, refusing one that others can read."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise SigningKeyError(
            str(path), f"signing key is accessible to others (mode {mode & 0o777:o}); chmod 600 it"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(str(path), f"not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(str(path), "not an Ed25519 private key")
    return key


def load_or_create_signing_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The key at ``path`` (default: default_key_path()), created 0600 if it does not exist."""
    path = path or default_key_path()
    if path.exists():
        return load_signing_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    # Written aside and linked into place, so that a reader never sees half a
    # key and two processes creating it at once end up sharing one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return load_signing_key(path)
