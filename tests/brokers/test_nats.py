"""The NATS cluster: three nodes that carry MQTT between them and keep the parties apart."""

import asyncio
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from simulator.brokers import Broker, NatsCluster, start_broker, transport_for
from simulator.brokers.access import grants_for, nats_permissions, nats_subjects
from simulator.brokers.nats import accounts_config
from simulator.brokers.tls import generate_tls
from simulator.context import fresh_rng
from simulator.messaging.topics import Topics
from simulator.transport import Received, SessionSettings, SubscriptionRefused, Transport


def _tool(name: str) -> str:
    binary = shutil.which(name)
    assert binary, f"{name} is missing: apt-get install mosquitto-clients"
    return binary


async def _next(transport: Transport, within: float = 30) -> Received:
    async with asyncio.timeout(within):
        return await anext(aiter(transport.messages()))


def test_mqtt_filters_become_the_subjects_nats_server_maps_them_to() -> None:
    """`/` is `.`, `+` is `*`, a trailing `#` is `>` plus its parent (MQTT's `a/#` matches `a`)."""
    assert nats_subjects("coop/drill/log/+/alpha") == ("coop.drill.log.*.alpha",)
    assert nats_subjects("coop/drill/#") == ("coop.drill.>", "coop.drill")
    assert nats_subjects("coop/drill/clock") == ("coop.drill.clock",)


def test_a_partys_nats_permissions_are_its_grants_and_nothing_else() -> None:
    """A party publishes to its submit and report subjects, reads its own; MQTT's delivery too."""
    topics = Topics("drill")
    permissions = nats_permissions(grants_for(topics, "alpha"))
    assert permissions["publish"] == {
        "allow": [
            "coop.drill.submit.alpha",
            "coop.drill.report.alpha",
        ]
    }
    assert permissions["subscribe"] == {
        "allow": [
            "coop.drill.log.alpha.*",
            "coop.drill.log.*.alpha",
            "coop.drill.inbox.alpha",
            "coop.drill.clock",
            "$MQTT.sub.>",
        ]
    }
    # A principal that may publish nothing is denied everything (an empty allow means "all").
    assert nats_permissions(grants_for(topics, "observer"))["publish"] == {"deny": [">"]}


def test_every_user_of_the_accounts_file_is_mqtt_only() -> None:
    """No user can speak the NATS protocol, where `$MQTT.sub.>` would let it read deliveries."""
    text = accounts_config(
        Topics("drill"), {"umpire": "$2b$04$x", "alpha": "$2b$04$y"}, restricted_observer=False
    )
    accounts = json.loads(text.split("accounts: ", 1)[1])
    users = accounts["EXERCISE"]["users"]
    assert [u["user"] for u in users] == ["umpire", "alpha"]
    assert all(u["allowed_connection_types"] == ["MQTT"] for u in users)
    assert accounts["EXERCISE"]["jetstream"] == "enabled"


def test_the_example_accounts_file_is_what_the_generator_writes() -> None:
    """brokers/nats-accounts.example is the generated file of exercise "drill"; never edit it."""
    example = Path(__file__).resolve().parents[2] / "brokers" / "nats-accounts.example"
    principals = ("umpire", "observer", "controller", "alpha", "bravo")
    hashed = dict.fromkeys(principals, "<bcrypt hash of the password>")
    expected = accounts_config(Topics("drill"), hashed, restricted_observer=False)
    assert example.read_text(encoding="utf-8") == expected


@pytest.mark.parametrize(("kind", "nodes"), [("nats", 3), ("nats:1", 1), ("nats:5", 5)])
def test_nats_names_a_cluster_of_three_nodes_or_of_n(kind: str, nodes: int, tmp_path: Path) -> None:
    broker = start_broker(kind, Topics("drill"), ["alpha"], tmp_path)
    assert isinstance(broker, NatsCluster)
    assert broker.size == nodes
    assert broker.max_qos == 1
    assert broker.protocols == ("3.1.1",)


async def _client(*argv: str) -> asyncio.subprocess.Process:
    # stdbuf: a piped stdout is block-buffered, and the SUBACK line must be read at once.
    return await asyncio.create_subprocess_exec(
        _tool("stdbuf"), "-oL", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


def _login(cluster: Broker, principal: str, node: int, client_id: str) -> list[str]:
    user, password = cluster.credentials(principal)
    port = cluster.address.nodes[node].port
    return ["-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password, "-i", client_id]


async def _refused_subscription(cluster: NatsCluster, principal: str, topic: str) -> str:
    sub = await _client(
        _tool("mosquitto_sub"), *_login(cluster, principal, 2, f"pry-{abs(hash(topic))}"[:23]),
        "-q", "1", "-t", topic, "-W", "10",
    )  # fmt: skip
    output, _ = await asyncio.wait_for(sub.communicate(), 30)
    return output.decode()


async def _publish(cluster: NatsCluster, principal: str, node: int, topic: str, text: str) -> None:
    pub = await _client(
        _tool("mosquitto_pub"), *_login(cluster, principal, node, f"{principal}-pub"),
        "-q", "1", "-t", topic, "-m", text, "-d",
    )  # fmt: skip
    output, _ = await asyncio.wait_for(pub.communicate(), 30)
    # The broker acknowledges a publish whether or not the ACL lets it through.
    assert b"received PUBACK" in output, output.decode()


async def _nats_protocol_refused(cluster: NatsCluster) -> None:
    """A party's credentials on a node's NATS client port are refused: MQTT only."""
    user, password = cluster.credentials("alpha")
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.client_port(0))
    try:
        info = await asyncio.wait_for(reader.readline(), 10)
        assert info.startswith(b"INFO ")
        connect = json.dumps({"user": user, "pass": password, "verbose": False, "pedantic": False})
        writer.write(f"CONNECT {connect}\r\nPING\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 10)
        assert answer.startswith(b"-ERR 'Authorization Violation'"), answer
    finally:
        writer.close()


async def test_a_party_cannot_read_or_publish_into_another_partys_topics(
    cluster: NatsCluster, topics: Topics
) -> None:
    """mosquitto_sub/pub and our transport as bravo and alpha: only their own topics, any node.

    Nor may anyone speak the NATS protocol, where `$MQTT.sub.>` would let a
    party read other parties' deliveries.
    """
    prying = [
        topics.inbox("alpha"),
        f"{topics.base}/log/alpha/charlie",
        f"{topics.base}/log/+/+",
        topics.submit("alpha"),
        topics.tree,
        "#",
        "$MQTT/sub/#",
    ]
    answers = await asyncio.gather(*(_refused_subscription(cluster, "bravo", t) for t in prying))
    for topic, answer in zip(prying, answers, strict=True):
        assert "All subscription requests were denied" in answer, (topic, answer)

    umpire = transport_for(cluster, "umpire", SessionSettings("umpire-a"), rng=fresh_rng())
    bravo = transport_for(cluster, "bravo", SessionSettings("bravo-a"), rng=fresh_rng())
    async with umpire, bravo:
        with pytest.raises(SubscriptionRefused):
            await bravo.subscribe(topics.inbox("alpha"))
        await umpire.subscribe(topics.tree)
        # alpha writes into bravo's submit topic and a log topic, then its own: only its own
        # arrives, and from one publisher in order, so the others would have come first.
        await _publish(cluster, "alpha", 0, topics.submit("bravo"), "spoofed")
        await _publish(cluster, "alpha", 0, f"{topics.base}/log/alpha/bravo", "forged")
        await _publish(cluster, "alpha", 0, topics.submit("alpha"), "own")
        received = await _next(umpire)
        assert (received.topic, received.payload) == (topics.submit("alpha"), b"own")

        # alpha reads its own inbox on node 1 while the umpire writes from its node.
        reader = await _client(
            _tool("mosquitto_sub"), *_login(cluster, "alpha", 1, "alpha-reader"),
            "-q", "1", "-t", topics.inbox("alpha"), "-C", "1", "-d", "-F", "payload=%p",
        )  # fmt: skip
        assert reader.stdout is not None
        while b"SUBACK" not in await asyncio.wait_for(reader.stdout.readline(), 30):
            pass
        await umpire.publish(topics.inbox("bravo"), b"not for alpha")
        await umpire.publish(topics.inbox("alpha"), b"for alpha")
        rest, _ = await asyncio.wait_for(reader.communicate(), 30)
        assert b"payload=for alpha" in rest
        assert b"not for alpha" not in rest
    await _nats_protocol_refused(cluster)


async def test_a_secure_cluster_speaks_tls_only_on_every_node(
    topics: Topics, tmp_path: Path
) -> None:
    """--secure: every node's MQTT listener takes TLS clients that check its certificate only."""
    tls = generate_tls(tmp_path / "tls", now=dt.datetime.now(dt.UTC))
    cluster = start_broker("nats", topics, ["alpha"], tmp_path / "nats", tls=tls)
    async with cluster:
        assert cluster.address.tls
        umpire = transport_for(cluster, "umpire", SessionSettings("umpire-a"), rng=fresh_rng())
        async with umpire:
            await umpire.subscribe(topics.clock)
            await umpire.publish(topics.clock, b"over tls")
            assert (await _next(umpire)).payload == b"over tls"
        plain = await _client(
            _tool("mosquitto_pub"), *_login(cluster, "alpha", 1, "alpha-plain"),
            "-q", "1", "-t", topics.submit("alpha"), "-m", "plain",
        )  # fmt: skip
        output, _ = await asyncio.wait_for(plain.communicate(), 30)
        assert plain.returncode != 0, output.decode()
