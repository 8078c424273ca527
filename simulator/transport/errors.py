"""What can go wrong with a broker connection, by whose fault."""

import re
from typing import TYPE_CHECKING

from simulator.errors import BrokerError, InputError

if TYPE_CHECKING:
    from simulator.transport.address import BrokerAddress


class BrokerUnavailable(BrokerError):
    """The broker could not be reached, or kept dropping the connection, within the time allowed."""

    def __init__(
        self, address: "BrokerAddress", action: str, timeout: float, detail: str = ""
    ) -> None:
        self.address = address
        self.action = action
        self.timeout = timeout
        why = f": {detail}" if detail else f" within {timeout:g} s"
        super().__init__(f"broker {address.display} unavailable: could not {action}{why}")


class PayloadTooLarge(BrokerError, ValueError):
    """A payload over the broker's size limit, refused before it was sent.

    Sent anyway, it would vanish: at MQTT 3.1.1 Mosquitto acknowledges it and
    drops it; at MQTT 5 the connection breaks (see `Transport.publish`).
    """

    def __init__(self, topic: str, size: int, limit: int) -> None:
        self.topic = topic
        self.size = size
        self.limit = limit
        super().__init__(
            f"payload of {size} bytes for {topic!r} exceeds the broker's limit of {limit} bytes"
        )


class BrokerRefused(BrokerError):
    """The broker answered CONNECT with a refusal (credentials, protocol version)."""

    def __init__(self, address: "BrokerAddress", client_id: str, reason: str) -> None:
        self.address = address
        self.client_id = client_id
        self.reason = reason
        super().__init__(f"broker {address.display} refused client {client_id!r}: {reason}")


class SubscriptionRefused(BrokerError):
    """The broker refused a subscription (usually its ACL)."""

    def __init__(self, client_id: str, filters: tuple[str, ...]) -> None:
        self.client_id = client_id
        self.filters = filters
        super().__init__(f"broker refused subscription of client {client_id!r} to {list(filters)}")


class BrokerUrlError(InputError):
    """A broker URL that cannot be used."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"broker URL {_redact(url)!r}: {problem}")


class SessionSettingsError(InputError):
    """Session settings that would lose messages or that a broker may refuse."""


def _redact(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)
