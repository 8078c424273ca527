"""A broker someone else runs (a Mosquitto, EMQX, HiveMQ or VerneMQ cluster), named by URL."""

from collections.abc import Mapping
from types import TracebackType
from typing import Self

from simulator.brokers.base import BrokerStartError
from simulator.transport import PROTOCOLS, BrokerAddress, Credentials, MqttProtocol

__all__ = ["ExternalBroker"]


class ExternalBroker:
    """A broker we neither start nor stop; its operators configure its accounts and ACL.

    Every principal connects with the one account given in the URL or in
    `SIMULATOR_MQTT_USERNAME` / `SIMULATOR_MQTT_PASSWORD` (the URL wins), so
    the broker's ACL cannot tell the parties apart: the umpire's own sender
    checks are all that remain (DESIGN: check the claimed sender in the
    umpire as well).
    """

    name = "external"
    protocols: tuple[MqttProtocol, ...] = PROTOCOLS
    # Unknown: ask the operators and pass `max_payload` to the transports.
    message_size_limit: int | None = None

    def __init__(self, url: str, *, environ: Mapping[str, str] | None = None) -> None:
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
