"""Accounts and ACLs of an exercise, the same rules for every broker; choosing a broker."""

from pathlib import Path

import pytest

from simulator.brokers import (
    EmbeddedBroker,
    ExternalBroker,
    MosquittoBroker,
    UnknownPrincipal,
    amqtt_acls,
    exercise_principals,
    grants_for,
    mosquitto_acl,
    start_broker,
)
from simulator.brokers.base import BrokerStartError
from simulator.messaging.topics import TopicError, Topics
from simulator.transport import BrokerUrlError

EXAMPLE_ACL = Path(__file__).resolve().parents[2] / "brokers" / "acl.example"


def test_party_grants_are_the_topics_of_the_topic_scheme() -> None:
    """A party may write its submit and report topics and read exactly its party filters."""
    topics = Topics("drill")
    grants = grants_for(topics, "alpha")
    assert grants.write == (topics.submit("alpha"), topics.report("alpha"))
    assert grants.read == topics.party_filters("alpha")


def test_a_partitioned_runs_party_may_publish_to_each_of_its_partitions_and_no_other() -> None:
    """Split among 2 umpires: the bare topics (refused with a reason) and partitions 0 and 1."""
    topics = Topics("drill", partitions=2)
    grants = grants_for(topics, "alpha")
    assert grants.write == (
        topics.submit("alpha"),
        topics.report("alpha"),
        topics.submit("alpha", 0),
        topics.report("alpha", 0),
        topics.submit("alpha", 1),
        topics.report("alpha", 1),
    )
    patterns = [line.split() for line in mosquitto_acl(topics).splitlines()]
    writes = {
        parts[2].replace("%u", "alpha") for parts in patterns if parts[:2] == ["pattern", "write"]
    }
    assert writes == set(grants.write)
    with pytest.raises(TopicError):
        Topics("drill", partitions=-1)


def test_mosquitto_pattern_acl_matches_the_concrete_grants() -> None:
    """Each party's pattern lines, with %u filled in, are that party's concrete grants."""
    topics = Topics("drill")
    acl = mosquitto_acl(topics)
    patterns = [line.split() for line in acl.splitlines() if line.startswith("pattern ")]
    writes = tuple(f.replace("%u", "bravo") for _, mode, f in patterns if mode == "write")
    reads = tuple(f.replace("%u", "bravo") for _, mode, f in patterns if mode == "read")
    assert (writes, reads) == (grants_for(topics, "bravo").write, grants_for(topics, "bravo").read)


def test_the_example_acl_is_what_the_generator_writes() -> None:
    """brokers/acl.example is the generated ACL of exercise "drill"; regenerate it, never edit."""
    assert EXAMPLE_ACL.read_text() == mosquitto_acl(Topics("drill"))


def test_simulator_principals_have_their_roles() -> None:
    """Umpire reads and writes the tree, the observer reads it, the controller commands."""
    topics = Topics("drill")
    publish, read = amqtt_acls(topics, ["umpire", "observer", "controller", "alpha"])
    assert publish == {
        "umpire": [topics.tree],
        "observer": [],
        "controller": [topics.control],
        "alpha": [topics.submit("alpha"), topics.report("alpha")],
    }
    assert read["umpire"] == read["observer"] == [topics.tree]
    assert read["controller"] == [topics.answers]


@pytest.mark.parametrize("party", ["x/y", "a+b", "a#", "$sys", "", "Alpha", "a\0b", "x" * 65])
def test_unsafe_party_ids_never_become_accounts_or_acl_entries(party: str) -> None:
    """A party id that could bend a topic or an ACL pattern is refused."""
    with pytest.raises(TopicError):
        exercise_principals(["alpha", party])
    with pytest.raises(TopicError):
        grants_for(Topics("drill"), party)


@pytest.mark.parametrize("party", ["umpire", "observer", "controller", "all", "system"])
def test_reserved_names_cannot_be_parties(party: str) -> None:
    """No party may take the name of one of the simulator's own principals."""
    with pytest.raises(TopicError, match="reserved"):
        exercise_principals([party])


def test_every_principal_gets_its_own_strong_password() -> None:
    """Accounts cover the simulator's principals and each party, with distinct random passwords."""
    accounts = exercise_principals(["alpha", "bravo"])
    assert set(accounts) == {"umpire", "observer", "controller", "alpha", "bravo"}
    assert len(set(accounts.values())) == 5
    assert all(len(password) >= 40 for password in accounts.values())
    assert exercise_principals(["alpha"])["alpha"] != accounts["alpha"]


def test_a_party_listed_twice_is_refused() -> None:
    """Two parties cannot share an id (and so an account)."""
    with pytest.raises(ValueError, match="twice"):
        exercise_principals(["alpha", "alpha"])


def test_start_broker_picks_the_kind(tmp_path: Path) -> None:
    """ "embedded", "mosquitto" and a URL give the matching broker; anything else is refused."""
    topics = Topics("drill")
    assert isinstance(start_broker("embedded", topics, ["alpha"], tmp_path), EmbeddedBroker)
    assert isinstance(start_broker("mosquitto", topics, ["alpha"], tmp_path), MosquittoBroker)
    external = start_broker("mqtts://u:p@broker.example", topics, ["alpha"], tmp_path)
    assert isinstance(external, ExternalBroker)
    assert external.address.tls
    with pytest.raises(BrokerUrlError, match="expected"):
        start_broker("rabbit", topics, ["alpha"], tmp_path)


async def test_external_brokers_use_one_account_for_everyone() -> None:
    """An external broker's credentials (URL, else environment) serve every principal."""
    broker = ExternalBroker("mqtt://ops:secret@broker.example:1884", environ={})
    async with broker:
        assert broker.credentials("umpire") == broker.credentials("alpha") == ("ops", "secret")
        assert broker.address.port == 1884
    anonymous = ExternalBroker("mqtt://broker.example", environ={})
    with pytest.raises(BrokerStartError, match="SIMULATOR_MQTT_USERNAME"):
        anonymous.credentials("alpha")


async def test_brokers_we_run_know_only_the_exercises_principals(tmp_path: Path) -> None:
    """Asking a launched broker for an account it does not have names the ones it has."""
    broker = EmbeddedBroker(Topics("drill"), exercise_principals(["alpha"]), workdir=tmp_path)
    with pytest.raises(UnknownPrincipal, match=r"'mallory'.*'alpha'"):
        broker.credentials("mallory")
