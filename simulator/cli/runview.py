"""What `simulator run` shows: live progress while it runs, and the summary after."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.table import Table

from simulator.eventlog import Event
from simulator.messaging.wire import Tick
from simulator.projections.summary import RunSummary
from simulator.records import REJECTION, is_message_event, violation_payloads


@dataclass
class Progress:
    """Counters fed by the umpire's commits, for the live status line."""

    events: int = 0
    messages: int = 0
    rejections: int = 0
    violations: int = 0
    cases: set[str] = field(default_factory=set)
    time: str = ""
    # Realtime: the umpire's clock as last announced.
    clock: Tick | None = None

    def commit(self, events: Sequence[Event]) -> None:
        for event in events:
            self.events = max(self.events, event.position)
            self.time = event.time.strftime("%Y-%m-%d %H:%M")
            if is_message_event(event.type):
                self.messages += 1
                if event.subject:
                    self.cases.add(event.subject)
            elif event.type == REJECTION:
                self.rejections += 1
            self.violations += len(violation_payloads(event))

    def tick(self, tick: Tick) -> None:
        self.clock = tick

    def line(self) -> str:
        clock = self.clock
        if clock is not None:
            paused = "  PAUSED" if clock.paused else ""
            when = f"{clock.time.strftime('%Y-%m-%d %H:%M')} x{clock.speed:g}{paused}"
        else:
            when = self.time
        return (
            f"simulated {when}  events {self.events}  cases {len(self.cases)}  "
            f"messages {self.messages}  violations {self.violations}  "
            f"rejections {self.rejections}"
        )


def print_summary(summary: RunSummary, console: Console) -> None:
    span = ""
    if summary.simulated_start and summary.simulated_end:
        days = (summary.simulated_end - summary.simulated_start).total_seconds() / 86400
        span = f"{days:.1f} simulated days"
    wall = f"{summary.wall_seconds:.1f} s wall" if summary.wall_seconds is not None else ""
    console.print(
        f"[bold]{summary.exercise}[/]: {summary.events} events, {summary.messages} messages, "
        f"{len(summary.case_states)} cases, {summary.rejections} rejections; {span}, {wall}; "
        f"ended: {summary.ended_because}"
    )
    console.print(f"log: {summary.log}")

    states = Table(title="Cases by final state", box=box.SIMPLE)
    states.add_column("state")
    states.add_column("cases", justify="right")
    for state, count in sorted(summary.cases.items(), key=lambda kv: -kv[1]):
        states.add_row(state, str(count))
    console.print(states)

    if summary.violations:
        rules = Table(title="Violations by rule", box=box.SIMPLE)
        for column in ("article", "severity", "rule", "count"):
            rules.add_column(column, justify="right" if column == "count" else "left")
        first = {v.rule: v for v in summary.violations}
        for rule, count in summary.violations_by_rule.items():
            rules.add_row(first[rule].article, first[rule].severity, rule, str(count))
        console.print(rules)
    else:
        console.print("No violations of the procedure.")

    if summary.expectations:
        scored = Table(title="Expectations", box=box.SIMPLE)
        for column in ("expectation", "met", "missed", "missed cases"):
            scored.add_column(column)
        for result in summary.expectations:
            shown = ", ".join(result.missed[:6]) + (" …" if len(result.missed) > 6 else "")
            scored.add_row(
                f"{result.id}: {result.description}" if result.description else result.id,
                str(len(result.met)),
                f"[red]{len(result.missed)}[/]" if result.missed else "0",
                shown,
            )
        console.print(scored)
