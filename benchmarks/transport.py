"""What our `Transport` costs per message, against aiomqtt straight, in one run.

    python benchmarks/transport.py [--messages 20000] [--in-flight 1000] [--payload-bytes 200]

On one private Mosquitto (accounts and ACL as `simulator load` starts it):
(a) publish rate: N QoS 1 publishes with up to --in-flight awaiting their PUBACK,
    through aiomqtt's `Client.publish` (the baseline) and through `Transport.publish`;
(b) receive rate: N QoS 1 messages from one publisher, read by a subscriber through
    aiomqtt's `Client.messages` (the baseline) and through `Transport.messages()`.
Prints messages per second and the ratio Transport/aiomqtt for each. About 30 s.

Measured here (2 cores, idle, 2026-12-02), the transport of the previous
stop against today's (direct paho paths), same script:
(a) publish: 4,434/s (0.66 of aiomqtt's 6,763) -> 10,609/s (1.46 of 7,284);
(b) receive: 3,360/s (0.91 of 3,696) -> 7,567/s (1.05 of 7,203); (b) is also
    bounded by the publishing Transport, which changed with it.
"""

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Awaitable, Callable

import aiomqtt
from bench_broker import private_mosquitto

from simulator.brokers import MosquittoBroker, transport_for
from simulator.messaging.topics import Topics
from simulator.transport import SessionSettings, Transport

PublishFn = Callable[[str, bytes], Awaitable[None]]


def _transport(broker: MosquittoBroker, principal: str, in_flight: int) -> Transport:
    return transport_for(
        broker,
        principal,
        SessionSettings(f"bench-{principal}"),
        rng=random.Random(1),
        max_inflight=in_flight,
        max_buffered=1_000_000,
    )


def _client(broker: MosquittoBroker, principal: str, in_flight: int) -> aiomqtt.Client:
    user, password = broker.credentials(principal)
    address = broker.address
    return aiomqtt.Client(
        address.host,
        address.port,
        username=user,
        password=password,
        identifier=f"bench-raw-{principal}",
        max_inflight_messages=in_flight,
    )


async def publish_rate(broker: MosquittoBroker, topics: Topics, args: argparse.Namespace) -> None:
    body = b"x" * args.payload_bytes
    topic = topics.submit("p000")
    window = asyncio.Semaphore(args.in_flight)

    async def timed(publish: PublishFn) -> float:
        async def one() -> None:
            async with window:
                await publish(topic, body)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.messages)))
        return args.messages / (time.perf_counter() - started)

    async with _client(broker, "p000", args.in_flight) as client:
        raw = await timed(lambda t, b: client.publish(t, b, qos=1))
    async with _transport(broker, "p000", args.in_flight) as transport:
        ours = await timed(lambda t, b: transport.publish(t, b, qos=1))
    print(f"(a) publish: aiomqtt {raw:,.0f}/s, Transport {ours:,.0f}/s, ratio {ours / raw:.2f}")


async def receive_rate(broker: MosquittoBroker, topics: Topics, args: argparse.Namespace) -> None:
    body = b"x" * args.payload_bytes
    topic = topics.submit("p000")
    count = args.messages

    async def send_all(publisher: Transport) -> None:
        window = asyncio.Semaphore(args.in_flight)

        async def one() -> None:
            async with window:
                await publisher.publish(topic, body, qos=1)

        await asyncio.gather(*(one() for _ in range(count)))

    async with _transport(broker, "p000", args.in_flight) as publisher:
        async with _client(broker, "umpire", args.in_flight) as client:
            await client.subscribe(topics.all_submissions, qos=1)
            started = time.perf_counter()
            sending = asyncio.create_task(send_all(publisher))
            got = 0
            async for _ in client.messages:
                got += 1
                if got == count:
                    break
            raw = count / (time.perf_counter() - started)
            await sending
        async with _transport(broker, "umpire", args.in_flight) as transport:
            await transport.subscribe(topics.all_submissions, qos=1)
            started = time.perf_counter()
            sending = asyncio.create_task(send_all(publisher))
            got = 0
            async for _ in transport.messages():
                got += 1
                if got == count:
                    break
            ours = count / (time.perf_counter() - started)
            await sending
    print(f"(b) receive: aiomqtt {raw:,.0f}/s, Transport {ours:,.0f}/s, ratio {ours / raw:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--payload-bytes", type=int, default=200)
    args = parser.parse_args()
    # aiomqtt warns on every publish past 10 awaiting a PUBACK: silenced for both sides.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    topics = Topics("bench-transport")
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as directory:
        broker = private_mosquitto(topics, directory)
        async with broker:
            await publish_rate(broker, topics, args)
            await receive_rate(broker, topics, args)


if __name__ == "__main__":
    asyncio.run(main())
