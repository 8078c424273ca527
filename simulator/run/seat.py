"""A party played by another process: the seat file, and running a party from it.

`simulator run --external beta` leaves party beta to a separate process and
writes `LOG.party-beta.json` (readable by its owner only): the broker, beta's
credentials, the scenario and the seed. `simulator party --log LOG --party
beta` reads it and runs beta's policy until the exercise ends. Killed and
started again, the party catches up from the umpire and goes on.

One seat, one player: two processes with the same client id would take the
broker connection from each other for ever (at MQTT 3.1.1 a take-over looks
like any disconnect), so `hold_seat` gives the seat to the first process and
refuses the second with the first's pid (RELIABILITY.md item 10).
"""

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from simulator.context import fresh_rng, secret_token, seeded
from simulator.errors import InputError, SimulatorError
from simulator.logfiles import local_files_stem, write_beside
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Ended, describe
from simulator.party import PartyRuntime
from simulator.party.policy import PolicyEngine
from simulator.scenario.model import Scenario
from simulator.signing import Signatories
from simulator.transport import (
    BrokerAddress,
    Credentials,
    SessionSettings,
    Transport,
    private_client_id,
)


class SeatFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    exercise: str
    party: str
    host: str
    port: int
    username: str
    password: str
    # The seat's MQTT client id: a secret like the password (see `private_client_id`);
    # the same on every start of the party, so the broker keeps its session meanwhile.
    # Absent in seat files of earlier versions: then a fresh one per start.
    client_id: str | None = None
    seed: int
    generation: int = 0
    scenario: str  # the scenario as JSON
    # --secure: the broker's TLS CA, and this party's signature keys (signing.Signatories.export).
    tls: bool = False
    ca_file: str | None = None
    # Where the exercise's cases are split among umpires: how many (0: one umpire).
    partitions: int = 0
    signing: dict[str, Any] | None = None


def seat_path(log_location: str, party: str) -> Path:
    stem = local_files_stem(log_location)
    return stem.with_name(f"{stem.name}.party-{party}.json")


def seat_signing(signatories: Signatories, party: str) -> dict[str, Any]:
    """The signature keys a seat file carries: the party's own private keys, all public keys."""
    return signatories.export(party)


class SeatTaken(SimulatorError):
    def __init__(self, party: str, holder: str) -> None:
        super().__init__(
            f"party {party} is already played by another process ({holder}); "
            "stop it first: two players of one seat would take the connection from each other"
        )


@contextlib.contextmanager
def hold_seat(seat_file: Path, party: str) -> Iterator[None]:
    """Hold `party`'s seat for this process while the block runs; SeatTaken when it is held.

    An advisory lock on `SEAT_FILE.lock`: the kernel drops it when the holder
    exits, however it exits, so a killed player's seat is free at once for
    its restart (no lease to wait out).
    """
    path = seat_file.with_name(seat_file.name + ".lock")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip()
            raise SeatTaken(party, holder or "pid unknown") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(descriptor)


def write_seat_file(path: Path, seat: SeatFile) -> None:
    write_beside(path, seat.model_dump_json())


def read_seat_file(path: Path) -> SeatFile:
    try:
        return SeatFile.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{path}: no seat file; run the exercise with --external PARTY --log LOG first"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: unreadable seat file: {exc}") from None
    except ValidationError as exc:
        raise InputError(
            f"{path}: not a seat file `simulator run --external` wrote: {describe(exc)}"
        ) from None


# The umpire speaks at least once a second while an exercise runs (markers, and
# while paused too): this long without a word, the exercise is gone (its run
# killed, its broker down) and a seat would otherwise wait for ever.
UMPIRE_SILENT_S = 60.0


class ExerciseGone(SimulatorError):
    def __init__(self, seat: SeatFile, seconds: float) -> None:
        super().__init__(
            f"party {seat.party}: no word from exercise {seat.exercise!r}'s umpire for "
            f"{seconds:.0f} s (broker {seat.host}:{seat.port}): its run has ended or was "
            "killed; start the party again once the exercise runs"
        )


async def play_seat(seat: SeatFile, *, silent_s: float = UMPIRE_SILENT_S) -> Ended:
    """Run one party's policy over the broker until the umpire ends the exercise.

    `ExerciseGone` when the umpire says nothing for `silent_s` seconds.
    """
    scenario = Scenario.model_validate_json(seat.scenario)
    party = scenario.party(seat.party)
    if party.human:
        # A policy is all this process plays: it had sat in the seat answering nothing.
        raise InputError(
            f"party {seat.party} is played by a person (human: true), and `simulator party` "
            "plays a party's policy: give the person the seat in `simulator serve`, or "
            "their own client the seat file's credentials"
        )
    topics = Topics(seat.exercise, partitions=seat.partitions)
    transport = Transport(
        BrokerAddress(
            host=seat.host,
            port=seat.port,
            tls=seat.tls,
            ca_file=Path(seat.ca_file) if seat.ca_file else None,
        ),
        SessionSettings(
            seat.client_id or private_client_id(seat.exercise, seat.party, secret_token(9))
        ),
        rng=fresh_rng(),
        credentials=Credentials(seat.username, seat.password),
    )
    engine = PolicyEngine(
        party,
        scenario,
        seeded(seat.seed, "party", seat.party),
        generation=seat.generation,
        signatories=Signatories.from_export(seat.signing) if seat.signing else None,
    )
    async with transport:
        runtime = PartyRuntime(engine=engine, bus=transport, topics=topics)
        playing = asyncio.create_task(runtime.run(), name=f"seat[{seat.party}]")
        try:
            await _until_silent(runtime, playing, silent_s)
        finally:
            playing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await playing
        if not playing.done() or playing.cancelled():
            raise ExerciseGone(seat, silent_s)
        return playing.result()


async def _until_silent(
    runtime: PartyRuntime, playing: "asyncio.Task[Ended]", silent_s: float
) -> None:
    """Return when the party has finished, or heard nothing from its umpire for `silent_s`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not playing.done():
        heard = runtime.session.heard_at or started
        left = heard + silent_s - loop.time()
        if left <= 0:
            return
        await asyncio.wait({playing}, timeout=left)
