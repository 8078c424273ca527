"""Controlling a running exercise from outside: pause, resume, speed, jump, inject, note, stop,
and asking where it stands (status).

`simulator run` writes a control file beside its log (`LOG.control.json`,
readable by its owner only) naming the broker and the controller's
credentials, and removes it when the run ends. `simulator control` reads
it, publishes one command with an id on the exercise's control topic and
waits for the umpire's answer on the answers topic: a command counts as
carried out only when the umpire says so.
"""

import asyncio
import contextlib
import json
import random
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from simulator.context import fresh_rng
from simulator.errors import InputError, SimulatorError
from simulator.logfiles import local_files_stem, write_beside
from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.messaging.wire import (
    Control,
    ControlAnswer,
    WireError,
    decode_answer,
    describe,
    encode,
)
from simulator.transport import BrokerAddress, Credentials, SessionSettings, Transport
from simulator.wording import prose, state_words

# How long `simulator control` waits for the umpire's answer before saying it got none.
ANSWER_TIMEOUT_S = 5.0


class Unanswered(SimulatorError):
    """The umpire did not answer a control command: the exercise is gone or stuck."""


class ControlFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    exercise: str
    host: str
    port: int
    username: str
    password: str
    # --secure: the broker speaks TLS; its CA certificate.
    tls: bool = False
    ca_file: str | None = None


def control_path(log_location: str) -> Path:
    stem = local_files_stem(log_location)
    return stem.with_name(f"{stem.name}.control.json")


def write_control_file(path: Path, data: ControlFile) -> None:
    write_beside(path, data.model_dump_json())


def read_control_file(path: Path) -> ControlFile:
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{path}: no control file; is the exercise running (simulator run … --log LOG)?"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable control file: {exc}") from None
    try:
        return ControlFile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(
            f"{path}: not a control file `simulator run` wrote: {describe(exc)}"
        ) from None


class Controller:
    """Asks the umpire over a controller's connection and waits for its answers.

    One reader takes every answer on the answers topic and hands it to the ask
    with its id, so the web console's commands may overlap. Enter it to start
    the reader; `ask` raises `Unanswered` when no answer comes in time.
    """

    def __init__(self, bus: Bus, topics: Topics, rng: random.Random) -> None:
        self.bus = bus
        self.topics = topics
        self._rng = rng
        self._waiting: dict[str, asyncio.Future[ControlAnswer]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        # Subscribed first: an answer can come before the command's publish returns.
        await self.bus.subscribe(self.topics.answers)
        self._reader = asyncio.create_task(self._read(), name="controller.answers")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        async for incoming in self.bus.messages():
            try:
                answer = decode_answer(bytes(incoming.payload))
            except WireError:
                continue
            waiter = self._waiting.pop(answer.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)

    async def ask(self, command: Control, *, wait_s: float = ANSWER_TIMEOUT_S) -> ControlAnswer:
        """Send `command` with an id of its own; the umpire's answer to it."""
        asked = command.model_copy(update={"id": f"{self._rng.getrandbits(64):016x}"})
        assert asked.id is not None
        waiter: asyncio.Future[ControlAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[asked.id] = waiter
        try:
            await self.bus.publish(self.topics.control, encode(asked))
            async with asyncio.timeout(wait_s):
                return await waiter
        except TimeoutError:
            raise Unanswered(
                f"no answer from exercise {self.topics.exercise!r} within {wait_s:g} s to "
                f"{command.command!r}: it has ended or is not responding"
            ) from None
        finally:
            self._waiting.pop(asked.id, None)


async def send_control(
    target: ControlFile, command: Control, *, wait_s: float = ANSWER_TIMEOUT_S
) -> ControlAnswer:
    """Send `command` to the running exercise and return the umpire's answer to it.

    `Unanswered` if no answer comes within `wait_s` seconds; a broker that is
    not there fails as the transport does (`BrokerUnavailable`).
    """
    rng = fresh_rng()
    address = BrokerAddress(
        host=target.host,
        port=target.port,
        tls=target.tls,
        ca_file=Path(target.ca_file) if target.ca_file else None,
    )
    transport = Transport(
        address,
        SessionSettings(f"ctl-{rng.getrandbits(40):010x}", persistent=False),
        rng=rng,
        credentials=Credentials(target.username, target.password),
    )
    async with transport, Controller(transport, Topics(target.exercise), rng) as controller:
        return await controller.ask(command, wait_s=wait_s)


def render_status(status: dict[str, Any]) -> str:
    """The umpire's status answer as a few lines for a terminal."""
    paused = " (paused)" if status.get("paused") else ""
    speed = f" at x{status['speed']:g}" if status.get("speed") else ""
    cases = status.get("cases") or {}
    case_text = ", ".join(f"{state_words(state)} {n}" for state, n in cases.items()) or "none yet"
    parties = status.get("parties") or []
    connected = set(status.get("connected") or [])
    who = ", ".join(f"{p}{'' if p in connected else ' (not heard from)'}" for p in parties)
    return "\n".join(
        [
            f"exercise {status.get('exercise')}: {status.get('clock')} clock{speed}{paused}",
            # The umpire answers in ISO 8601; people read `2026-03-02 11:00`.
            f"time     {prose(str(status.get('time')))} (ends {prose(str(status.get('end')))})",
            f"events   {status.get('head')} committed, {status.get('rejections')} rejected"
            + _by_partition(status),
            f"cases    {case_text}",
            f"parties  {who}",
        ]
    )


def _by_partition(status: dict[str, Any]) -> str:
    """Where the cases are split among umpires: how many events each partition's log holds."""
    heads = status.get("partition_heads")
    if not isinstance(heads, dict) or not heads:
        return ""
    return " (" + ", ".join(f"partition {n}: {head}" for n, head in heads.items()) + ")"
