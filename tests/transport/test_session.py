"""Session settings, client ids, broker URLs and backoff: the transport's pure parts."""

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import InputError
from simulator.transport import (
    CLIENT_ID_MAX_LENGTH,
    Backoff,
    BrokerAddress,
    BrokerUrlError,
    MqttProtocol,
    SessionSettings,
    SessionSettingsError,
    check_client_id,
    client_id_for,
    session_options,
)

ids = st.from_regex(r"[a-z0-9_-]{1,64}", fullmatch=True)


def test_persistent_mqtt311_session_is_not_clean() -> None:
    """A persistent MQTT 3.1.1 session connects with clean_session=False."""
    options = session_options("ex-alpha", "3.1.1", persistent=True)
    assert options["clean_session"] is False
    assert options["protocol"] == 4  # the protocol level of MQTT 3.1.1 in CONNECT
    assert options["identifier"] == "ex-alpha"


def test_persistent_mqtt5_session_has_clean_start_false_and_an_expiry() -> None:
    """A persistent MQTT 5 session connects with clean_start=False and a session expiry > 0."""
    options = session_options("ex-alpha", "5", persistent=True, session_expiry=600)
    assert options["clean_start"] is False
    assert options["properties"].SessionExpiryInterval == 600
    assert "clean_session" not in options  # paho refuses it on MQTT 5


def test_clean_sessions_say_so_on_both_protocols() -> None:
    """A non-persistent session is clean on both protocols, with no expiry."""
    assert session_options("c", "3.1.1", persistent=False)["clean_session"] is True
    options = session_options("c", "5", persistent=False)
    assert options["clean_start"] is True
    assert "properties" not in options


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_required_persistence_refuses_a_clean_session(protocol: MqttProtocol) -> None:
    """Where a persistent session is required, a clean one is refused (RELIABILITY item 2)."""
    with pytest.raises(SessionSettingsError, match="needs a persistent session"):
        session_options("ex-umpire", protocol, persistent=False, require_persistent=True)


@pytest.mark.parametrize("expiry", [None, 0, -1, 2**32])
def test_mqtt5_persistent_session_without_a_positive_expiry_is_refused(
    expiry: int | None,
) -> None:
    """An MQTT 5 'persistent' session with expiry 0 would end at disconnect, so it is refused."""
    with pytest.raises(SessionSettingsError, match="session expiry"):
        session_options("ex-alpha", "5", persistent=True, session_expiry=expiry)


def test_clean_session_with_an_expiry_is_refused() -> None:
    """Asking for a clean session that expires later is contradictory and refused."""
    with pytest.raises(SessionSettingsError, match="clean session has no expiry"):
        session_options("ex-alpha", "5", persistent=False, session_expiry=60)


def test_session_settings_are_checked_when_written() -> None:
    """SessionSettings validates itself on construction, not at the first reconnect."""
    with pytest.raises(SessionSettingsError):
        SessionSettings("ex-umpire", persistent=False, require_persistent=True)
    with pytest.raises(SessionSettingsError):
        SessionSettings("ex-alpha", protocol="5", session_expiry=0)
    assert SessionSettings("ex-alpha").client_options()["clean_session"] is False


@pytest.mark.parametrize(
    "client_id", ["", "a" * (CLIENT_ID_MAX_LENGTH + 1), "a/b", "a+b", "a#", "é", "a b", "$sys"]
)
def test_invalid_client_ids_are_refused(client_id: str) -> None:
    """Client ids must be 1-23 characters of [A-Za-z0-9_-], the size MQTT 3.1.1 guarantees."""
    with pytest.raises(SessionSettingsError, match="client id"):
        session_options(client_id, "3.1.1", persistent=True)


def test_client_ids_of_short_names_are_readable() -> None:
    """A short exercise and principal give `{exercise}-{principal}` as the client id."""
    assert client_id_for("drill", "alpha") == "drill-alpha"
    assert client_id_for("drill", "alpha", "load") == "drill-alpha-load"


def test_long_names_are_shortened_stably_and_distinctly() -> None:
    """Too long for 23 characters: a readable prefix plus a hash, stable and distinct."""
    one = client_id_for("regional-exercise-2026", "ministry-of-interior-hq")
    again = client_id_for("regional-exercise-2026", "ministry-of-interior-hq")
    other = client_id_for("regional-exercise-2026", "ministry-of-interior-ops")
    assert one == again
    assert one != other
    assert one.startswith("region-ministr-")
    assert check_client_id(one) == one


@given(ids, ids, st.one_of(st.just(""), ids))
def test_derived_client_ids_are_always_valid(exercise: str, principal: str, purpose: str) -> None:
    """client_id_for always yields an id the session builder accepts."""
    check_client_id(client_id_for(exercise, principal, purpose))


def test_client_ids_refuse_unsafe_parts() -> None:
    """A part with a topic wildcard cannot become part of a client id."""
    with pytest.raises(SessionSettingsError):
        client_id_for("drill", "a+b")


def test_urls_give_host_port_tls_and_credentials() -> None:
    """mqtt:// and mqtts:// URLs give the host, the port (default 1883/8883), TLS and user."""
    plain = BrokerAddress.from_url("mqtt://127.0.0.1", environ={})
    assert (plain.host, plain.port, plain.tls) == ("127.0.0.1", 1883, False)
    assert plain.credentials is None
    secure = BrokerAddress.from_url(
        "mqtts://ops:p%40ss%3Aword@broker.example:9883?ca_file=/etc/ca.pem", environ={}
    )
    assert (secure.host, secure.port, secure.tls) == ("broker.example", 9883, True)
    assert secure.credentials == ("ops", "p@ss:word")
    assert secure.ca_file == Path("/etc/ca.pem")


def test_url_credentials_win_over_the_environment() -> None:
    """Credentials come from the URL if it has them, else from SIMULATOR_MQTT_*."""
    env = {"SIMULATOR_MQTT_USERNAME": "envuser", "SIMULATOR_MQTT_PASSWORD": "envpass"}
    assert BrokerAddress.from_url("mqtt://h", environ=env).credentials == ("envuser", "envpass")
    assert BrokerAddress.from_url("mqtt://u:p@h", environ=env).credentials == ("u", "p")


def test_passwords_stay_out_of_reprs_and_messages() -> None:
    """An address shows its user but never its password."""
    address = BrokerAddress.from_url("mqtt://ops:hunter2@h:1", environ={})
    assert "hunter2" not in repr(address)
    assert address.display == "mqtt://ops@h:1"
    with pytest.raises(BrokerUrlError) as refused:
        BrokerAddress.from_url("http://ops:hunter2@h", environ={})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://h",
        "mqtt://",
        "mqtt://h:0",
        "mqtt://h:99999",
        "mqtt://h/path",
        "mqtt://h?colour=red",
        "mqtt://h?ca_file=/ca.pem",
        "mqtts://h?certfile=/c.pem",
    ],
)
def test_unusable_urls_are_refused_as_input_errors(url: str) -> None:
    """A URL that names no usable broker is the user's input error, named as such."""
    with pytest.raises(BrokerUrlError) as refused:
        BrokerAddress.from_url(url, environ={})
    assert isinstance(refused.value, InputError)


def test_backoff_is_bounded_exponential_with_full_jitter() -> None:
    """Delay n is uniform in [0, min(max, initial * factor**n)], drawn from the injected rng."""
    backoff = Backoff(initial=0.1, maximum=2.0, factor=2.0)
    rng = random.Random(7)
    for attempt in range(40):
        cap = min(2.0, 0.1 * 2.0**attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap / 2  # jitter spans the range, not a fixed point
    assert backoff.delay(10**6, rng) <= 2.0


def test_backoff_repeats_with_the_same_seed() -> None:
    """The same seed gives the same delays: jitter comes only from the injected rng."""
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(3)) for n in range(10)]
    assert first == [backoff.delay(n, random.Random(3)) for n in range(10)]
