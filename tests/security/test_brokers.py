"""Who may connect, publish and read, on both brokers, over TLS (RELIABILITY items 36 and 39).

Every test runs on the embedded broker and on Mosquitto, each listening
with TLS only and a certificate from a CA generated for the test.
"""

import datetime as dt
from pathlib import Path

import pytest

from simulator.brokers import Broker
from simulator.brokers.tls import (
    TlsFiles,
    generate_tls,
    issue_certificate,
    new_authority,
    write_tls,
)
from simulator.context import wall_now
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Submission, encode
from simulator.records import REJECTION
from simulator.transport import (
    BrokerAddress,
    BrokerRefused,
    BrokerUnavailable,
    Credentials,
    SubscriptionRefused,
    Transport,
)
from simulator.umpire.sequencer import Sequencer
from tests.protocol.builders import AGREEMENT, T0, valid_fields
from tests.security.conftest import BrokerFactory
from tests.transport.helpers import (
    BAD_CREDENTIALS,
    Connector,
    assert_refused,
    quiet,
    receive,
)


def _request(sender: str, recipient: str, message_id: str) -> dict[str, object]:
    return {
        "type": "written_request",
        "message_id": message_id,
        "case_id": f"case-{message_id}",
        "sender": sender,
        "recipient": recipient,
        **valid_fields("written_request", sender, recipient),
    }


async def test_parties_talk_to_the_umpire_over_tls(
    secure_broker: Broker, topics: Topics, connect: Connector
) -> None:
    """Over the TLS-only listener a submission reaches the umpire and the reply comes back."""
    assert secure_broker.address.tls
    umpire = await connect(secure_broker, "umpire")
    alpha = await connect(secure_broker, "alpha")
    await umpire.subscribe(topics.all_submissions)
    await alpha.subscribe(topics.inbox("alpha"))
    await alpha.publish(topics.submit("alpha"), b"over tls")
    [got] = await receive(umpire, 1)
    assert (got.topic, got.payload) == (topics.submit("alpha"), b"over tls")
    await umpire.publish(topics.inbox("alpha"), b"reply")
    [reply] = await receive(alpha, 1)
    assert reply.payload == b"reply"


async def test_a_plain_client_cannot_use_the_tls_listener(
    secure_broker: Broker, connect: Connector
) -> None:
    """With the right password but without TLS a client never gets a session: no plain port."""
    credentials = secure_broker.credentials("alpha")
    plain = Transport(
        BrokerAddress(secure_broker.address.host, secure_broker.address.port),
        connect.transport(secure_broker, "alpha", purpose="plain").session,
        rng=connect.rng,
        credentials=credentials,
        connect_timeout=2,
    )
    with pytest.raises(BrokerUnavailable):
        async with plain:
            pass


@BAD_CREDENTIALS
async def test_clients_without_valid_credentials_are_refused_over_tls(
    secure_broker: Broker, connect: Connector, credentials: Credentials | None
) -> None:
    """TLS does not replace passwords: anonymous, wrong-password and unknown users are refused."""
    await assert_refused(secure_broker, connect, credentials)


async def test_spoofed_publish_and_prying_subscribe_are_refused_and_the_umpire_refuses_spoofs(
    secure_broker: Broker, topics: Topics, connect: Connector
) -> None:
    """Alpha can neither publish as beta nor read beta's events; what it claims on its own topic
    in beta's name the umpire rejects, naming the connection's party."""
    umpire = await connect(secure_broker, "umpire")
    alpha = await connect(secure_broker, "alpha")
    await umpire.subscribe(topics.all_submissions)

    # 1. The broker: beta's submit topic is not alpha's to write. Both brokers
    # acknowledge the denied publish (PUBACK) and drop it.
    spoof = encode(Submission(party="beta", seq=1, message=_request("beta", "alpha", "s1")))
    await alpha.publish(topics.submit("beta"), spoof)

    # 2. The broker: beta's events are not alpha's to read. amqtt refuses the
    # subscription in its SUBACK; Mosquitto grants it and delivers nothing.
    for prying in (topics.log("beta", "gamma"), topics.log("gamma", "beta"), topics.inbox("beta")):
        try:
            await alpha.subscribe(prying)
        except SubscriptionRefused:
            assert secure_broker.name == "embedded"
        else:
            assert secure_broker.name == "mosquitto"
    for topic in (topics.log("beta", "gamma"), topics.log("gamma", "beta"), topics.inbox("beta")):
        await umpire.publish(topic, b"beta's business")
    assert await quiet(alpha, 0.5) == []

    # 3. The umpire: on its own topic alpha claims to be beta, as the party of
    # the submission or as the message's sender.
    claims = [
        Submission(party="beta", seq=2, message=_request("beta", "alpha", "s2")),
        Submission(party="alpha", seq=3, message=_request("beta", "alpha", "s3")),
    ]
    for claim in claims:
        await alpha.publish(topics.submit("alpha"), encode(claim))
    received = await receive(umpire, 2)
    assert await quiet(umpire) == [], "the spoof on beta's topic reached the umpire"
    assert [m.topic for m in received] == [topics.submit("alpha")] * 2

    sequencer = Sequencer(AGREEMENT, topics.exercise, wallclock=wall_now)
    reasons = []
    for message in received:
        # The umpire takes the party from the topic the broker let it publish on.
        party = topics.party_of(message.topic, "submit")
        assert party == "alpha"
        decision = sequencer.submit(message.payload, party, T0)
        assert decision.notice is not None, "the umpire accepted a spoofed submission"
        reasons.append(decision.notice.reason)
    assert "claims party 'beta' but came from 'alpha'" in reasons[0]
    assert "sender 'beta' is not the connection's party 'alpha'" in reasons[1]
    # Rejections are recorded (nothing is lost), and no case was opened in beta's name.
    assert [e.type for e in sequencer.pending.events] == [REJECTION] * 2
    assert sequencer.pending.cases == {}


async def test_a_denied_publish_is_acknowledged_but_never_delivered(
    secure_broker: Broker, topics: Topics, connect: Connector
) -> None:
    """The broker's PUBACK for a denied publish is no delivery: no subscriber, the umpire
    included, ever gets it, so only what reaches the log can count as delivered."""
    umpire = await connect(secure_broker, "umpire")
    observer = await connect(secure_broker, "observer")
    alpha = await connect(secure_broker, "alpha")
    await umpire.subscribe(topics.tree)
    await observer.subscribe(topics.tree)
    denied = [topics.submit("beta"), topics.log("alpha", "beta"), topics.clock, topics.control]
    for topic in denied:
        # Returns normally: the sender cannot tell a denied publish from a delivered one.
        await alpha.publish(topic, b"denied")
    await alpha.publish(topics.submit("alpha"), b"allowed")
    for watcher in (umpire, observer):
        got = await receive(watcher, 1) + await quiet(watcher)
        assert [(m.topic, m.payload) for m in got] == [(topics.submit("alpha"), b"allowed")]


def _tls_with(
    workdir: Path, *, not_before: dt.datetime, not_after: dt.datetime, trusted: TlsFiles | None
) -> tuple[TlsFiles, Path]:
    """Server files with the given validity; and the CA a client trusts (its own or `trusted`'s)."""
    now = wall_now()
    authority = new_authority("test CA", now=now)
    key, certificate = issue_certificate(authority, not_before=not_before, not_after=not_after)
    files = write_tls(workdir, authority, key, certificate)
    return files, (trusted.ca_file if trusted is not None else files.ca_file)


@pytest.mark.parametrize("problem", ["expired", "not-yet-valid", "wrong-ca"])
async def test_clients_refuse_a_broker_with_a_bad_certificate(
    start: BrokerFactory, connect: Connector, tmp_path: Path, problem: str
) -> None:
    """A broker whose certificate is expired, not yet valid or from a CA the client does not
    trust is refused at once, with the reason, before any password is sent."""
    now = wall_now()
    hour = dt.timedelta(hours=1)
    if problem == "expired":
        files, trusted = _tls_with(
            tmp_path / "bad", not_before=now - 48 * hour, not_after=now - 24 * hour, trusted=None
        )
        expected = "expired"
    elif problem == "not-yet-valid":
        files, trusted = _tls_with(
            tmp_path / "bad", not_before=now + 24 * hour, not_after=now + 48 * hour, trusted=None
        )
        expected = "not yet valid"
    else:
        ours = generate_tls(tmp_path / "ours", now=now)
        files, trusted = _tls_with(
            tmp_path / "bad", not_before=now - hour, not_after=now + hour, trusted=ours
        )
        # OpenSSL words it by what it finds ("self-signed certificate in certificate chain").
        expected = "certificate verify failed"
    async with start(files) as broker:
        client = Transport(
            BrokerAddress(broker.address.host, broker.address.port, tls=True, ca_file=trusted),
            connect.transport(broker, "alpha", purpose="tls").session,
            rng=connect.rng,
            credentials=broker.credentials("alpha"),
            connect_timeout=5,
        )
        with pytest.raises(BrokerRefused, match="TLS certificate not accepted") as refused:
            async with client:
                pass
        assert expected in str(refused.value)
        if problem == "wrong-ca":
            # The certificate itself is fine: a client that trusts its CA gets in.
            async with connect.transport(broker, "alpha", purpose="good"):
                pass
