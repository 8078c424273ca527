"""`simulator serve`: run a scenario (or replay a log) behind the web console.

A live run is the ordinary `Exercise` on the realtime clock: the umpire and
the simulated agencies as in `simulator run`, plus a seat for every party
the scenario marks `human: true`. The console connects to the broker as the
controller (its commands travel on the control topic, like `simulator
control`'s) and as each human party (so the ACL keeps seats apart); the
control view reads the umpire's commits. When the run ends, the
after-action report is written and linked from the control view.

A log is replayed into the same control view at its own pace: its events
are shown as their simulated times come round, divided by the speed, with
pause, resume, speed and jump to the next event.
"""

import asyncio
import contextlib
import dataclasses
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
import uvicorn

from simulator.brokers import transport_for
from simulator.context import ScaledClock, fresh_rng, monotonic
from simulator.errors import InputError
from simulator.eventlog import Event
from simulator.lineage import read_lineage
from simulator.logfiles import local_files_stem, reading
from simulator.messaging.topics import CONTROLLER
from simulator.messaging.wire import Control
from simulator.run.control import Controller, Unanswered
from simulator.run.exercise import Exercise, RunOptions, RunOutcome
from simulator.run.replay import ForkStart, read_range, recorded_run
from simulator.scenario.model import Scenario
from simulator.transport import SessionSettings
from simulator.web.app import Console, build_app
from simulator.web.board import Board, ClockView
from simulator.web.player import PlayerSeat
from simulator.web.tokens import Tokens

log = structlog.get_logger("simulator.web")


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    training: bool = False
    # Keep serving after the end (the report, the final board) until interrupted.
    linger: bool = True
    report_dir: Path | None = None


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ours stops the exercise cleanly first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(console: Console, options: ServeOptions) -> _Server:
    config = uvicorn.Config(
        build_app(console),
        host=options.host,
        port=options.port,
        log_level="warning",
        lifespan="off",
        # Server-sent event streams never end by themselves: don't wait for them.
        timeout_graceful_shutdown=1,
    )
    return _Server(config)


async def _started(server: _Server, task: "asyncio.Task[None]", console: Console) -> None:
    """Wait until the server listens; then the links can name its port (port 0: the OS chose)."""
    while not server.started:
        if task.done():
            # Bind failed (port in use): uvicorn logged why; say it as our error.
            raise InputError(f"the web server could not start on port {server.config.port}")
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    console.base_url = f"http://{server.config.host}:{port}"


def _on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


def _exercise(
    scenario: Scenario, run: RunOptions, board: Board, fork: ForkStart | None
) -> Exercise:
    """The live run the board follows; a fork's kept events are on the board from the start."""
    if fork is None:
        return Exercise(scenario, run, on_commit=board.commit)
    board.lineage = fork.lineage
    # Appended as they were when the run opens, not committed by its umpire: shown now.
    board.commit(fork.prefix)
    return Exercise(
        scenario,
        run,
        on_commit=board.commit,
        prefix=fork.prefix,
        generation=fork.generation,
        parent=fork.parent,
    )


async def serve_scenario(
    scenario: Scenario,
    run: RunOptions,
    options: ServeOptions,
    *,
    announce: Callable[[dict[str, str]], None],
    stopping: asyncio.Event | None = None,
    fork: ForkStart | None = None,
) -> RunOutcome:
    """Run the exercise with its console; returns when the run ended (and, lingering, stopped).

    Setting `stopping` (or SIGINT/SIGTERM) ends the run as the controller's stop
    would, then stops the server. With `fork` the run goes on live from another
    run's first events (`simulator serve SCENARIO --fork LOG --at POS`): the
    trainees take their seats again where that run stood.
    """
    if run.clock != "realtime":
        raise InputError("the console runs exercises on the realtime clock")
    board = Board(scenario, mode="live", training=options.training)
    humans = [p.id for p in scenario.parties if p.human]
    stopping = stopping or asyncio.Event()
    async with _exercise(scenario, run, board, fork) as exercise:
        clock = exercise.umpire.clock
        assert isinstance(clock, ScaledClock)

        def clock_view() -> ClockView:
            return ClockView(clock.now(), exercise.umpire.paused, clock.speed)

        board.clock = clock_view
        async with contextlib.AsyncExitStack() as stack:
            controller = transport_for(
                exercise.broker,
                CONTROLLER,
                SessionSettings(exercise.client_id(CONTROLLER, "web"), persistent=False),
                rng=fresh_rng(),
            )
            await stack.enter_async_context(controller)
            asking = await stack.enter_async_context(
                Controller(controller, exercise.topics, fresh_rng())
            )

            async def send_control(command: Control) -> tuple[bool, str]:
                try:
                    answer = await asking.ask(command)
                except Unanswered as exc:
                    return False, str(exc)
                return answer.ok, answer.detail

            parties = {p.id: p.party() for p in scenario.parties}
            seats: dict[str, PlayerSeat] = {}
            for party_id in humans:
                bus = transport_for(
                    exercise.broker,
                    party_id,
                    SessionSettings(exercise.client_id(party_id, "seat")),
                    rng=fresh_rng(),
                )
                await stack.enter_async_context(bus)
                seats[party_id] = PlayerSeat(
                    parties[party_id],
                    parties,
                    exercise.agreement,
                    bus,
                    exercise.topics,
                    generation=exercise.generation,
                )
            console = Console(
                board=board,
                tokens=Tokens.issue(humans),
                send_control=send_control,
                seats=seats,
            )
            server = _server(console, options)

            def stop() -> None:
                # First ask the umpire to end the run (the log gets its end event), then the server.
                stopping.set()
                if board.ended is None:
                    exercise.umpire.apply_control(Control(command="stop"))
                server.should_exit = True

            async def watch() -> None:
                await stopping.wait()
                # What the seats sent is recorded before the end, as for the control view's stop.
                await console.close_seats()
                stop()

            async with asyncio.TaskGroup() as group:
                serving = group.create_task(server.serve(), name="web.server")
                await _started(server, serving, console)
                _on_signals(stopping.set)
                watcher = group.create_task(watch(), name="web.stop")
                seat_tasks = [
                    group.create_task(seat.run(), name=f"seat[{party_id}].run")
                    for party_id, seat in seats.items()
                ]
                for seat in seats.values():
                    await seat.ready.wait()
                announce(console.links())
                outcome = await exercise.run()
                board.finish(outcome.result.reason)
                await _write_report(console, exercise.location, options)
                if options.linger:
                    await asyncio.wait([serving, watcher], return_when=asyncio.FIRST_COMPLETED)
                server.should_exit = True
                # Seats read until their connection closes; the run is over.
                for task in [*seat_tasks, watcher]:
                    task.cancel()
    return outcome


async def _write_report(console: Console, location: str, options: ServeOptions) -> None:
    # matplotlib loads slowly; only a finished run pays for it.
    from simulator.letters import read_letters  # noqa: PLC0415 - see above
    from simulator.report import read_report, save_report  # noqa: PLC0415 - see above

    board = console.board
    stem = local_files_stem(location)
    target = options.report_dir or stem.with_name(f"{stem.name}.report")
    try:
        data = await read_report(location)
        letters = await read_letters(location)
        files = await asyncio.to_thread(save_report, data, target, letters=letters)
    except Exception as exc:  # the run happened; a failed report must not hide that
        board.report_error = f"the report could not be written: {exc}"
        log.exception("report_failed", log=location)
    else:
        console.report_file = files.html
        board.report_url = "/control/report"
    board.changed.fire()


# -- replaying a log ----------------------------------------------------------------


class Replayer:
    """Feeds a log's events to the board as their simulated times come round."""

    def __init__(self, events: Sequence[Event], board: Board, speed: float) -> None:
        self.events = events
        self.board = board
        self.speed = speed
        self.paused = False
        self.index = 0
        self._sim: datetime | None = events[0].time if events else None
        self._wall = monotonic()
        self.wake = asyncio.Event()

    def now(self) -> datetime | None:
        if self._sim is None:
            return None
        if self.paused:
            return self._sim
        return self._sim + timedelta(seconds=(monotonic() - self._wall) * self.speed)

    def _rebase(self) -> None:
        self._sim = self.now()
        self._wall = monotonic()

    def view(self) -> ClockView:
        return ClockView(self.now(), self.paused, self.speed)

    async def apply(self, command: Control) -> tuple[bool, str]:
        # Refused as a live run refuses them, so the control view answers alike.
        if command.command == "pause" and self.paused:
            return False, "the replay is paused already"
        if command.command == "resume" and not self.paused:
            return False, "the replay is not paused"
        self._rebase()
        if command.command == "pause":
            self.paused = True
        elif command.command == "resume":
            self.paused = False
        elif command.command == "speed" and command.speed:
            self.speed = command.speed
        elif command.command == "jump" and self.index < len(self.events):
            self._sim = max(self._sim or self.events[self.index].time, self.events[self.index].time)
        elif command.command == "stop":
            self._sim = self.events[-1].time if self.events else None
        self.wake.set()
        self.board.changed.fire()
        return True, f"replay: {command.command}"

    async def run(self) -> None:
        while self.index < len(self.events):
            now = self.now()
            due = []
            while self.index < len(self.events) and now is not None:
                if self.events[self.index].time > now:
                    break
                due.append(self.events[self.index])
                self.index += 1
            if due:
                self.board.commit(due)
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.wake.wait()
        self.board.finish("replay finished")


async def serve_log(
    location: str,
    options: ServeOptions,
    *,
    speed: float,
    announce: Callable[[dict[str, str]], None],
    stopping: asyncio.Event | None = None,
) -> None:
    """Replay a log into the control view; its report is linked once the replay has ended."""
    scenario, _, _ = await recorded_run(location)
    events = await read_range(location)
    if not events:
        raise InputError(f"{location}: the log is empty")
    board = Board(scenario, mode="replay")
    async with reading(location) as store:
        board.lineage = read_lineage(await store.metadata())
    replayer = Replayer(events, board, speed)
    board.clock = replayer.view
    console = Console(board=board, tokens=Tokens.issue(()), send_control=replayer.apply)
    server = _server(console, options)
    stopping = stopping or asyncio.Event()
    with contextlib.ExitStack() as scratch:
        if options.report_dir is None:
            # A replay writes nothing beside the log it reads.
            directory = scratch.enter_context(tempfile.TemporaryDirectory(prefix="simulator-"))
            options = dataclasses.replace(options, report_dir=Path(directory) / "report")
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(server.serve(), name="web.server")
            await _started(server, serving, console)
            _on_signals(stopping.set)
            announce(console.links())
            feeding = group.create_task(replayer.run(), name="web.replay")
            # Written while the replay runs; the board links it once the replay has ended.
            await _write_report(console, location, options)
            waiting = group.create_task(stopping.wait(), name="web.stop")
            await asyncio.wait([feeding, waiting], return_when=asyncio.FIRST_COMPLETED)
            if options.linger:
                await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            for task in (feeding, waiting):
                task.cancel()
