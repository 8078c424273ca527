"""The Ed25519 key that signs checkpoints: where it lives, created 0600 on first use.

Keys are named by their raw 32-byte public key in hex (how logs and
checkpoints record them) and shown to people by fingerprint: ``SHA256:`` and
the unpadded base64 of the key's SHA-256, the form OpenSSH prints, because
people compare fingerprints by eye and that one is short and familiar.
"""

import base64
import hashlib
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
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


def key_fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of a hex public key, for people to compare and pin."""
    try:
        raw = bytes.fromhex(public_key)
    except ValueError:
        return f"not-a-key:{public_key[:16]}"
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def public_key_pem(public_key: str) -> bytes:
    """A hex public key as a PEM SubjectPublicKeyInfo file, the form ``--key`` reads."""
    verifier = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    return verifier.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_public_key(text: str) -> str:
    """A public key given as 64 hex digits, checked and lower-cased; ValueError otherwise."""
    text = text.strip()
    if not _HEX_KEY.match(text):
        raise ValueError("a public key is 64 hex digits (32 bytes of Ed25519 public key)")
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    return text.lower()


def read_public_key(path: Path) -> str:
    """The public key (hex) in a file: PEM public key, PEM private key, or 64 hex digits.

    A private key file is accepted so that the machine that signs can pin its
    own key without exporting it first; only its public half is used.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(str(path), f"cannot read the key ({exc.strerror or exc})") from exc
    if b"-----BEGIN PUBLIC KEY-----" in data:
        try:
            key = load_pem_public_key(data)
        except ValueError as exc:
            raise SigningKeyError(str(path), f"not a readable PEM public key ({exc})") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(str(path), "not an Ed25519 public key")
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    if b"PRIVATE KEY-----" in data:
        try:
            private = load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(str(path), f"not a readable PEM private key ({exc})") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyError(str(path), "not an Ed25519 private key")
        return public_key_hex(private)
    try:
        return parse_public_key(data.decode("ascii", errors="replace"))
    except ValueError as exc:
        raise SigningKeyError(
            str(path), "neither a PEM key nor 64 hex digits of an Ed25519 public key"
        ) from exc


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
