"""The HTML page of a load run: the figures, latency over time and a percentile plot."""

import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from simulator.load.report import cpu_roles


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


# The ids the over-time chart gives its lines, so a reader (or a test) finds each in the SVG.
LATENCY_LINE_IDS = {"p50": "latency-p50", "p99": "latency-p99", "max": "latency-max"}
RATE_LINE_ID = "committed-events-per-s"


def latency_over_time(data: dict[str, Any]) -> str:
    """Latency percentiles per second (left axis) and committed events per second (right)."""
    points = data["latency_over_time"]
    figure, axes = plt.subplots(figsize=(8, 3.2))
    seconds = [p["t"] for p in points]
    for key, label in (("p50", "p50"), ("p99", "p99"), ("max", "max")):
        line = axes.plot(seconds, [p[key] for p in points], label=label, linewidth=1.4)[0]
        line.set_gid(LATENCY_LINE_IDS[key])
    axes.set_xlabel("seconds since the schedule began")
    axes.set_ylabel("message latency (ms)")
    axes.set_yscale("symlog", linthresh=1)
    axes.grid(alpha=0.3)
    rate = axes.twinx()
    # The live progress of each second: what the umpire committed in it.
    progress = data["progress"]
    (events,) = rate.plot(
        [p["t"] for p in progress],
        [p["events_per_s"] for p in progress],
        color="grey",
        linestyle=":",
        marker=".",
        label="committed events/s",
    )
    events.set_gid(RATE_LINE_ID)
    rate.set_ylabel("committed events/s", color="grey")
    rate.set_ylim(bottom=0)
    lines = axes.get_lines() + rate.get_lines()
    axes.legend(lines, [str(line.get_label()) for line in lines], loc="upper left")
    return _svg(figure)


def percentile_plot(data: dict[str, Any]) -> str:
    figure, axes = plt.subplots(figsize=(8, 3.2))
    for key, label in (("message", "message"), ("case", "case")):
        curve = [(p, v) for p, v in data["percentiles_ms"][key] if p < 100]
        # x = 1 / (1 - p): the tail gets the room, as HdrHistogram's plots do.
        axes.plot([1 / (1 - p / 100) for p, _ in curve], [v for _, v in curve], label=label)
    axes.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{100 * (1 - 1 / x):g}%" if x > 1 else "0%")
    )
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    return _svg(figure)


SUSTAINED = (
    "The average divides every committed event by the run's wall time, from the first "
    "scheduled case to the last case done. Sustained is the median of the per-second rates "
    "while cases were being started (the grey line below, from its second second): the rate "
    "of a typical second. It is lower than the average when commits come in bursts (a few "
    "fast seconds, such as a backlog cleared at once, lift the average but not the median) "
    "and higher when the drain after the schedule is long and slow."
)


def _row(name: str, value: object) -> str:
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"


# The page's headline for each verdict (`report.VERDICTS`), and whether it is good news.
HEADLINES = {
    "ok": ("nothing lost or duplicated", "ok"),
    "saturated": ("saturated, nothing lost", "warn"),
    "lost": ("LOSS OR DUPLICATION", "bad"),
    "failed": ("NOT CARRIED TO ITS END", "bad"),
}


def _saturation_rows(data: dict[str, Any]) -> list[str]:
    climb = data.get("saturation") or {}
    unfinished = data.get("unfinished")
    rows = []
    if unfinished is not None:
        rows.append(
            _row(
                "unfinished cases (late, not lost) / never started",
                f"{unfinished['cases']} ({unfinished['submissions_in_flight']} submissions, "
                f"{unfinished['deliveries_in_flight']} deliveries in flight) / "
                f"{data['cases'].get('not_started', 0)}",
            )
        )
    if climb:

        def second(t: float | None) -> str:
            return "held" if t is None else f"from {t:g} s"

        rows.append(
            _row(
                "offered events/s; backlog, latency climbing",
                f"{climb['offered_events_per_s']}; {second(climb['backlog_climbing_from_s'])}, "
                f"{second(climb['latency_climbing_from_s'])}",
            )
        )
        if climb.get("committed_events_per_s_while_climbing") is not None:
            rows.append(
                _row(
                    "committed events/s while climbing",
                    climb["committed_events_per_s_while_climbing"],
                )
            )
    return rows


def _cpu_rows(data: dict[str, Any]) -> list[str]:
    roles = cpu_roles(data)
    if not roles:
        return []
    return [
        _row("CPU: cores busy (ms per event)", roles),
        _row("ran out of CPU first", data["cpu_use"]["why"]),
    ]


def _ramp(data: dict[str, Any]) -> str:
    """--find-max: a row per step of the ramp, the highest held named first."""
    ramp = data.get("find_max")
    if not ramp:
        return ""
    best = (
        f"Highest rate held with p99 under {ramp['p99_bound_ms']:g} ms: "
        f"{ramp['max_offered_events_per_s']} events/s offered "
        f"({ramp['max_offered_cases_per_s']} cases/s); the figures above are that run's."
        if ramp["held"]
        else f"No rate held with p99 under {ramp['p99_bound_ms']:g} ms; the figures above "
        "are the first step's."
    )
    head = (
        "<tr><th>offered events/s</th><th>committed events/s sustained</th><th>p99 ms</th>"
        "<th>cases done</th><th>cores busy</th><th>held</th></tr>"
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                step["offered_events_per_s"],
                step["committed_events_per_s_sustained"],
                step["p99_ms"],
                f"{step['cases_completed']} of {step['cases_scheduled']}",
                "-" if step.get("cores_busy") is None else step["cores_busy"],
                "yes" if step["held"] else f"no: {step['why']}",
            )
        )
        + "</tr>"
        for step in ramp["steps"]
    )
    return f"<h2>Ramp (--find-max)</h2><p>{html.escape(best)}</p><table>{head}{rows}</table>"


def render_page(data: dict[str, Any]) -> str:
    lat, case = data["latency_ms"], data["case_latency_ms"]
    verdict, tone = HEADLINES[data.get("verdict", "ok" if data["ok"] else "lost")]
    rows = [
        _row("mode", f"{data['mode']}, QoS {data['qos']}, broker {data['broker']}"),
        _row("parties / processes", f"{data['parties']} / {data['processes']}"),
        _row(
            "offered / achieved cases/s",
            f"{data['offered_cases_per_s']} / {data['achieved_cases_per_s']}",
        ),
        _row(
            "committed events/s: average, sustained",
            f"{data['committed_events_per_s']}, {data['committed_events_per_s_sustained']}",
        ),
        _row("MQTT messages/s", data["mqtt_messages_per_s"]),
        _row(
            "message latency ms p50/p90/p99/p99.9/max",
            f"{lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['p99_9']} / {lat['max']}",
        ),
        _row(
            "case latency ms p50/p90/p99/p99.9/max",
            f"{case['p50']} / {case['p90']} / {case['p99']} / {case['p99_9']} / {case['max']}",
        ),
        _row("deadline misses", data["deadline_misses"]),
        _row(
            "lost / duplicated / rejected / undelivered",
            f"{data['lost']} / {data['duplicated']} / {data['rejected']} / {data['undelivered']}",
        ),
        _row(
            "resends / catch-ups / duplicate deliveries",
            f"{data['resends']} / {data['catch_ups']} / {data['deliveries_duplicated']}",
        ),
        *_saturation_rows(data),
        *_cpu_rows(data),
        _row("cases by path", ", ".join(f"{k} {v}" for k, v in data["cases"]["by_path"].items())),
        _row(
            "log",
            data["log"]
            if data.get("log_kept", True)
            else "a temporary file, deleted when the run ended (keep it with --log FILE)",
        ),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load run: {html.escape(verdict)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; }}
th {{ text-align: left; padding-right: 1em; font-weight: 600; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; }}
.ok {{ color: #176117; }} .bad {{ color: #a11; }} .warn {{ color: #8a5a00; }}
.note {{ color: #555; font-size: 90%; }}
</style></head><body>
<h1>Load run: <span class="{tone}">{html.escape(verdict)}</span></h1>
<table>{"".join(rows)}</table>
{_ramp(data)}
<p class="note">{html.escape(SUSTAINED)}</p>
<h2>Message latency over time</h2>
{latency_over_time(data)}
<h2>Latency by percentile</h2>
{percentile_plot(data)}
</body></html>
"""


__all__ = ["render_page"]
