"""What security costs: Ed25519 on requests, and TLS on both brokers, against baselines.

    python benchmarks/security.py [--messages N] [--round-trips N]

Measured in one run:
(a) parsing a written request (the umpire does this anyway): the baseline;
(b) signing it (`Signatories.sign`, which parses too) and (c) checking it
(`Signatories.verify` on the parsed message), as ratios to (a);
(d) QoS 1 request/reply round trips between two principals over plain TCP
and over TLS, on the embedded broker and on Mosquitto, with the TLS/plain
ratio; and the time to connect a client either way.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from simulator.brokers import EmbeddedBroker, MosquittoBroker, exercise_principals, transport_for
from simulator.brokers.tls import generate_tls
from simulator.context import wall_now
from simulator.messaging.topics import Topics
from simulator.protocol import Official, Party, parse_message
from simulator.signing import Signatories
from simulator.transport import SessionSettings

PARTIES = [
    Party(
        id=pid,
        name=f"Agency {pid}",
        head=Official(name=f"{pid} head"),
        deputies=(Official(name=f"{pid} deputy"),),
        seal=f"{pid}-seal",
        coordination_unit="unit",
    )
    for pid in ("alpha", "beta")
]


def _request(number: int) -> dict[str, Any]:
    return {
        "type": "written_request",
        "message_id": f"alpha.{number}",
        "case_id": f"case-{number}",
        "sender": "alpha",
        "recipient": "beta",
        "area": "public_order",
        "requesting_party_name": "Agency alpha",
        "requested_party_name": "Agency beta",
        "essence": "A football final near the border bridge." * 3,
        "purpose": "Coordinate patrols.",
        "justification": "Supporters cross the bridge.",
        "assistance_sought": "Two patrols on the far bank.",
        "signature": {"name": "alpha head", "title": "Minister"},
        "seal": "alpha-seal",
    }


def crypto(count: int) -> None:
    keys = Signatories.training("bench", PARTIES)
    drafts = [_request(n) for n in range(count)]
    started = time.perf_counter()
    parsed = [parse_message(d) for d in drafts]
    parse_rate = count / (time.perf_counter() - started)
    started = time.perf_counter()
    signed = [keys.sign(d) for d in drafts]
    sign_rate = count / (time.perf_counter() - started)
    checked = [parse_message(s) for s in signed]
    started = time.perf_counter()
    statuses = [keys.verify(m) for m in checked]
    verify_rate = count / (time.perf_counter() - started)
    assert len(parsed) == count
    assert all(s.value == "valid" for s in statuses)
    print(f"(a) parse a written request (baseline): {parse_rate:>10,.0f} /s")
    print(f"(b) sign it (parse + Ed25519):          {sign_rate:>10,.0f} /s  "
          f"({parse_rate / sign_rate:.1f}x the parse)")  # fmt: skip
    print(f"(c) verify it:                          {verify_rate:>10,.0f} /s  "
          f"({parse_rate / verify_rate:.1f}x the parse)")  # fmt: skip


async def round_trips(kind: str, secure: bool, count: int, workdir: Path) -> tuple[float, float]:
    topics = Topics(f"bench{kind[:3]}{int(secure)}")
    tls = generate_tls(workdir / "tls", now=wall_now()) if secure else None
    accounts = exercise_principals(["alpha"])
    broker_type = EmbeddedBroker if kind == "embedded" else MosquittoBroker
    async with broker_type(topics, accounts, workdir=workdir / kind, tls=tls) as broker:
        rng = random.Random(1)

        def make(principal: str) -> Any:
            session = SessionSettings(f"b{principal}{int(secure)}"[:23])
            return transport_for(broker, principal, session, rng=rng)

        started = time.perf_counter()
        async with make("umpire") as umpire:
            connect_s = time.perf_counter() - started
            async with make("alpha") as alpha:
                await umpire.subscribe(topics.all_submissions)
                await alpha.subscribe(topics.inbox("alpha"))
                inbox = alpha.messages()
                submissions = umpire.messages()
                times = []
                for n in range(count):
                    began = time.perf_counter()
                    await alpha.publish(topics.submit("alpha"), str(n).encode())
                    await anext(submissions)
                    await umpire.publish(topics.inbox("alpha"), str(n).encode())
                    await anext(inbox)
                    times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, connect_s * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--round-trips", type=int, default=300)
    args = parser.parse_args()
    crypto(args.messages)
    with tempfile.TemporaryDirectory() as directory:
        for kind in ("embedded", "mosquitto"):
            plain, plain_connect = await round_trips(
                kind, False, args.round_trips, Path(directory) / f"{kind}-plain"
            )
            tls, tls_connect = await round_trips(
                kind, True, args.round_trips, Path(directory) / f"{kind}-tls"
            )
            print(
                f"(d) {kind:9} round trip median: plain {plain:.2f} ms, TLS {tls:.2f} ms "
                f"({tls / plain:.2f}x); connect: plain {plain_connect:.0f} ms, "
                f"TLS {tls_connect:.0f} ms"
            )


if __name__ == "__main__":
    asyncio.run(main())
