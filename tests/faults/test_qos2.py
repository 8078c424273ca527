"""RELIABILITY item 15: a QoS 2 publish cut between PUBREC and PUBREL is still exactly once.

Exercises publish at QoS 1; `simulator load --qos 2` is where QoS 2 flows, so the
drill is a load run whose party connections go through the fault proxy. The
proxy passes the broker's PUBREC on and cuts the connection at once, so the
PUBREL never reaches the broker. The transport's next connection is a fresh
session, so the handshake is not resumed: the outbox sends again and the umpire
deduplicates by message id. Judged by reconciling the log.
"""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from simulator.brokers import Broker
from simulator.eventlog import verify
from simulator.faults import FaultProxy, ProxiedBroker, Rule
from simulator.faults.proxy import PUBREC
from simulator.load import LoadOptions, run_load


async def test_item15_qos2_cut_between_pubrec_and_pubrel_is_exactly_once(tmp_path: Path) -> None:
    cuts: list[Rule] = []

    @contextlib.asynccontextmanager
    async def via_proxy(broker: Broker) -> AsyncIterator[Broker]:
        async with FaultProxy(broker.address) as proxy:
            # Only the parties publish at QoS 2 (the umpire stays at QoS 1), so every
            # PUBREC towards a client answers a party's submission.
            cuts.append(proxy.add(Rule("cut", direction="down", kind=PUBREC, count=3)))
            yield ProxiedBroker(broker, proxy)

    report = await run_load(
        LoadOptions(
            parties=4,
            rate=20,
            duration_s=3,
            broker="mosquitto",
            qos=2,
            processes=1,
            drain_s=60,
            resend_after_s=1.0,
            workdir=tmp_path,
        ),
        through=via_proxy,
    )
    assert cuts[0].hits == 3, "the handshake was never cut"
    data = report.as_json()
    assert (data["lost"], data["duplicated"], data["undelivered"]) == (0, 0, 0)
    assert data["rejected"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 60
    assert data["submitted"] == data["committed_messages"]
    assert (await verify(report.log)).ok
