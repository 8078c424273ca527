"""`simulator load` over the NATS cluster: one node SIGKILLed mid-run, nothing lost."""

import asyncio
import json
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
