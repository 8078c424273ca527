"""The MQTT connection of one principal: the only package that imports aiomqtt and paho.

aiomqtt 2.x (pinned below 3: aiomqtt 3 speaks MQTT 5 only, the embedded
broker 3.1.1 only) neither reconnects by itself nor keeps subscriptions
across connections, and it acknowledges a QoS 1 message as soon as it is
queued, before our code has seen it. `Transport` wraps it so that callers get:

- a supervisor that reconnects with bounded exponential backoff and full
  jitter (from an injected `random.Random`), re-subscribes its filters and
  sets TCP_NODELAY after every connect; given a cluster (an address with
  several nodes), it starts on one node picked by a hash of its client id
  (so a crowd of clients spreads over the nodes) and moves to the next node
  whenever a connection fails or drops;
- `publish` that waits for a connection (up to a timeout, then
  `BrokerUnavailable`) and, at QoS >= 1, returns only after the broker's
  PUBACK/PUBCOMP. A publish cut off by a disconnect is sent again on the
  next connection (up to 3), so delivery is at-least-once: receivers
  deduplicate by message id (DESIGN invariant 3);
- `messages()`, one async iterator over everything received, across
  reconnects, in arrival order.

Receiving, precisely: paho hands each message straight to the transport's
buffer, on the event loop, and the consumer reads from it. The buffer is
unbounded on purpose, as aiomqtt's own queue was: a bounded one drops
messages already acknowledged, and pausing the socket instead makes the
broker queue them, and drop them past its queue limit (RELIABILITY.md). So
a slow consumer never loses a message it was sent; what the broker has
delivered is held in memory until the consumer takes it (a warning says
when the backlog passes `max_buffered`); a receiver that crashes loses what
it held, and the application recovers it by resend or catch-up (DESIGN
invariant 3).

Publishing, precisely: a publish on an open connection goes to paho
directly and waits for its PUBACK/PUBCOMP on a future of its own, resolved
from paho's callback or failed when the connection drops. aiomqtt's publish
costs a task, a `wait_for` and a walk over every pending call per message,
which was most of a load run's transport time (2.5x fewer publishes per
second, measured here); its path stays for publishes that must wait for,
or retry on, a connection.

Session settings are built by one pure function, `session_options`, which
refuses combinations that silently lose offline messages (RELIABILITY
item 2).

aiomqtt 2.x lacks four things we need, so four small helpers reach into
it, each saying why: `_paho_socket` (the socket, for TCP_NODELAY),
`_disconnection` (learning at once that a connection is gone), `_connect`
(not leaking a socket when a connect fails) and `_Link` (paho's callbacks,
for the cheap publish and receive paths above). aiomqtt is pinned below 3,
and the tests exercise all four.

The package, by concept: `client` (the `Transport` and its connection
state), `link` (the four helpers into aiomqtt and paho), `session` (client
ids and session settings), `address` (broker URLs and credentials),
`backoff`, `errors` and `constants`.
"""

from simulator.transport.address import BrokerAddress, Credentials, Node
from simulator.transport.backoff import Backoff
from simulator.transport.client import ConnectionState, Transport
from simulator.transport.constants import (
    CLIENT_ID_MAX_LENGTH,
    DEFAULT_SESSION_EXPIRY,
    PROTOCOLS,
    MqttProtocol,
)
from simulator.transport.errors import (
    BrokerRefused,
    BrokerUnavailable,
    BrokerUrlError,
    PayloadTooLarge,
    SessionSettingsError,
    SubscriptionRefused,
)
from simulator.transport.link import Received
from simulator.transport.session import (
    SessionSettings,
    check_client_id,
    client_id_for,
    private_client_id,
    session_options,
)

__all__ = [
    "CLIENT_ID_MAX_LENGTH",
    "DEFAULT_SESSION_EXPIRY",
    "PROTOCOLS",
    "Backoff",
    "BrokerAddress",
    "BrokerRefused",
    "BrokerUnavailable",
    "BrokerUrlError",
    "ConnectionState",
    "Credentials",
    "MqttProtocol",
    "Node",
    "PayloadTooLarge",
    "Received",
    "SessionSettings",
    "SessionSettingsError",
    "SubscriptionRefused",
    "Transport",
    "check_client_id",
    "client_id_for",
    "private_client_id",
    "session_options",
]
