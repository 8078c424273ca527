"""A participant cannot take the umpire's ids, reuse a sequence number or submit as a stranger.

Each attack is made with `mosquitto_pub` and a party's (or the controller's) own
credentials against a running realtime exercise on Mosquitto. Before, a valid
message under the id of one of the umpire's own events stopped the exercise
with an append conflict (at once, or at the end, losing the summary), and a
sequence number used again for other content vanished without a word. Now each
is a rejection with its reason, in the log and seen by the sender, and the
exercise runs to its end.
"""

import asyncio
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.protocol.drafting import draft
from simulator.records import REJECTION
from simulator.run.exercise import Exercise, RunOptions, run_exercise
from simulator.scenario import load_scenario

EXAMPLE = Path(__file__).parents[2] / "scenarios" / "example.yaml"
# The example's 30 days in about 10 s of wall time.
SPEED = 30 * 86_400 / 10
TAKEN = ["exercise-started", "umpire-ended-1", "umpire-elapsed-energy-1-1", "control-1",
         "control-note-1", "rej-northmark-1", "inject.request-energy", "gen.routine.1"]  # fmt: skip
# Spoofs under northmark's numbers 1 to 12, after each of the run's first eight commits.
SPOOFED_SEQS = 12
SPOOF_BURSTS = 8


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


async def _publish(exercise: Exercise, principal: str, topic: str, payloads: list[bytes]) -> None:
    binary = shutil.which("mosquitto_pub")
    assert binary, "mosquitto_pub is missing: apt-get install mosquitto-clients"
    user, password = exercise.broker.credentials(principal)
    address = exercise.broker.address
    for n, payload in enumerate(payloads):
        pub = await asyncio.create_subprocess_exec(
            binary, "-h", address.host, "-p", str(address.port), "-u", user, "-P", password,
            "-i", f"attacker-{principal}-{n}", "-q", "1", "-t", topic, "-s",
            stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(pub.communicate(payload), 30)
        assert pub.returncode == 0, err.decode()


async def test_taken_ids_reused_seqs_and_strangers_are_rejections_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(EXAMPLE)
    northmark, southmere = scenario.party("northmark"), scenario.party("southmere")
    rejections: list[Event] = []
    committed: list[Event] = []
    all_in = asyncio.Event()
    expected = len(TAKEN) + 2

    def watch(events: Sequence[Event]) -> None:
        committed.extend(events)
        rejections.extend(e for e in events if e.type == REJECTION)
        if len(rejections) >= expected:
            all_in.set()

    def submission(seq: int, message_id: str, essence: str) -> bytes:
        message = draft(
            "written_request",
            message_id=message_id,
            case_id=f"attack-{seq}",
            sender=northmark,
            recipient=southmere,
            fields={
                "area": "fuel_and_energy_safety",
                "essence": essence,
                "purpose": "To test the umpire.",
                "justification": "An exercise of its intake.",
                "assistance_sought": "None.",
            },
        )
        return json.dumps(
            {"kind": "submission", "party": "northmark", "seq": seq, "message": message}
        ).encode()

    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), clock="realtime", speed=SPEED
    )
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        run = asyncio.create_task(exercise.run())
        submit = exercise.topics.submit("northmark")
        taken = [submission(900 + n, mid, "A taken id.") for n, mid in enumerate(TAKEN)]
        # Seq 950 twice: a new request, then other content under the same number.
        reused = [
            submission(950, "northmark.attack.1", "The first."),
            submission(950, "northmark.attack.2", "The second."),
        ]
        await _publish(exercise, "northmark", submit, [*taken, *reused])
        await _publish(exercise, "controller", exercise.topics.submit("controller"), [b"{}"])
        async with asyncio.timeout(30):
            await all_in.wait()
        outcome = await run
    assert outcome.result.reason == "the scenario's duration was reached"
    by_seq = {e.data.get("seq"): e.data["reason"] for e in rejections if e.recipient == "northmark"}
    for n, mid in enumerate(TAKEN):
        assert f"message id {mid!r} is in the umpire's own namespace" in by_seq[900 + n]
    assert "sequence number 950 of 'northmark' was used already" in by_seq[950]
    [stranger] = [e for e in rejections if e.recipient == "controller"]
    assert "'controller' is no party of this exercise" in stranger.data["reason"]
    # The first submission under 950 stands; the umpire's own events are all there, once.
    ids = [e.id for e in committed]
    assert "northmark.attack.1" in ids
    assert "northmark.attack.2" not in ids
    assert len(ids) == len(set(ids))
    assert ids[0] == "exercise-started"
    assert committed[-1].type == "coop.exercise.ended"
    assert outcome.summary.rejections == expected


async def test_rejections_under_a_partys_own_numbers_leave_its_plans_be(tmp_path: Path) -> None:
    """`mosquitto_pub`, with northmark's credentials, sends submissions claiming southmere
    under northmark's own first numbers, after each of the run's first commits. Each is
    rejected under that number; before, northmark took such a rejection for one of its own
    plans (numbered when planned, sent when due) and dropped the plan. Now the realtime run
    ends as its simulated twin: the same cases in the same states, the same violations."""
    binary = shutil.which("mosquitto_pub")
    assert binary, "mosquitto_pub is missing: apt-get install mosquitto-clients"
    scenario = load_scenario(EXAMPLE)
    twin = await run_exercise(scenario, RunOptions(log=str(tmp_path / "twin.db")))
    commits: asyncio.Queue[int] = asyncio.Queue()
    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), clock="realtime", speed=SPEED
    )
    bursts = 0
    async with Exercise(
        scenario, options, on_commit=lambda events: commits.put_nowait(len(events))
    ) as exercise:
        run = asyncio.create_task(exercise.run())
        user, password = exercise.broker.credentials("northmark")
        address = exercise.broker.address
        while bursts < SPOOF_BURSTS:
            commit = asyncio.create_task(commits.get())
            await asyncio.wait({commit, run}, return_when=asyncio.FIRST_COMPLETED)
            if run.done():
                commit.cancel()
                break
            spoofs = [
                {"kind": "submission", "party": "southmere", "seq": seq, "message": {"n": bursts}}
                for seq in range(1, SPOOFED_SEQS + 1)
            ]
            lines = b"".join(json.dumps(spoof).encode() + b"\n" for spoof in spoofs)
            # -l: one message per line of stdin, all on one connection.
            pub = await asyncio.create_subprocess_exec(
                binary, "-h", address.host, "-p", str(address.port), "-u", user, "-P", password,
                "-i", f"spoofer-{bursts}", "-q", "1", "-t", exercise.topics.submit("northmark"),
                "-l", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(pub.communicate(lines), 30)
            assert pub.returncode == 0, err.decode()
            bursts += 1
        outcome = await run
    assert bursts == SPOOF_BURSTS
    spoofed = [e for e in await _events(tmp_path / "run.db") if e.type == REJECTION]
    assert spoofed, "no spoof reached the umpire"
    assert all(e.recipient == "northmark" and "claims party 'southmere'" in e.data["reason"]
               for e in spoofed)  # fmt: skip
    ran, planned = outcome.summary, twin.summary
    assert ran.ended_because == planned.ended_because
    assert ran.case_states == planned.case_states
    assert sorted((v.rule, v.case) for v in ran.violations) == sorted(
        (v.rule, v.case) for v in planned.violations
    )


async def _events(log: Path) -> list[Event]:
    async with open_log(log, read_only=True) as store:
        return [e async for e in store.read()]


async def test_a_claimed_due_time_never_goes_back_before_what_the_log_holds(
    tmp_path: Path,
) -> None:
    """`mosquitto_pub`, with northmark's credentials, sends a request saying it was due a
    year before the exercise (`Submission.due`, which a simulated party's runtime sets so
    that its message is recorded when it was due, not when it arrived), and another whose
    `due` is no time at all. The first is recorded no earlier than the last event the log
    held when it came; the second is a rejection naming the field."""
    scenario = load_scenario(EXAMPLE)
    northmark, southmere = scenario.party("northmark"), scenario.party("southmere")
    committed: list[Event] = []
    fifth = asyncio.Event()
    claimed = asyncio.Event()

    def watch(events: Sequence[Event]) -> None:
        committed.extend(events)
        if len(committed) >= 5:
            fifth.set()
        if any(e.id == "northmark.claim.1" or e.type == REJECTION for e in events):
            claimed.set()

    message = draft(
        "written_request",
        message_id="northmark.claim.1",
        case_id="claim-1",
        sender=northmark,
        recipient=southmere,
        fields={
            "area": "fuel_and_energy_safety",
            "essence": "A request that says it is a year old.",
            "purpose": "To test the umpire.",
            "justification": "An exercise of its intake.",
            "assistance_sought": "None.",
        },
    )
    early = (scenario.start.replace(year=scenario.start.year - 1)).isoformat()
    payloads = [
        json.dumps(
            {"kind": "submission", "party": "northmark", "seq": 990, "message": message,
             "due": early}
        ).encode(),
        json.dumps(
            {"kind": "submission", "party": "northmark", "seq": 991, "message": message,
             "due": "yesterday"}
        ).encode(),
    ]  # fmt: skip
    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), clock="realtime", speed=SPEED
    )
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        run = asyncio.create_task(exercise.run())
        async with asyncio.timeout(60):
            await fifth.wait()
            before = max(e.time for e in committed)
            await _publish(exercise, "northmark", exercise.topics.submit("northmark"), payloads)
            await claimed.wait()
        outcome = await run
    assert outcome.result.reason == "the scenario's duration was reached"
    events = await _events(tmp_path / "run.db")
    [claim] = [e for e in events if e.id == "northmark.claim.1"]
    assert claim.time >= before
    [bad] = [e for e in events if e.type == REJECTION]
    assert bad.recipient == "northmark"
    assert "submission.due: Input should be a valid datetime" in bad.data["reason"]
    # And the log's times never go back.
    times = [e.time for e in events]
    assert times == sorted(times)


async def test_a_party_cannot_open_a_case_the_scenario_will_open(tmp_path: Path) -> None:
    """`mosquitto_pub` with southmere's credentials opens, early in the run, a case under
    the id of the example's fifth generated case and one under a conditioned inject's.

    Both had been taken: when the generator came to its case, its request was recorded
    as a breach by northmark (a request in a case already received) and the scenario's
    case was southmere's. Now each is a rejection, said to southmere alone, and the
    scenario's cases run as they would have.
    """
    scenario = load_scenario(EXAMPLE)
    northmark, southmere = scenario.party("northmark"), scenario.party("southmere")
    committed: list[Event] = []
    fifth = asyncio.Event()
    refused = asyncio.Event()

    def watch(events: Sequence[Event]) -> None:
        committed.extend(events)
        if len(committed) >= 5:
            fifth.set()
        if sum(e.type == REJECTION for e in committed) >= 2:
            refused.set()

    def squatting(case_id: str, n: int) -> bytes:
        message = draft(
            "written_request",
            message_id=f"southmere.squat.{n}",
            case_id=case_id,
            sender=southmere,
            recipient=northmark,
            fields={
                "area": "fuel_and_energy_safety",
                "essence": "A case opened under an id the scenario will use.",
                "purpose": "To take it over.",
                "justification": "An exercise of the umpire's intake.",
                "assistance_sought": "None.",
            },
        )
        return json.dumps(
            {"kind": "submission", "party": "southmere", "seq": 900 + n, "message": message}
        ).encode()

    assert scenario.creates_case("routine-0005")
    assert scenario.creates_case("offer-1")
    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), clock="realtime", speed=SPEED
    )
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        run = asyncio.create_task(exercise.run())
        async with asyncio.timeout(60):
            await fifth.wait()
            payloads = [squatting("routine-0005", 1), squatting("offer-1", 2)]
            await _publish(exercise, "southmere", exercise.topics.submit("southmere"), payloads)
            await refused.wait()
        outcome = await run
    assert outcome.result.reason == "the scenario's duration was reached"
    events = await _events(tmp_path / "run.db")
    rejections = [e for e in events if e.type == REJECTION]
    assert [(e.recipient, e.data["message_id"]) for e in rejections] == [
        ("southmere", "southmere.squat.1"),
        ("southmere", "southmere.squat.2"),
    ]
    assert all("is not free: open the case under another id" in e.data["reason"]
               for e in rejections)  # fmt: skip
    assert not [e for e in events if e.id.startswith("southmere.squat")]
    routine = [e for e in events if e.subject == "routine-0005"]
    assert routine, "the generator opened its fifth case"
    assert routine[0].id == "gen.routine.5"
    assert routine[0].data["violations"] == []
