"""Where a broker is and who we are to it: `BrokerAddress` from a URL, `Credentials`.

A clustered broker is one address with several nodes: `mqtt://h1:1883,h2:1883,h3:1883`
(one scheme, one set of credentials and TLS files, a comma between nodes, as
MongoDB and Kafka clients write it). `host` and `port` are the first node's;
`nodes` lists them all, for a transport to fail over from one to the next.
"""

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


class Node(NamedTuple):
    """One node of a broker: where it listens."""

    host: str
    port: int

    @property
    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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
    # The other nodes of a cluster, after the first (host, port); () for one broker.
    others: tuple[Node, ...] = ()

    def __post_init__(self) -> None:
        for node in self.nodes:
            if not node.host:
                raise BrokerUrlError(self.display, "no host")
            if not 0 < node.port < 65536:
                raise BrokerUrlError(self.display, f"port {node.port} out of range")
        if len(set(self.nodes)) != len(self.nodes):
            raise BrokerUrlError(self.display, "a node is named twice")
        if (self.certfile is None) != (self.keyfile is None):
            raise BrokerUrlError(
                self.display, "a client certificate needs both certfile and keyfile"
            )
        if not self.tls and (self.ca_file or self.certfile):
            raise BrokerUrlError(self.display, "certificate files given without TLS (use mqtts://)")

    @classmethod
    def from_url(cls, url: str, *, environ: Mapping[str, str] | None = None) -> Self:
        """Parse `mqtt://[user:pass@]host[:port]` or `mqtts://...[?ca_file=&certfile=&keyfile=]`.

        A cluster: `mqtt://[user:pass@]h1[:p1],h2[:p2],...`, every node with
        the same credentials and TLS files. Credentials in the URL win;
        without them, `SIMULATOR_MQTT_USERNAME` and `SIMULATOR_MQTT_PASSWORD`
        from `environ` (default: the process environment) are used.
        """
        env = os.environ if environ is None else environ
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise BrokerUrlError(url, str(exc)) from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise BrokerUrlError(url, "scheme must be mqtt:// or mqtts://")
        nodes = _nodes(url, parts.scheme, parts.netloc)
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
            host=nodes[0].host,
            port=nodes[0].port,
            others=nodes[1:],
            tls=parts.scheme == "mqtts",
            ca_file=one("ca_file"),
            certfile=one("certfile"),
            keyfile=one("keyfile"),
            username=username,
            password=password,
        )

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node, the first one (`host`, `port`) first."""
        return (Node(self.host, self.port), *self.others)

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
        return f"{scheme}://{user}{','.join(node.display for node in self.nodes)}"


def _nodes(url: str, scheme: str, netloc: str) -> tuple[Node, ...]:
    """The nodes of a URL's network location: `[user:pass@]h1[:p1],h2[:p2],...`."""
    hosts = netloc.rpartition("@")[2]
    nodes = []
    for item in hosts.split(","):
        try:
            # Each node parsed alone, so that `[::1]:1883` and a missing port work as in one URL.
            one = urlsplit(f"{scheme}://{item}")
            port = one.port
        except ValueError as exc:
            raise BrokerUrlError(url, f"node {item!r}: {exc}") from None
        if not one.hostname:
            raise BrokerUrlError(url, f"node {item!r} has no host")
        nodes.append(Node(one.hostname, port if port is not None else _DEFAULT_PORTS[scheme]))
    return tuple(nodes)
