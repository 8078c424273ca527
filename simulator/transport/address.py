"""Where a broker is and who we are to it: `BrokerAddress` from a URL, `Credentials`."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Self
from urllib.parse import parse_qs, unquote, urlsplit

from simulator.transport.constants import _DEFAULT_PORTS, PASSWORD_ENV, USERNAME_ENV
from simulator.transport.errors import BrokerUrlError


class Credentials(NamedTuple):
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker listens, how to secure the connection, and optional credentials.

    Credentials here are the URL's (or the environment's); brokers that hand
    out one account per principal pass credentials to `Transport` instead.
    """

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise BrokerUrlError(self.display, "no host")
        if not 0 < self.port < 65536:
            raise BrokerUrlError(self.display, f"port {self.port} out of range")
        if (self.certfile is None) != (self.keyfile is None):
            raise BrokerUrlError(
                self.display, "a client certificate needs both certfile and keyfile"
            )
        if not self.tls and (self.ca_file or self.certfile):
            raise BrokerUrlError(self.display, "certificate files given without TLS (use mqtts://)")

    @classmethod
    def from_url(cls, url: str, *, environ: Mapping[str, str] | None = None) -> Self:
        """Parse `mqtt://[user:pass@]host[:port]` or `mqtts://...[?ca_file=&certfile=&keyfile=]`.

        Credentials in the URL win; without them, `SIMULATOR_MQTT_USERNAME`
        and `SIMULATOR_MQTT_PASSWORD` from `environ` (default: the process
        environment) are used.
        """
        env = os.environ if environ is None else environ
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BrokerUrlError(url, str(exc)) from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise BrokerUrlError(url, "scheme must be mqtt:// or mqtts://")
        if parts.path not in ("", "/") or parts.fragment:
            raise BrokerUrlError(url, "a broker URL has no path or fragment")
        query = parse_qs(parts.query, strict_parsing=False)
        unknown = set(query) - {"ca_file", "certfile", "keyfile"}
        if unknown:
            raise BrokerUrlError(url, f"unknown parameters {sorted(unknown)}")

        def one(name: str) -> Path | None:
            values = query.get(name)
            return Path(values[-1]) if values else None

        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is None:
            username = env.get(USERNAME_ENV) or None
            password = env.get(PASSWORD_ENV) if username is not None else None
        return cls(
            host=parts.hostname or "",
            port=port if port is not None else _DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme == "mqtts",
            ca_file=one("ca_file"),
            certfile=one("certfile"),
            keyfile=one("keyfile"),
            username=username,
            password=password,
        )

    @property
    def credentials(self) -> Credentials | None:
        if self.username is None:
            return None
        return Credentials(self.username, self.password or "")

    @property
    def display(self) -> str:
        """The address as a URL without the password, for messages and logs."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"
