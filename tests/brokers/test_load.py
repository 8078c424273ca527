"""`simulator load` over the NATS cluster: one node SIGKILLed mid-run, nothing lost."""

import asyncio
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import Broker, NatsCluster
from simulator.eventlog import verify
from simulator.load import LoadOptions, run_load


def _monitor(cluster: NatsCluster, index: int, path: str) -> dict[str, Any]:
    """What node `index`'s monitoring endpoint says at `path` (/connz, /jsz)."""
    with urllib.request.urlopen(f"{cluster.monitor_url(index)}{path}", timeout=5) as answer:
        found: dict[str, Any] = json.load(answer)
        return found


@pytest.mark.parametrize("first", [False, True], ids=["umpire-or-leader", "first-node"])
async def test_a_load_run_loses_nothing_when_a_node_dies(tmp_path: Path, first: bool) -> None:
    """SIGKILL a node 1 s in: 0 lost, 0 duplicated, every case complete, the chain verifies.

    The node killed is the umpire's if it sits on one other than the first, else the
    JetStream meta leader's, whose loss stalls the cluster while it elects a new one;
    or the first node, the one the load runner names first to the generators, which
    fail over from it as every other client does.
    """
    killed: list[str] = []

    async def kill_a_node(broker: Broker) -> None:
        assert isinstance(broker, NatsCluster)
        await asyncio.sleep(1.0)  # the drill's moment, not a wait for a condition
        umpire = []
        for index in range(broker.size):
            found = await asyncio.to_thread(_monitor, broker, index, "/connz?limit=1024")
            ids = [c.get("mqtt_client", "") for c in found.get("connections") or []]
            if any("umpire" in client_id for client_id in ids):
                umpire.append(index)
        jsz = await asyncio.to_thread(_monitor, broker, 0, "/jsz")
        leader = int(jsz["meta_cluster"]["leader"].removeprefix("n"))
        victim = 0 if first else next(i for i in [*umpire, leader, 1] if i != 0)
        await broker.kill(victim)
        killed.append(f"n{victim}" + (" (the umpire's)" if victim in umpire else ""))

    options = LoadOptions(
        parties=4,
        rate=40,
        duration_s=4,
        broker="nats",
        workdir=tmp_path,
        drain_s=60,
        resend_after_s=1.0,
    )
    report = await run_load(options, during=kill_a_node)
    assert killed, "no node was killed"
    data = report.as_json()
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 160
    assert data["submitted"] == data["committed_messages"]
    assert (await verify(report.log)).ok
    print({"killed": killed, **{k: data[k] for k in ("resends", "catch_ups", "latency_ms")}})


async def test_generators_start_by_the_given_command(tmp_path: Path) -> None:
    """--worker-command starts each generator (as ssh would on another host), over the cluster.

    The spec goes over the command's stdin and the result comes back on its stdout;
    each gateway connects to the node a hash of its client id picks.
    """
    launched = tmp_path / "launched"
    command = (
        f'sh -c \'echo "$$" >> {launched}; exec "$0" -m simulator.load.worker\' {sys.executable}'
    )
    seen: dict[int, list[str]] = {}

    async def who_is_where(broker: Broker) -> None:
        assert isinstance(broker, NatsCluster)
        for index in range(broker.size):
            found = await asyncio.to_thread(_monitor, broker, index, "/connz?limit=1024")
            seen[index] = [c.get("mqtt_client", "") for c in found.get("connections") or []]

    options = LoadOptions(
        parties=4,
        rate=20,
        duration_s=3,
        broker="nats",
        processes=2,
        workdir=tmp_path,
        worker_commands=(command,),
    )
    report = await run_load(options, during=who_is_where)
    data = report.as_json()
    assert data["lost"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 60
    assert len(launched.read_text().split()) == 2
    # Both gateways were on the cluster while it ran (client ids begin with the principal).
    clients = [client for node in seen.values() for client in node]
    assert sum("-gateway-" in client for client in clients) == 2, seen
