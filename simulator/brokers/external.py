"""A broker someone else runs (a Mosquitto, EMQX, HiveMQ, VerneMQ or RabbitMQ cluster), by URL."""

from collections.abc import Mapping
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from simulator.brokers.base import BrokerStartError
from simulator.transport import PROTOCOLS, BrokerAddress, BrokerUrlError, Credentials, MqttProtocol

__all__ = ["ExternalBroker"]


class ExternalBroker:
    """A broker we neither start nor stop; its operators configure its accounts and ACL.

    Every principal connects with the one account given in the URL or in
    `SIMULATOR_MQTT_USERNAME` / `SIMULATOR_MQTT_PASSWORD` (the URL wins), so
    the broker's ACL cannot tell the parties apart: the umpire's own sender
    checks are all that remain (DESIGN: check the claimed sender in the
    umpire as well).

    A cluster is named node by node (`mqtt://h1:1883,h2:1883,h3:1883`); the
    transports fail over between them. `?max_qos=1` in the URL says the
    broker takes no QoS 2 (RabbitMQ's MQTT plugin before 4.x, NATS before
    2.10): transports then publish and subscribe at QoS 1 at most.
    """

    name = "external"
    protocols: tuple[MqttProtocol, ...] = PROTOCOLS
    # Unknown: ask the operators and pass `max_payload` to the transports.
    message_size_limit: int | None = None

    def __init__(self, url: str, *, environ: Mapping[str, str] | None = None) -> None:
        url, self.max_qos = _max_qos(url)
        self._address = BrokerAddress.from_url(url, environ=environ)

    @property
    def address(self) -> BrokerAddress:
        return self._address

    def credentials(self, principal: str) -> Credentials:
        credentials = self._address.credentials
        if credentials is None:
            raise BrokerStartError(
                f"no credentials for external broker {self._address.display}: put them in "
                "the URL (mqtt://user:password@host) or set SIMULATOR_MQTT_USERNAME and "
                "SIMULATOR_MQTT_PASSWORD"
            )
        return credentials

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _max_qos(url: str) -> tuple[str, int]:
    """The URL without its `max_qos` parameter, and that parameter (2 when absent)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BrokerUrlError(url, str(exc)) from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [value for name, value in query if name == "max_qos"]
    if not given:
        return url, 2
    if given[-1] not in ("0", "1", "2"):
        raise BrokerUrlError(url, f"max_qos must be 0, 1 or 2, not {given[-1]!r}")
    rest = urlencode([(name, value) for name, value in query if name != "max_qos"])
    return urlunsplit(parts._replace(query=rest)), int(given[-1])
