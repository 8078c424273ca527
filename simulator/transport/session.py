"""MQTT sessions: client ids and the settings that keep offline messages (RELIABILITY item 2)."""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulator.transport.constants import (
    _CLIENT_ID,
    _MAX_SESSION_EXPIRY,
    CLIENT_ID_MAX_LENGTH,
    DEFAULT_SESSION_EXPIRY,
    PROTOCOLS,
    MqttProtocol,
)
from simulator.transport.errors import SessionSettingsError


def client_id_for(exercise: str, principal: str, purpose: str = "") -> str:
    """A short, stable MQTT client id for a principal of an exercise.

    `{exercise}-{principal}[-{purpose}]` when that fits in 23 characters;
    otherwise a readable prefix plus 8 hex digits of a SHA-256 over the full
    triple, so distinct principals keep distinct ids and the same principal
    gets the same id on every run (which a persistent session needs).
    Inputs are topic-safe ids ([a-z0-9_-]); anything else is refused.
    """
    parts = [exercise, principal] + ([purpose] if purpose else [])
    for part in parts:
        if re.fullmatch(r"[A-Za-z0-9_-]+", part) is None:
            raise SessionSettingsError(f"{part!r} cannot be part of a client id")
    plain = "-".join(parts)
    if len(plain) <= CLIENT_ID_MAX_LENGTH:
        return plain
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    return f"{exercise[:6]}-{principal[:7]}-{digest}"


def private_client_id(exercise: str, principal: str, token: str) -> str:
    """A client id for one principal's connection that no other principal can guess.

    A broker gives a client id to whoever connects with it last, taking it from
    the one holding it: with ids anyone could work out, any participant, with
    its own credentials, could knock another's seat offline again and again.
    `token` is a random secret (`context.secret_token(9)`: 72 bits); the
    readable prefix is for the broker's log. At most 23 characters.
    """
    prefix = client_id_for(exercise[:4], principal[:5])
    check_client_id(token)
    return f"{prefix}-{token}"[:CLIENT_ID_MAX_LENGTH]


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
        raise SessionSettingsError(
            f"client id {client_id!r} must be 1-{CLIENT_ID_MAX_LENGTH} characters of "
            "[A-Za-z0-9_-] (MQTT 3.1.1 guarantees no more); derive one with client_id_for()"
        )
    return client_id


def session_options(
    client_id: str,
    protocol: MqttProtocol,
    *,
    persistent: bool,
    session_expiry: int | None = None,
    require_persistent: bool = False,
) -> dict[str, Any]:
    """The aiomqtt.Client keyword arguments for a session, or an error if they would lose messages.

    Only a persistent session keeps QoS 1 messages for a subscriber that is
    offline: MQTT 3.1.1 `clean_session=False`; MQTT 5 `clean_start=False`
    plus a Session Expiry Interval > 0 (with expiry 0, the MQTT 5 default,
    the session ends at disconnect whatever clean_start says). Refused:
    an invalid client id; `require_persistent` with a clean session; an
    MQTT 5 persistent session without a positive expiry; an expiry on a
    clean session. On MQTT 3.1.1 `session_expiry` is ignored: the broker
    decides (Mosquitto's `persistent_client_expiration`).
    """
    check_client_id(client_id)
    if protocol not in PROTOCOLS:
        raise SessionSettingsError(f"MQTT protocol {protocol!r} is not one of {list(PROTOCOLS)}")
    if require_persistent and not persistent:
        raise SessionSettingsError(
            f"client {client_id!r} needs a persistent session (messages sent while it is "
            "offline must be kept), but a clean session was configured"
        )
    if not persistent and session_expiry:
        raise SessionSettingsError(
            f"client {client_id!r}: a clean session has no expiry (got {session_expiry})"
        )
    options: dict[str, Any] = {"identifier": client_id}
    if protocol == "3.1.1":
        options["protocol"] = aiomqtt.ProtocolVersion.V311
        options["clean_session"] = not persistent
        return options
    options["protocol"] = aiomqtt.ProtocolVersion.V5
    if not persistent:
        # Explicit, because aiomqtt's default (clean only on the first connect
        # of a Client object) means nothing to a transport that makes a new
        # Client per connection.
        options["clean_start"] = True
        return options
    if session_expiry is None or not 0 < session_expiry <= _MAX_SESSION_EXPIRY:
        raise SessionSettingsError(
            f"client {client_id!r}: an MQTT 5 persistent session needs a session expiry of "
            f"1..{_MAX_SESSION_EXPIRY} s (got {session_expiry}); with 0 the broker drops the "
            "session, and the messages queued for it, at disconnect"
        )
    # paho ships no type hints for Properties; it is a plain attribute bag.
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry
    options["clean_start"] = False
    options["properties"] = properties
    return options


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How one client connects: its id, protocol and whether its session outlives a connection.

    Validated on construction by `session_options`, so a bad combination
    fails where it is written, not at the first reconnect.
    """

    client_id: str
    protocol: MqttProtocol = "3.1.1"
    persistent: bool = True
    session_expiry: int | None = DEFAULT_SESSION_EXPIRY
    require_persistent: bool = False

    def __post_init__(self) -> None:
        self.client_options()

    def client_options(self) -> dict[str, Any]:
        return session_options(
            self.client_id,
            self.protocol,
            persistent=self.persistent,
            session_expiry=self.session_expiry if self.persistent else None,
            require_persistent=self.require_persistent,
        )
