"""What `simulator run` shows: live progress while it runs, and the summary after."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from simulator.eventlog import Event
from simulator.lineage import history
from simulator.messaging.wire import Tick
from simulator.projections.summary import RunSummary
from simulator.records import REJECTION, is_message_event, violation_payloads
from simulator.terminal import visible
from simulator.wording import span, state_words, when


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
        """One status line, short enough for 80 columns with the spinner before it."""
        clock = self.clock
        if clock is not None:
            paused = " PAUSED" if clock.paused else ""
            now = f"{clock.time.strftime('%Y-%m-%d %H:%M')} x{clock.speed:g}{paused}"
        else:
            now = self.time
        rejected = f" · {self.rejections} rejected" if self.rejections else ""
        return (
            f"{now} · {self.events} events · {len(self.cases)} cases · "
            f"{self.violations} violations{rejected}"
        )


# The violations listed one by one; past this, counts by rule say the rest.
VIOLATIONS_LISTED = 40


def print_summary(summary: RunSummary, console: Console) -> None:
    """The run in a few lines and tables that fit 80 columns: no date or id is split."""
    wall = f", {summary.wall_seconds:.1f} s wall" if summary.wall_seconds is not None else ""
    console.print(
        f"[bold]{escape(summary.exercise)}[/]: {summary.events} events, {summary.messages} "
        f"messages, {len(summary.case_states)} cases, {summary.rejections} rejections",
        highlight=False,
    )
    if summary.simulated_start and summary.simulated_end:
        lasted = span((summary.simulated_end - summary.simulated_start).total_seconds())
        _line(
            console,
            f"simulated {when(summary.simulated_start)} → {when(summary.simulated_end)} "
            f"({lasted}){wall}",
        )
    _text(console, f"ended: {summary.ended_because or 'no end was recorded'}")
    if summary.lineage is not None or summary.resumed_at:
        _text(console, f"this run is {history(summary.lineage, summary.resumed_at)}")
    if summary.controller_notes or summary.controller_actions:
        _text(
            console,
            f"controller: {_counted(summary.controller_notes, 'note')}, "
            f"{_counted(summary.controller_actions, 'action')} (in the report)",
        )
    _text(console, f"log: {summary.log}")

    states = Table(title="Cases by final state", box=box.SIMPLE)
    states.add_column("state")
    states.add_column("cases", justify="right")
    for state, count in sorted(summary.cases.items(), key=lambda kv: -kv[1]):
        states.add_row(state_words(state), str(count))
    console.print(states)

    if summary.violations:
        console.print(_violations(summary))
        if len(summary.violations) > VIOLATIONS_LISTED:
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
        scored.add_column("expectation", ratio=3)
        scored.add_column("met", justify="right", no_wrap=True)
        scored.add_column("missed", justify="right", no_wrap=True)
        scored.add_column("missed cases", ratio=2, overflow="fold")
        for result in summary.expectations:
            shown = ", ".join(result.missed[:6]) + (" …" if len(result.missed) > 6 else "")
            scored.add_row(
                _shown(f"{result.id}: {result.description}" if result.description else result.id),
                str(len(result.met)),
                f"[red]{len(result.missed)}[/]" if result.missed else "0",
                shown,
            )
        console.print(scored)


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _shown(text: str) -> Text:
    """Text from a scenario or a participant, for a table cell: never read as markup (an
    expectation described with `[/bold]` had crashed the summary after a whole run), and
    its control characters written as escapes."""
    return Text(visible(text))


def _line(console: Console, text: str) -> None:
    # Cut, not wrapped: a wrap could split a date from its time.
    console.print(text, highlight=False, markup=False, no_wrap=True, overflow="ellipsis")


def _text(console: Console, text: str) -> None:
    # Wrapped at spaces (a path too long for a line folds): these hold no dates.
    console.print(text, highlight=False, markup=False, overflow="fold")


def _violations(summary: RunSummary) -> Table:
    """Each violation: its case, when, the article and rule, and what happened, in words."""
    listed = summary.violations[:VIOLATIONS_LISTED]
    more = len(summary.violations) - len(listed)
    table = Table(
        title=f"Violations ({len(summary.violations)})",
        caption=f"… and {more} more: see the report" if more else None,
        box=box.SIMPLE,
    )
    table.add_column("case", overflow="fold", max_width=24)
    table.add_column("when", no_wrap=True, min_width=len("2026-03-02 11:00"))
    table.add_column("article", no_wrap=True)
    table.add_column("what happened", ratio=1, overflow="fold")
    colours = {"error": "red", "warning": "yellow", "info": "blue"}
    for v in listed:
        finding = Text.assemble(
            (v.rule, f"bold {colours.get(v.severity, '')}".strip()),
            f" ({v.severity}): ",
            _shown(v.what or v.detail),
        )
        table.add_row(v.case, when(v.time), v.article, finding)
    return table
