"""Ed25519 signatures on written requests (Art. 4.4): keys per signatory, signing, checking.

Every head and deputy of every party has an Ed25519 key. A simulated party
signs what it sends (written requests, written confirmations, additional
confirmations); the umpire's fold checks each signature through the
`SignatureVerifier` the protocol takes (the protocol package stays pure:
the cryptography lives here), and a recipient checks it before acting on a
request: a forged or altered one is answered with a request for additional
confirmation (Art. 4.2) unless the party's policy deliberately errs.

What is signed: the message as the protocol parses it (JSON mode, keys
sorted, orjson), without the signature's `value`, behind a domain tag, so
changing any field (the route, the case, the content, the signatory's
name, the seal) breaks the signature, and a signature cannot be reused for
another purpose (the checkpoint signatures use other tags).

Keys are derived, not stored: HKDF-SHA256 from a secret, per exercise,
party and signatory. Ed25519 signing is deterministic, so the same secret
gives the same log (`replay --check` compares logs byte for byte).

- Training keys (`Signatories.training`): the secret is derived from the
  exercise id, so anyone holding the scenario can compute every key. They
  show the procedure (a forgery injected by the scenario, a request altered
  in transit, is caught) but protect against nobody who has the scenario.
- Secret keys (`Signatories.from_secret`, what `--secure` uses): 32 random
  bytes kept private beside the log (`signing_secret_path`); only the
  umpire's process and the processes it hands keys to can sign.

Principals the secret is not given to get only public keys
(`Signatories.public_only`): they can check, not sign.
"""

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ValidationError

from simulator.context import secret_bytes
from simulator.errors import InputError
from simulator.protocol import Message, Party, Signature, SignatureStatus, parse_message

__all__ = [
    "SIGNED_TYPES",
    "Signatories",
    "Tamper",
    "load_or_create_secret",
    "signed_bytes",
    "signing_secret_path",
    "tamper",
    "write_private_bytes",
]

SIGNED_TYPES = frozenset({"written_request", "written_confirmation", "additional_confirmation"})
# Domain separation: these bytes are never a checkpoint or an event row.
_DOMAIN = b"coop-simulator/request-signature/v1\x00"
_KDF_SALT = b"coop-simulator/signatory-key/v1"
_TRAINING = b"coop-simulator/training-signatories/v1\x00"
_FORGER = "\x00forger"
SECRET_BYTES = 32

Tamper = Literal["signature", "content"]


def signed_bytes(message: Message | BaseModel) -> bytes:
    """The bytes a signature covers: the parsed message without the signature's value."""
    data = message.model_dump(mode="json")
    signature = data.get("signature")
    if isinstance(signature, dict):
        signature.pop("value", None)
    return _DOMAIN + orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def _public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


class Signatories:
    """The signature keys of one exercise: private ones for those who may sign, public for all.

    `verify` is a `SignatureVerifier` for `Agreement`; `sign` fills in the
    signature value of a drafted message whose sender's keys we hold.
    `require_values`: a signature without a value (a paper signature)
    counts as not verifying; otherwise it is unchecked.
    """

    def __init__(
        self,
        exercise: str,
        public: Mapping[tuple[str, str], Ed25519PublicKey],
        private: Mapping[tuple[str, str], Ed25519PrivateKey],
        *,
        require_values: bool = False,
    ) -> None:
        self.exercise = exercise
        self._public = dict(public)
        self._private = dict(private)
        self.require_values = require_values

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        exercise: str,
        parties: Iterable[Party],
        *,
        require_values: bool = False,
    ) -> "Signatories":
        """Every signatory's key pair, derived from `secret`."""
        private = {
            (party.id, name): _derive(secret, exercise, party.id, name)
            for party in parties
            for name in _names(party)
        }
        public = {who: key.public_key() for who, key in private.items()}
        return cls(exercise, public, private, require_values=require_values)

    @classmethod
    def training(cls, exercise: str, parties: Iterable[Party]) -> "Signatories":
        """Keys anyone with the scenario can compute: reproducible, and secret to nobody."""
        secret = hashlib.sha256(_TRAINING + exercise.encode()).digest()
        return cls.from_secret(secret, exercise, parties)

    def public_only(self, *, keep: Iterable[str] = ()) -> "Signatories":
        """The same keys with the private halves dropped, except those of the parties in `keep`."""
        kept = set(keep)
        private = {who: key for who, key in self._private.items() if who[0] in kept}
        return Signatories(self.exercise, self._public, private, require_values=self.require_values)

    def public_keys(self) -> dict[str, dict[str, str]]:
        """Party to signatory name to raw public key in hex (for seat files and the README)."""
        out: dict[str, dict[str, str]] = {}
        for (party, name), key in sorted(self._public.items()):
            out.setdefault(party, {})[name] = _public_hex(key)
        return out

    def record(self) -> dict[str, Any]:
        """The public half, as the log's `coop.exercise.started` event keeps it."""
        return {
            "scheme": "ed25519",
            "public": self.public_keys(),
            "require_values": self.require_values,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> "Signatories":
        """Check-only keys from a log's record (no private keys: a report can check, not sign)."""
        return cls.from_export({"exercise": "", "private": {}, **data})

    def export(self, party: str) -> dict[str, Any]:
        """What another process playing `party` needs: its own private keys, everyone's public."""
        own = {
            name: key.private_bytes_raw().hex()
            for (who, name), key in sorted(self._private.items())
            if who == party
        }
        return {
            "exercise": self.exercise,
            "private": {party: own},
            "public": self.public_keys(),
            "require_values": self.require_values,
        }

    @classmethod
    def from_export(cls, data: Mapping[str, Any]) -> "Signatories":
        """The keys `export` wrote (a seat file's `signing`)."""
        try:
            public = {
                (party, name): Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))
                for party, names in data["public"].items()
                for name, value in names.items()
            }
            private = {
                (party, name): Ed25519PrivateKey.from_private_bytes(bytes.fromhex(value))
                for party, names in data["private"].items()
                for name, value in names.items()
            }
            if data.get("scheme", "ed25519") != "ed25519":
                raise ValueError(f"unknown signature scheme {data['scheme']!r}")
            return cls(
                str(data["exercise"]),
                public,
                private,
                require_values=bool(data.get("require_values", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"unreadable signature keys: {exc!r}") from None

    def can_sign(self, party: str) -> bool:
        return any(who[0] == party for who in self._private)

    # -- signing and checking

    def sign(self, message: dict[str, Any]) -> dict[str, Any]:
        """`message` with its signature value filled in, where we hold the signatory's key.

        Left as it is: messages of a type that is not signed, messages without
        a signature (a deliberate mistake), a signature that already has a
        value (a scenario may plant one), a signatory without a key (not the
        head or a deputy: the umpire reports that), and a message that does
        not parse (the umpire rejects it with its reason).
        """
        signature = message.get("signature")
        if message.get("type") not in SIGNED_TYPES or not isinstance(signature, dict):
            return message
        if signature.get("value") is not None:
            return message
        key = self._private.get((str(message.get("sender")), str(signature.get("name"))))
        if key is None:
            return message
        try:
            parsed = parse_message(message)
        except (ValidationError, ValueError):
            return message
        value = base64.b64encode(key.sign(signed_bytes(parsed))).decode("ascii")
        return {**message, "signature": {**signature, "value": value}}

    def verify(self, message: object) -> SignatureStatus:
        """Whether a parsed message's signature verifies with its signatory's public key."""
        signature = getattr(message, "signature", None)
        sender = getattr(message, "sender", None)
        if not isinstance(message, BaseModel) or not isinstance(signature, Signature):
            return SignatureStatus.UNCHECKED
        if not isinstance(sender, str):
            return SignatureStatus.UNCHECKED
        key = self._public.get((sender, signature.name))
        if key is None:
            # Not a signatory of the sender: Art. 4.4's own rule reports that.
            return SignatureStatus.UNCHECKED
        if signature.value is None:
            return SignatureStatus.INVALID if self.require_values else SignatureStatus.UNCHECKED
        try:
            raw = base64.b64decode(signature.value, validate=True)
            key.verify(raw, signed_bytes(message))
        except (binascii.Error, ValueError, InvalidSignature):
            return SignatureStatus.INVALID
        return SignatureStatus.VALID

    def forged(self, message: dict[str, Any]) -> dict[str, Any]:
        """`message` signed with a key that is not its signatory's: looks right, does not verify."""
        signature = message.get("signature")
        if not isinstance(signature, dict):
            return message
        forger = _derive(
            hashlib.sha256(_TRAINING + b"forger").digest(),
            self.exercise,
            str(message.get("sender")),
            str(signature.get("name")) + _FORGER,
        )
        parsed = parse_message({**message, "signature": {**signature, "value": None}})
        value = base64.b64encode(forger.sign(signed_bytes(parsed))).decode("ascii")
        return {**message, "signature": {**signature, "value": value}}


def tamper(signatories: Signatories, message: dict[str, Any], how: Tamper) -> dict[str, Any]:
    """A forged (`signature`) or altered-after-signing (`content`) version of a drafted message."""
    if how == "signature":
        return signatories.forged({**message, "signature": {**message["signature"], "value": None}})
    signed = signatories.sign(message)
    # The content changes after the signature was made, as if altered in transit.
    field = "assistance_sought" if "assistance_sought" in signed else "statement"
    return {**signed, field: f"{signed.get(field, '')} (amended)".strip()}


def _names(party: Party) -> list[str]:
    return [party.head.name, *(d.name for d in party.deputies)]


def _derive(secret: bytes, exercise: str, party: str, name: str) -> Ed25519PrivateKey:
    info = b"\x00".join(part.encode() for part in (exercise, party, name))
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_KDF_SALT, info=info).derive(secret)
    return Ed25519PrivateKey.from_private_bytes(seed)


# -- the secret of a secure run


def signing_secret_path(log_location: str) -> Path:
    """Where a secure run keeps its signing secret: beside the log, private to its owner."""
    if log_location.startswith(("postgresql://", "postgres://")):
        digest = hashlib.sha256(log_location.encode()).hexdigest()[:16]
        return Path("runs") / f"postgres-{digest}.signing"
    return Path(f"{log_location}.signing")


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte secret at `path`, created 0600 if missing; refused if others can read it."""
    if path.exists():
        mode = path.stat().st_mode
        if mode & 0o077:
            raise InputError(
                f"{path}: signing secret is accessible to others (mode {mode & 0o777:o}); "
                "chmod 600 it"
            )
        secret = path.read_bytes()
        if len(secret) != SECRET_BYTES:
            raise InputError(f"{path}: a signing secret is {SECRET_BYTES} bytes, not {len(secret)}")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secret_bytes(SECRET_BYTES)
    write_private_bytes(path, secret)
    return secret


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write a file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)
