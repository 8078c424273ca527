"""Constants of the MQTT side: protocol versions, client id rules, CONNACK codes."""

import re
from typing import Literal

MqttProtocol = Literal["3.1.1", "5"]
PROTOCOLS: tuple[MqttProtocol, ...] = ("3.1.1", "5")

# MQTT 3.1.1 (section 3.1.3.1) obliges a broker to accept client ids of 1-23
# characters from [0-9a-zA-Z]; longer ids and other characters are allowed
# but not guaranteed. We add `_` and `-` (every broker we target accepts
# them, and party ids use them) and keep the guaranteed length.
CLIENT_ID_MAX_LENGTH = 23
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,23}")
# Long enough to ride out a broker restart or a laptop's sleep; short enough
# that an abandoned exercise does not hold queues for ever.
DEFAULT_SESSION_EXPIRY = 24 * 3600
_MAX_SESSION_EXPIRY = 0xFFFFFFFF  # MQTT 5 four-byte integer; this value means "never"

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
USERNAME_ENV = "SIMULATOR_MQTT_USERNAME"
PASSWORD_ENV = "SIMULATOR_MQTT_PASSWORD"

# CONNACK codes meaning "your credentials are not accepted", as MQTT 3.1.1
# return codes (4, 5) and MQTT 5 reason codes (0x86, 0x87).
_AUTH_REFUSED = frozenset({4, 5, 0x86, 0x87})
_PROTOCOL_REFUSED = frozenset({1, 0x84})
_SUBACK_FAILURE = 0x80  # the lowest failure code in both 3.1.1 and 5
# What OpenSSL says (through aiomqtt's MqttError) when it refuses a server certificate.
_CERTIFICATE_REFUSED = "CERTIFICATE_VERIFY_FAILED"
