"""Run every shipped scenario through the CLI and report what the runs covered.

    .venv/bin/python scenarios/coverage.py [--runs-dir DIR] [--broker B] [--jobs N] [FILE ...]

Each scenario (every `scenarios/*.yaml`, or the files given) is run as a
user runs it, `simulator run FILE --log DIR/NAME.db --json-summary
DIR/NAME.json`, on the embedded broker unless `--broker` says otherwise.
The script then prints, per scenario, the wall time, simulated days,
events, cases and the rules that fired; a matrix of message types and one
of rules against scenarios (read from `simulator log show LOG --json` and
the JSON summary); and what is missing. It uses nothing but the CLI and
the JSON it prints: the lists of message types and rules come from
`simulator scenario schema` and `simulator rules --format json`.

Rules are counted per agreement profile (`simulator agreements`): a rule of
a profile is covered when a run under that profile (its `agreement:`, or one
of its `agreements:`) recorded it citing that profile's article, as
`simulator rules --agreement ID --format json` lists it.

Exit status: 0 when every message type, every rule of every shipped
profile (except those listed in KNOWN_IMPOSSIBLE) and every required
variant occurred and every run finished; 1 otherwise; 2 when the CLI
itself cannot be used.

Logs and summaries go to a temporary directory that is removed at the end,
or, with `--runs-dir DIR`, to a new `coverage-XXXXXXXX` directory under
DIR, which is kept.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CLI = ROOT / ".venv" / "bin" / "simulator"

# Rules ("profile:rule") no scenario can make fire with today's runtime, and why. The script
# does not count them as missing, and says so if one fires after all.
KNOWN_IMPOSSIBLE: dict[str, str] = {}

# Variants of a message the shipped scenarios must show: (type, field, value).
REQUIRED_VARIANTS: tuple[tuple[str, str, Any], ...] = (
    ("refusal", "scope", "full"),
    ("refusal", "scope", "partial"),
    ("refusal", "medium", "oral"),
    ("results", "partial", True),
    ("confidentiality_decision", "proceed", True),
    ("confidentiality_decision", "proceed", False),
    ("transfer_consent", "granted", True),
    ("transfer_consent", "granted", False),
    ("written_confirmation", "medium", "electronic"),
)

MESSAGE_PREFIX = "coop.msg."


class CliError(Exception):
    pass


@dataclass
class Outcome:
    scenario: Path
    log: Path
    ok: bool = False
    error: str = ""
    wall: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    types: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    variants: Counter[tuple[str, str, Any]] = field(default_factory=Counter)
    # The agreement profiles the run was umpired under, and its findings as (rule, article).
    profiles: set[str] = field(default_factory=set)
    cited: Counter[tuple[str, str]] = field(default_factory=Counter)
    # "profile:rule" keys of the rules covered, filled in by `credit`.
    profile_rules: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.scenario.stem

    @property
    def simulated_days(self) -> float:
        start, end = self.summary.get("simulated_start"), self.summary.get("simulated_end")
        if not start or not end:
            return 0.0
        span = datetime.fromisoformat(end) - datetime.fromisoformat(start)
        return span.total_seconds() / 86400


def cli(simulator: Path, *args: str) -> str:
    """Run the CLI; its stdout, or CliError with what it printed on stderr."""
    done = subprocess.run(
        [str(simulator), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CliError(f"`simulator {' '.join(args)}` exited {done.returncode}:\n{tail}")
    return done.stdout


def all_message_types(simulator: Path) -> list[str]:
    schema = json.loads(cli(simulator, "scenario", "schema"))
    return list(schema["$defs"]["MessageTemplate"]["properties"]["type"]["enum"])


def all_rules(simulator: Path) -> list[str]:
    return [rule["id"] for rule in json.loads(cli(simulator, "rules", "--format", "json"))]


def profile_articles(simulator: Path) -> dict[str, dict[str, str]]:
    """For each shipped profile, each rule's article in it."""
    profiles = [p["id"] for p in json.loads(cli(simulator, "agreements", "--format", "json"))]
    return {
        profile: {
            rule["id"]: rule["article"]
            for rule in json.loads(
                cli(simulator, "rules", "--format", "json", "--agreement", profile)
            )
        }
        for profile in profiles
    }


def credit(outcome: Outcome, articles: dict[str, dict[str, str]]) -> None:
    """Count each finding for every profile of the run that cites the rule at that article."""
    for (rule_id, article), count in outcome.cited.items():
        for profile in outcome.profiles:
            if articles.get(profile, {}).get(rule_id) == article:
                outcome.profile_rules[f"{profile}:{rule_id}"] += count


def run_one(simulator: Path, scenario: Path, out: Path, broker: str | None) -> Outcome:
    log = out / f"{scenario.stem}.db"
    summary_path = out / f"{scenario.stem}.json"
    outcome = Outcome(scenario=scenario, log=log)
    args = ["run", str(scenario), "--log", str(log), "--json-summary", str(summary_path)]
    if broker:
        args += ["--broker", broker]
    began = time.monotonic()
    try:
        cli(simulator, *args)
    except CliError as exc:
        outcome.error = str(exc)
        return outcome
    finally:
        outcome.wall = time.monotonic() - began
    try:
        outcome.summary = json.loads(summary_path.read_text(encoding="utf-8"))
        read_log(simulator, outcome)
    except (CliError, OSError, ValueError) as exc:
        outcome.error = str(exc)
        return outcome
    outcome.ok = not outcome.error
    return outcome


def read_log(simulator: Path, outcome: Outcome) -> None:
    """Message types, variants and rules, from `simulator log show LOG --json`."""
    for line in cli(simulator, "log", "show", str(outcome.log), "--json").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        data = event.get("data") or {}
        kind = str(event.get("type", ""))
        if kind == "coop.exercise.started":
            agreement = data.get("agreement") or {}
            outcome.profiles.add(str(agreement.get("profile", "default")))
            outcome.profiles.update(str(a["profile"]) for a in agreement.get("agreements", ()))
        if kind.startswith(MESSAGE_PREFIX):
            message_type = kind.removeprefix(MESSAGE_PREFIX)
            outcome.types[message_type] += 1
            message = data.get("message") or {}
            for variant in REQUIRED_VARIANTS:
                if variant[0] == message_type and message.get(variant[1]) == variant[2]:
                    outcome.variants[variant] += 1
        for violation in data.get("violations") or ():
            outcome.rules[str(violation.get("rule_id"))] += 1
            outcome.cited[(str(violation.get("rule_id")), str(violation.get("article")))] += 1
    # The summary counts the same findings; a difference would be a product bug.
    by_rule = outcome.summary.get("violations_by_rule") or {}
    if dict(outcome.rules) != by_rule:
        outcome.error = (
            f"the log's findings {dict(sorted(outcome.rules.items()))} differ from the "
            f"summary's violations_by_rule {dict(sorted(by_rule.items()))}"
        )


# --- printing -------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: set[int]) -> str:
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def matrix(title: str, keys: Sequence[str], outcomes: Sequence[Outcome], attr: str) -> str:
    headers = [title, *(f"S{i + 1}" for i in range(len(outcomes))), "total"]
    rows = []
    for key in keys:
        counts = [getattr(o, attr)[key] for o in outcomes]
        total: object = sum(counts) or (
            "n/a" if key in KNOWN_IMPOSSIBLE and attr == "profile_rules" else "MISSING"
        )
        rows.append([key, *(c or "." for c in counts), total])
    return table(headers, rows, right=set(range(1, len(headers))))


def describe_variant(variant: tuple[str, str, Any]) -> str:
    kind, key, value = variant
    return f"{kind} {key}={json.dumps(value)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="scenarios (default: scenarios/*.yaml)")
    parser.add_argument(
        "--runs-dir", type=Path, help="keep logs and summaries under this directory"
    )
    parser.add_argument("--broker", help="passed to `simulator run --broker` (default: embedded)")
    parser.add_argument("--jobs", type=int, default=1, help="scenarios run at once (default 1)")
    parser.add_argument("--simulator", type=Path, default=DEFAULT_CLI, help="the CLI to test")
    args = parser.parse_args(argv)

    scenarios = [p.resolve() for p in args.files] or sorted(HERE.glob("*.yaml"))
    if not scenarios:
        print("no scenarios found", file=sys.stderr)
        return 2
    try:
        types = all_message_types(args.simulator)
        articles = profile_articles(args.simulator)
        rules = [f"{profile}:{rule}" for profile, book in articles.items() for rule in book]
    except (CliError, OSError, KeyError, ValueError) as exc:
        print(f"cannot use the CLI {args.simulator}: {exc}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="coverage-") as scratch:
        if args.runs_dir is not None:
            args.runs_dir.mkdir(parents=True, exist_ok=True)
            out = Path(tempfile.mkdtemp(prefix="coverage-", dir=args.runs_dir))
        else:
            out = Path(scratch)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(lambda s: run_one(args.simulator, s, out, args.broker), scenarios)
            )
        for outcome in outcomes:
            credit(outcome, articles)
        return report(outcomes, types, rules, out if args.runs_dir else None)


def report(
    outcomes: Sequence[Outcome], types: Sequence[str], rules: Sequence[str], kept: Path | None
) -> int:
    print("Scenarios\n")
    rows = []
    for i, o in enumerate(outcomes):
        s = o.summary
        fired = ", ".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(o.rules.items()))
        rows.append(
            [
                f"S{i + 1}",
                o.name,
                f"{o.wall:.1f}",
                f"{o.simulated_days:.1f}" if o.ok else "-",
                s.get("events", "-"),
                len(s.get("case_states", {})) if o.ok else "-",
                s.get("messages", "-"),
                "ok" if o.ok else "FAILED",
                fired or "-",
            ]
        )
    print(
        table(
            [
                "",
                "scenario",
                "wall s",
                "sim days",
                "events",
                "cases",
                "messages",
                "run",
                "rules fired",
            ],
            rows,
            right={2, 3, 4, 5, 6},
        )
    )
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n{o.name}: {o.error}")

    done = [o for o in outcomes if o.ok]
    print("\nMessage types × scenarios (messages committed)\n")
    print(matrix("message type", types, outcomes, "types"))
    print("\nRules × scenarios (violations recorded)\n")
    print(matrix("profile:rule", rules, outcomes, "profile_rules"))
    print("\nVariants × scenarios\n")
    variant_rows = []
    for variant in REQUIRED_VARIANTS:
        counts = [o.variants[variant] for o in outcomes]
        variant_rows.append(
            [describe_variant(variant), *(c or "." for c in counts), sum(counts) or "MISSING"]
        )
    print(
        table(
            ["variant", *(f"S{i + 1}" for i in range(len(outcomes))), "total"],
            variant_rows,
            right=set(range(1, len(outcomes) + 2)),
        )
    )

    used_types = {t for o in done for t in o.types}
    fired_rules = {r for o in done for r in o.profile_rules}
    seen_variants = {v for o in done for v in o.variants}
    missing_types = [t for t in types if t not in used_types]
    missing_rules = [r for r in rules if r not in fired_rules and r not in KNOWN_IMPOSSIBLE]
    missing_variants = [v for v in REQUIRED_VARIANTS if v not in seen_variants]
    unexpected = [r for r in KNOWN_IMPOSSIBLE if r in fired_rules]

    print(f"\nMessage types used: {len(used_types & set(types))} of {len(types)}")
    print(f"Rules fired: {len(fired_rules & set(rules))} of {len(rules)}")
    for rule_id, why in KNOWN_IMPOSSIBLE.items():
        if rule_id not in fired_rules:
            print(f"  not expected to fire: {rule_id}: {why}")
    for rule_id in unexpected:
        print(f"  {rule_id} fired after all: remove it from KNOWN_IMPOSSIBLE")
    if kept is not None:
        print(f"Logs and summaries: {kept}")

    problems = []
    if failed:
        problems.append(f"runs failed: {', '.join(o.name for o in failed)}")
    if missing_types:
        problems.append(f"message types never used: {', '.join(missing_types)}")
    if missing_rules:
        problems.append(f"rules never fired: {', '.join(missing_rules)}")
    if missing_variants:
        problems.append(
            f"variants never seen: {', '.join(describe_variant(v) for v in missing_variants)}"
        )
    if problems:
        print("\nINCOMPLETE: " + "; ".join(problems))
        return 1
    print("\nComplete: every message type, rule and variant occurred.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
