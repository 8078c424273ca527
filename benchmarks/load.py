"""`simulator load` through the full path, against the broker's own ceiling, in one run.

    python benchmarks/load.py [--duration 60] [--short 15] [--payload-bytes 512] [--profile DIR]

About 5-7 minutes.

Measures, on one private Mosquitto started the way `simulator load` starts it
(accounts, ACL, persistence saved once a second), each with the same payload size:

(a) the broker's ceiling: Mosquitto's own C clients, `mosquitto_pub -l` pipelining
    QoS 1 publishes (1000 in flight) to one `mosquitto_sub`;
(b) a plain aiomqtt QoS 1 echo: a client publishes, a second receives and publishes
    back, the first receives; 100 echoes in flight (aiomqtt straight, not our
    transport: this is the baseline a hand-written client gets);
(c) `simulator load`, default mode (batched via gateways: one connection per
    generator process speaking for its parties, submissions of all of them in
    one MQTT message, several committed events per MQTT message back): a ramp
    of short runs finds the highest rate it keeps up with (`simulator load
    --find-max`: rates x1.3 from max(--start-rate, (b)/2), each held when every
    case is done, nothing lost and p99 under --p99-bound), then one run at that
    rate for --duration seconds gives its sustained events/s (once more a step
    lower if that run falls behind);
(d) the same at half that rate, for --short seconds: message latency there;
(e) `--one-per-message`: every submission its own MQTT publish, as real
    agencies send them (the umpire still groups committed events per topic):
    the same ramp from (b)'s rate finds its highest rate held, then one run
    there for --short seconds.

(f) `simulator load` at 1,000 events/s, for --short seconds: the umpire's CPU per
    event there against (c)'s (per-batch costs show at moderate rates).

Then the ratios the issues set as targets: (c)/(b) >= 4, (c)/(a) >= 0.8,
(e)/(b) >= 0.8, p99 at (d) <= 25 ms, and 0 lost / 0 duplicated everywhere;
issue 16: (c) >= 15,000 events/s, (e)/(a) >= 0.4, and the umpire's CPU per
event at (f) no more than 1.5 times (c)'s.
On a shared machine the absolute figures are noise; the ratios and the CPU
milliseconds per committed event (printed per role) are what carry over.
Every run is bounded in count and time and stops by itself.

Measured here (2 cores, idle, 2026-12-02, two runs): (a) 29,808 / 41,600 msg/s;
(b) 2,059 / 2,695 echoes/s; (c) 8,204 events/s sustained for 60 s (p99 214 ms;
the same minute at 10,633 fell behind) / 7,835 (fell behind, before the retry a
step lower existed); (d) p99 29.7 / 18.3 ms at ~4,000 events/s; (e) 2,054 /
2,688 events/s, as offered; 0 lost and 0 duplicated in every run. So (c)/(b)
3.98 / 2.91, (c)/(a) 0.28 / 0.19, (e)/(b) 1.00 / 1.00. CPU per committed event
at (c): umpire 0.107 ms, generators 0.067 ms, Mosquitto 0.007 ms; the umpire's
one process (its Python holds one core) is what bounds (c).

Measured again 2026-12-07 (2 cores, nothing else running; load average 0.8-1.5,
the benchmark's own), before and after the pipeline's linger became the time a
batch takes to fill (it was a flat 20 ms every message waited): (a) 27,819 /
36,600 msg/s; (b) 1,450 / 2,036; (c) 8,320 / 8,010 events/s sustained; (d) p99
43.5 / 29.7 ms (p50 26.1 / 10.4) at ~4,100 events/s; (e), before this ramp
existed, 1,445 events/s as offered, and after, 5,892 held (5,010 sustained in
its 15 s run at that rate), so (e)/(a) 0.05 / 0.14; umpire CPU per event at
1,000/s against (c)'s 2.64 / 2.41; 0 lost, 0 duplicated everywhere. Then with
appends grouped (batches handed on during an append go in the next): (a) 28,872;
(c) 7,762 sustained for the minute (a short ramp step held 9,948; the minute at
10,143 fell behind); (d) p99 34.6 ms (p50 13.6); (e) 4,519, (e)/(a) 0.16; (f)/(c)
2.55. Paired `simulator load --rate 1100` runs, with and without the grouping:
p99 21.8 / 22.0 ms against 24.7 / 37.9, umpire 0.167 against 0.178 ms an event.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
from bench_broker import private_mosquitto
from pyinstrument import Profiler

from simulator.brokers import MosquittoBroker
from simulator.load import LoadOptions, Mix, find_max, run_load
from simulator.load.command import ramp_row
from simulator.messaging.topics import Topics

NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


async def c_clients(broker: MosquittoBroker, topics: Topics, count: int, payload: int) -> float:
    """Messages per second from mosquitto_pub -l to mosquitto_sub, QoS 1, pipelined."""
    sub_user, sub_password = broker.credentials("umpire")
    pub_user, pub_password = broker.credentials("p000")
    address = broker.address
    common = ["-h", address.host, "-p", str(address.port), "-q", "1"]
    # Popen, not asyncio's: two C processes started once, before anything is timed.
    subscriber = subprocess.Popen(  # noqa: ASYNC220
        ["mosquitto_sub", *common, "-u", sub_user, "-P", sub_password, "-t",
         topics.all_submissions, "-C", str(count), "-i", "bench-sub", "-W", "60", "-F", "%U"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(0.5)  # subscribed before the first publish
    lines = (b"x" * max(payload - 1, 1) + b"\n") * count
    wall_started = time.time()
    publisher = subprocess.Popen(  # noqa: ASYNC220
        ["mosquitto_pub", *common, "-u", pub_user, "-P", pub_password, "-t",
         topics.submit("p000"), "-l", "-M", "1000", "-i", "bench-pub"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert publisher.stdin is not None
    await asyncio.to_thread(publisher.stdin.write, lines)
    await asyncio.to_thread(publisher.stdin.flush)
    # stdin stays open until the subscriber has everything: at end of input
    # mosquitto_pub 2.0 disconnects and drops what it still held (65% of 100,000 here).
    try:
        # "-F %U": each message's arrival time (Unix seconds with nanoseconds), so the
        # rate is what arrived by the last arrival, even if -W had to cut the wait short.
        output, _ = await asyncio.to_thread(subscriber.communicate, None, 120)
        stamps = output.split()
    finally:
        publisher.stdin.close()
        for process in (publisher, subscriber):
            if process.poll() is None:
                process.kill()
            process.wait()
    if len(stamps) < count:
        print(f"    (mosquitto_sub got {len(stamps)} of {count} QoS 1 messages)", flush=True)
    if not stamps:
        return 0.0
    # Arrival times are wall-clock, as `wall_started` is (the same machine).
    return len(stamps) / max(float(stamps[-1]) - wall_started, 1e-9)


async def aiomqtt_echo(
    broker: MosquittoBroker, topics: Topics, count: int, payload: int, limit: float = 15.0
) -> float:
    """Echoes per second: publish, receive and publish back, receive; QoS 1, 100 in flight."""
    address = broker.address
    user, password = broker.credentials("p000")
    echo_user, echo_password = broker.credentials("umpire")
    back = topics.log("p000", "p001")
    body = b"x" * payload
    done = asyncio.Event()
    received = 0
    window = asyncio.Semaphore(100)

    async with (
        aiomqtt.Client(address.host, address.port, username=user, password=password,
                       identifier="bench-client", socket_options=NODELAY,
                       max_inflight_messages=1000) as client,
        aiomqtt.Client(address.host, address.port, username=echo_user, password=echo_password,
                       identifier="bench-echo", socket_options=NODELAY,
                       max_inflight_messages=1000) as echo,
    ):  # fmt: skip
        await client.subscribe(back, qos=1)
        await echo.subscribe(topics.all_submissions, qos=1)

        async def echoing() -> None:
            async for message in echo.messages:
                payload_in = message.payload
                assert isinstance(payload_in, bytes)
                await echo.publish(back, payload_in, qos=1)

        async def receiving() -> None:
            nonlocal received
            async for _ in client.messages:
                received += 1
                window.release()
                if received >= count:
                    done.set()
                    return

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(echoing()), group.create_task(receiving())]
            started = time.perf_counter()
            publishing: set[asyncio.Task[None]] = set()
            for _ in range(count):
                await window.acquire()
                if time.perf_counter() - started > limit:
                    break
                task = group.create_task(client.publish(topics.submit("p000"), body, qos=1))
                publishing.add(task)
                task.add_done_callback(publishing.discard)
            # Bounded in time too: on a busy machine 20,000 echoes can take minutes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), max(limit - (time.perf_counter() - started), 1))
            elapsed = time.perf_counter() - started
            for task in tasks:
                task.cancel()
    return received / elapsed


async def baselines(args: argparse.Namespace) -> tuple[float, float]:
    topics = Topics(f"bench{secrets.token_hex(3)}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as directory:
        broker = private_mosquitto(topics, directory)
        async with broker:
            c_rate = await c_clients(broker, topics, args.c_count, args.payload_bytes)
            echo_rate = await aiomqtt_echo(broker, topics, args.echo_count, args.payload_bytes)
    return c_rate, echo_rate


async def load_run(label: str, options: LoadOptions, profile: Path | None = None) -> dict[str, Any]:
    profiler = None
    if profile is not None:
        os.environ["SIMULATOR_LOAD_PROFILE"] = str(profile)
        profiler = Profiler(interval=0.005)
        profiler.start()
    try:
        report = await run_load(options)
    finally:
        os.environ.pop("SIMULATOR_LOAD_PROFILE", None)
        if profiler is not None and profile is not None:
            profiler.stop()
            (profile / "umpire.txt").write_text(profiler.output_text(show_all=False))
    data = report.as_json()
    lat = data["latency_ms"]
    print(
        f"{label}: offered {options.rate:,.0f} cases/s; committed "
        f"{data['committed_events_per_s_sustained']:,.0f} events/s sustained "
        f"({data['committed_events_per_s']:,.0f} over the run), "
        f"{data['mqtt_messages_per_s']:,.0f} MQTT msg/s; latency ms p50 {lat['p50']} "
        f"p99 {lat['p99']} max {lat['max']}; cases {data['cases']['completed']}/"
        f"{data['cases']['scheduled']}; lost {data['lost']} duplicated {data['duplicated']} "
        f"rejected {data['rejected']} undelivered {data['undelivered']} "
        f"resends {data['resends']}; CPU ms/event {data['cpu_ms_per_event']}",
        flush=True,
    )
    return data


def _kept_up(data: dict[str, Any], p99_bound_ms: float) -> bool:
    """Carried whole, nothing lost, p99 under the bound: as a step of `find_max` holds."""
    return bool(data["verdict"] == "ok" and data["latency_ms"]["p99"] <= p99_bound_ms)


def _verdict(value: float, target: float, higher: bool = True) -> str:
    met = value >= target if higher else value <= target
    return "met" if met else "NOT met"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of the ceiling run")
    parser.add_argument("--short", type=float, default=15, help="seconds of the other runs")
    parser.add_argument("--payload-bytes", type=int, default=512)
    parser.add_argument("--parties", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--c-count", type=int, default=100_000)
    parser.add_argument("--echo-count", type=int, default=20_000)
    parser.add_argument("--profile", type=Path, help="write pyinstrument profiles here")
    parser.add_argument("--start-rate", type=float, default=1000, help="ramp start, events/s")
    parser.add_argument("--step", type=float, default=6, help="seconds of each ramp step")
    parser.add_argument("--steps", type=int, default=11, help="ramp steps at most")
    parser.add_argument("--p99-bound", type=float, default=1000, help="ms a ramp step must hold")
    return parser.parse_args()


async def main() -> None:
    args = _arguments()
    # aiomqtt warns on every publish past 10 awaiting a PUBACK; printing thousands of
    # those would slow the echo baseline (b), so it is silenced as `simulator load` does.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    began = time.perf_counter()
    per_case = Mix().messages_per_case()

    c_rate, echo_rate = await baselines(args)
    print(f"(a) Mosquitto C clients, QoS 1 pipelined: {c_rate:,.0f} msg/s", flush=True)
    print(f"(b) plain aiomqtt QoS 1 echo:            {echo_rate:,.0f} msg/s", flush=True)

    def options(rate_events: float, duration: float, **more: Any) -> LoadOptions:
        return LoadOptions(
            parties=args.parties,
            rate=max(rate_events / per_case, 1.0),
            duration_s=duration,
            broker="mosquitto",
            processes=args.processes,
            payload_bytes=args.payload_bytes,
            drain_s=20,
            resend_after_s=5.0,
            **more,
        )

    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    # The ceiling by a ramp (the product's own, `simulator load --find-max`): open loop
    # far past capacity only measures a backlog, so rates go up by 30% while the run
    # keeps up (every case done, nothing lost, p99 under the bound).
    start = max(args.start_rate, echo_rate / 2)
    ramp = await find_max(
        options(start, args.step),
        p99_bound_ms=args.p99_bound,
        steps=args.steps,
        on_step=lambda step: print(f"ramp: {ramp_row(step)}", flush=True),
    )
    held = ramp.best
    best = (
        max(held.committed_events_per_s_sustained, held.committed_events_per_s)
        if held is not None
        else start / 1.3
    )
    # A short step can keep up where a minute does not (the heap and the log grow):
    # if the long run falls behind, it is run once more a step lower.
    for attempt in range(2):
        ceiling = await load_run(
            f"(c) simulator load, batched via gateways, at {best:,.0f} events/s",
            options(best, args.duration),
        )
        if _kept_up(ceiling, args.p99_bound) or attempt:
            break
        best /= 1.3
    if not _kept_up(ceiling, args.p99_bound):
        print("(c) fell behind at both rates: its figure is what it carried, not a sustained rate")
    top = ceiling["committed_events_per_s_sustained"]
    half = await load_run("(d) simulator load at half (c)", options(top / 2, args.short))
    # One message per submission has a ceiling of its own, found by the same ramp: a
    # run offered only (b)'s rate measured what was offered (1,445 events/s on an idle
    # machine), not what it carries (about 6,300).
    single_ramp = await find_max(
        options(echo_rate, args.step, one_per_message=True),
        p99_bound_ms=args.p99_bound,
        steps=args.steps,
        on_step=lambda step: print(f"ramp (e): {ramp_row(step)}", flush=True),
    )
    single_best = single_ramp.best
    single_at = (
        single_best.committed_events_per_s_sustained if single_best is not None else echo_rate
    )
    single = await load_run(
        f"(e) simulator load --one-per-message, at {single_at:,.0f} events/s",
        options(single_at, args.short, one_per_message=True),
    )
    moderate = await load_run("(f) simulator load at 1,000 events/s", options(1000, args.short))
    p99 = half["latency_ms"]["p99"]
    print()
    print(f"(c)/(b) = {top / echo_rate:.2f}  (target >= 4: {_verdict(top / echo_rate, 4)})")
    print(f"(c)/(a) = {top / c_rate:.2f}  (target >= 0.8: {_verdict(top / c_rate, 0.8)})")
    single_rate = single["committed_events_per_s_sustained"]
    print(
        f"(e)/(b) = {single_rate / echo_rate:.2f}  "
        f"(target >= 0.8: {_verdict(single_rate / echo_rate, 0.8)})"
    )
    print(f"p99 at half rate = {p99} ms  (target <= 25 ms: {_verdict(p99, 25, higher=False)})")
    # Issue 16's targets.
    print(
        f"(c) = {top:,.0f} events/s  (target >= 15,000 on an idle machine: {_verdict(top, 15000)})"
    )
    # What bounds (c): the CPU each role spends per event, against this machine's cores.
    use, per_event = ceiling["cpu_use"], ceiling["cpu_ms_per_event"]
    spent = sum(per_event.values())
    cores = use["cores"]
    print(
        f"    (c) ran out of CPU first: {use['why']}; CPU per event, all roles: {spent:.3f} ms"
        f" ({per_event}), so {cores} cores carry at most {cores / spent * 1000:,.0f} events/s"
        f" at that cost; 15,000/s needs {cores / 15:.3f} ms or less, and one umpire"
        f" process at {per_event['umpire']} ms carries {1 / per_event['umpire'] * 1000:,.0f}/s"
    )
    print(
        f"(e)/(a) = {single_rate / c_rate:.2f}  "
        f"(target >= 0.4: {_verdict(single_rate / c_rate, 0.4)})"
    )
    cpu_top = ceiling["cpu_ms_per_event"]["umpire"]
    cpu_moderate = moderate["cpu_ms_per_event"]["umpire"]
    print(
        f"umpire CPU per event at 1,000/s / at (c) = {cpu_moderate} / {cpu_top} ms"
        f" = {cpu_moderate / cpu_top:.2f}  (target <= 1.5:"
        f" {_verdict(cpu_moderate / cpu_top, 1.5, higher=False)})"
    )
    runs = (ceiling, half, single, moderate)
    clean = all(r["lost"] == 0 and r["duplicated"] == 0 for r in runs)
    print(f"lost/duplicated in (c), (d), (e) and (f): {'none' if clean else 'SOME'}")
    print(f"benchmark took {time.perf_counter() - began:.0f} s")
    if args.profile is not None:
        # A run of its own: the profiler slows every process it watches several times.
        await load_run("(p) profiled run at half (c)", options(top / 2, args.short), args.profile)
        print(f"profiles: {', '.join(sorted(str(p) for p in args.profile.glob('*.txt')))}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.exit(0)
