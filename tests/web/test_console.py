"""The console drives a real exercise: seats send, the controller paces, notes and injects."""

import asyncio
import json
from pathlib import Path
from typing import Any

from simulator.logfiles import open_log, partition_location
from simulator.protocol.ids import partition_of
from simulator.records import NOTE
from simulator.run.exercise import RunOptions, run_exercise
from tests.eventlog.conftest import pg_url, run_schema
from tests.web.conftest import Served, desk, serving

__all__ = ["pg_url", "run_schema"]


# southmere's own request to northmark, as its trainee fills the form in.
ESCORT = {
    "area": "public_order",
    "requesting_party_name": "State Guard Service of Southmere",
    "requested_party_name": "Ministry of Internal Affairs of the Republic of Northmark",
    "essence": "Escort of a delegation.",
    "purpose": "Safe passage.",
    "justification": "A state visit.",
    "assistance_sought": "Two escort vehicles.",
}


async def seat_state(served: Served, party: str, predicate: Any) -> dict[str, Any]:
    """The first snapshot on the seat's event stream for which `predicate` holds."""
    async with served.client.stream(
        "GET", f"/seat/{party}/stream", params={"token": served.token(party)}, timeout=30
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                state: dict[str, Any] = json.loads(line[5:])
                if predicate(state):
                    return state
    raise AssertionError("the stream ended")


def case_of(state: dict[str, Any], case_id: str) -> dict[str, Any] | None:
    return next((c for c in state["cases"] if c["id"] == case_id), None)


async def send(served: Served, party: str, **body: Any) -> Any:
    return await served.client.post(
        f"/seat/{party}/send", params={"token": served.token(party)}, json=body
    )


async def test_a_seat_gets_forms_for_what_the_procedure_allows_and_the_controller_paces(
    tmp_path: Path,
) -> None:
    """The seat sees its case and the allowed replies; the rest is refused outside training."""
    async with serving(desk(), tmp_path) as served:
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        water = case_of(seat, "water-1")
        assert water is not None
        assert water["state"] == "received"
        assert water["role"] == "requested"
        assert water["allowed"] == [
            "confirmation_request",
            "acknowledgement",
            "consultation",
            "acceptance",
            "refusal",
            # Art. 6.1: circumstances are notified "promptly", from receipt on.
            "impediment_notice",
            "information_request",
            "confidentiality_impossible",
        ]
        assert [s["type"] for s in water["steps"]] == ["written_request"]

        refused = await send(served, "southmere", kind="results", case="water-1", values={})
        assert refused.status_code == 409
        assert "does not allow results while water-1 is received" in refused.json()["error"]
        blank = await send(served, "southmere", kind="consultation", case="water-1", values={})
        assert blank.status_code == 400
        assert "conditions" in blank.json()["error"]

        sent = await send(
            served,
            "southmere",
            kind="consultation",
            case="water-1",
            values={"conditions": "Patrols stay on the Southmere bank.\nNo weapons on site."},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["message_id"] == "southmere.1"
        # The simulated requester accepts the conditions two simulated hours later.
        assert (await served.command(command="speed", speed=7200)).status_code == 200
        state = await served.until(lambda s: any(c["state"] == "in_execution" for c in s["cases"]))
        assert state["clock"]["speed"] == 7200

        assert (await served.command(command="pause")).status_code == 200
        paused = await served.until(lambda s: s["clock"]["paused"])
        # The umpire answers: a second pause is refused, and says why.
        again = await served.command(command="pause")
        assert again.status_code == 409
        assert "paused already" in again.json()["error"]
        noted = (await served.command(command="note", text="Consulted first: good.")).json()
        assert noted["ok"] is True
        assert noted["detail"].startswith("note recorded at")
        assert (await served.command(command="inject", inject="request-lorry")).status_code == 200
        state = await served.until(
            lambda s: s["notes"] and any(c["id"] == "lorry-1" for c in s["cases"])
        )
        assert state["clock"]["time"] == paused["clock"]["time"]
        assert state["notes"][0]["text"] == "Consulted first: good."
        assert [i["fired"] for i in state["injects"]] == [True, True, True]
        unknown = await served.command(command="inject", inject="no-such")
        assert unknown.status_code == 400
        assert (await served.command(command="resume")).status_code == 200
        await served.until(lambda s: not s["clock"]["paused"])

        seat = await seat_state(served, "southmere", lambda s: case_of(s, "lorry-1"))
        # Notes are for the debrief: the trainee's seat never receives them.
        assert all(e["type"] != NOTE for e in seat["other_events"])
        # A seat sees its own cases only; the controller sees every case.
        assert "east-1" in {c["id"] for c in state["cases"]}
        assert [c["id"] for c in seat["cases"]] == ["water-1", "lorry-1"]

        # A seat opens a case of its own, signed by a deputy (Art. 4.4).
        opened = await send(
            served,
            "southmere",
            kind="written_request",
            case="own-1",
            recipient="northmark",
            values={**ESCORT, "signature": "L. Morrow"},
        )
        assert opened.status_code == 200, opened.text
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "own-1"))
        own = case_of(seat, "own-1")
        assert own is not None
        assert own["role"] == "requesting"
        assert own["allowed"] == ["withdrawal"]
        request = own["steps"][0]
        assert request["message"]["signature"]["name"] == "L. Morrow"
        assert request["message"]["seal"] == "SOUTHMERE-SGS-SEAL-01"
        assert request["violations"] == []

        assert (await served.command(command="stop")).status_code == 200
        ended = await served.until(lambda s: s["ended"] and s["report"], seconds=60)
        report = await served.client.get(ended["report"], params={"token": served.token("control")})
        assert report.status_code == 200
        assert "refusal-desk" in report.text
        assert report.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in report.headers["content-security-policy"]
        assert (await served.command(command="pause")).status_code == 409
    async with open_log(str(served.log), read_only=True) as store:
        events = [e async for e in store.read(1)]
    notes = [e for e in events if e.type == NOTE]
    assert [n.data["text"] for n in notes] == ["Consulted first: good."]
    sent_by_seat = [e.data["message"]["type"] for e in events if e.sender == "southmere"]
    assert sent_by_seat == ["consultation", "written_request"]
    assert (tmp_path / "report" / "report.html").is_file()


async def test_outside_training_a_seat_keeps_to_its_cases_counterparts_and_one_step_at_once(
    tmp_path: Path,
) -> None:
    """A seat may not open a case under an id that is not free, send to a party the step
    does not go to, nor send twice on one state; and a form's values are an object.

    Found by a hostile client: a seat had opened `lorry-1` before the scenario's inject
    did (the inject's requester was then charged with the breach), sent into another
    parties' case (and learnt its state from the finding), sent an information request
    to a third party, and had five concurrent requests all accepted against one state.
    """
    async with serving(desk(), tmp_path) as served:
        await served.until(lambda s: any(c["id"] == "east-1" for c in s["cases"]))
        await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        shapeless = await send(
            served, "southmere", kind="acknowledgement", case="water-1", values="x"
        )
        assert shapeless.status_code == 400
        assert "values must be an object" in shapeless.json()["error"]
        for taken in ("east-1", "lorry-1", "water-1"):
            squat = await send(
                served,
                "southmere",
                kind="written_request",
                case=taken,
                recipient="northmark",
                values={**ESCORT, "signature": "L. Morrow"},
            )
            if taken == "water-1":
                # Its own case: the procedure says no, as for any step it does not allow.
                assert squat.status_code == 409
                continue
            assert squat.status_code == 409, squat.text
            assert squat.json()["error"] == (
                f"case id {taken} is not free: open the case under another id"
            )
        astray = await send(
            served,
            "southmere",
            kind="information_request",
            case="water-1",
            recipient="eastmark",
            values={"questions": "How many visitors?"},
        )
        assert astray.status_code == 409
        assert "goes to northmark, not eastmark" in astray.json()["error"]
        twice = await asyncio.gather(
            *(
                send(
                    served,
                    "southmere",
                    kind="information_request",
                    case="water-1",
                    values={"questions": f"Question {n}?"},
                )
                for n in range(5)
            )
        )
        codes = sorted(r.status_code for r in twice)
        assert codes == [200, 409, 409, 409, 409], [r.text for r in twice]
        assert all("not recorded yet" in r.json()["error"] for r in twice if r.status_code == 409)
        assert (await served.command(command="stop")).status_code == 200
        await served.until(lambda s: s["ended"], seconds=60)
    async with open_log(str(served.log), read_only=True) as store:
        events = [e async for e in store.read(1)]
    by_seat = [e for e in events if e.sender == "southmere"]
    assert [e.data["message"]["type"] for e in by_seat] == ["information_request"]
    assert by_seat[0].data["violations"] == []


async def test_in_training_a_trainee_may_break_the_procedure_and_the_umpire_records_it(
    tmp_path: Path,
) -> None:
    """Training mode sends what the state does not allow; the violation is in the feed."""
    async with serving(desk(), tmp_path, training=True) as served:
        await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        sent = await send(
            served, "southmere", kind="results", case="water-1", values={"summary": "Done."}
        )
        assert sent.status_code == 200, sent.text
        state = await served.until(lambda s: s["violations"])
        assert [(v["rule"], v["case"], v["party"]) for v in state["violations"]] == [
            ("not-allowed-in-state", "water-1", "southmere")
        ]
        # The case stays as it was; the trainee can still do the right thing.
        seat = await seat_state(
            served, "southmere", lambda s: len((case_of(s, "water-1") or {})["steps"]) == 2
        )
        water = case_of(seat, "water-1")
        assert water is not None
        assert water["state"] == "received"
        assert water["steps"][1]["violations"][0]["rule_id"] == "not-allowed-in-state"
        assert "acknowledgement" in water["allowed"]


async def test_a_fork_goes_on_live_with_its_seats_where_its_parent_stood(tmp_path: Path) -> None:
    """`serve --fork`: the board starts with the kept cases and names the parent; the seat
    takes up water-1 again; its messages carry the fork's generation; the report says so."""
    parent = tmp_path / "parent.db"
    # The parent: the same desk with every seat simulated (Southmere, without a policy,
    # stays silent), on the simulated clock.
    await run_exercise(desk(humans=()), RunOptions(log=str(parent)))
    async with serving(desk(), tmp_path / "fork", fork_from=(parent, 3)) as served:
        state = await served.until(lambda s: s["head"] >= 3)
        assert state["lineage"] == {"parent": str(parent), "position": 3, "generation": 1}
        assert (
            state["lineage_text"]
            == f"this run is a fork (generation 1) of {parent}, from its first 3 events"
        )
        assert {c["id"] for c in state["cases"]} >= {"water-1", "east-1"}
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        water = case_of(seat, "water-1")
        assert water is not None
        assert "acknowledgement" in water["allowed"]
        sent = await send(served, "southmere", kind="acknowledgement", case="water-1", values={})
        assert sent.status_code == 200, sent.text
        assert sent.json()["message_id"] == "southmere.g1.1"
        assert (await served.command(command="stop")).status_code == 200
        ended = await served.until(lambda s: s["ended"] and s["report"], seconds=60)
        report = await served.client.get(ended["report"], params={"token": served.token("control")})
        assert f"a fork (generation 1) of {parent}, from its first 3 events" in report.text


async def test_a_seat_shows_the_letter_of_each_written_message_and_only_its_own(
    tmp_path: Path,
) -> None:
    """A seat's message has its letter (page and PDF); a case the seat is not in has none."""
    async with serving(desk(), tmp_path) as served:
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        water = case_of(seat, "water-1")
        assert water is not None
        (request,) = water["steps"]
        assert request["letter"] is True
        token = {"token": served.token("southmere")}
        url = f"/seat/southmere/letter/{request['position']}"
        page = await served.client.get(url, params=token)
        assert page.status_code == 200
        # The desk's working language is Russian: the Russian template, Art. 10's addressee.
        assert "Запрос о предоставлении помощи" in page.text
        assert "Main Organisational Directorate" in page.text
        assert "Ministry of Internal Affairs of the Republic of Northmark" in page.text
        assert "style-src 'unsafe-inline'" in page.headers["content-security-policy"]
        pdf = await served.client.get(url, params={**token, "format": "pdf"})
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        state = await served.until(lambda s: any(c["id"] == "east-1" for c in s["cases"]))
        east = next(e for e in state["timeline"] if e["case"] == "east-1")
        hidden = await served.client.get(f"/seat/southmere/letter/{east['position']}", params=token)
        assert hidden.status_code == 404
        refused = await served.client.get(url, params={"token": served.token("control")})
        assert refused.status_code == 403


async def test_a_seat_in_an_exercise_split_between_two_umpires(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """`serve --partitions 2`: the seat holds its cases of both partitions, its messages go to
    their case's umpire, the controller's inject reaches the other partition, the report merges.

    water-1 is partition 0's; lorry-1 (injected by the controller) and own-1 partition 1's.
    """
    assert [partition_of(c, 2) for c in ("water-1", "lorry-1", "own-1")] == [0, 1, 1]
    log = f"{pg_url}?schema={run_schema}"
    async with serving(desk(), tmp_path, log=log, partitions=2) as served:
        await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        sent = await send(
            served,
            "southmere",
            kind="consultation",
            case="water-1",
            values={"conditions": "Patrols stay on the Southmere bank."},
        )
        assert sent.status_code == 200, sent.text
        assert (await served.command(command="speed", speed=7200)).status_code == 200
        await served.until(lambda s: any(c["state"] == "in_execution" for c in s["cases"]))
        assert (await served.command(command="inject", inject="request-lorry")).status_code == 200
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "lorry-1"))
        # Numbered once for the seat, whichever partition each event came from.
        positions = [e["position"] for c in seat["cases"] for e in c["steps"]]
        assert len(set(positions)) == len(positions)
        opened = await send(
            served,
            "southmere",
            kind="written_request",
            case="own-1",
            recipient="northmark",
            values=ESCORT,
        )
        assert opened.status_code == 200, opened.text
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "own-1"))
        own = case_of(seat, "own-1")
        assert own is not None
        assert own["allowed"] == ["withdrawal"]
        # The control view follows every partition's cases.
        every = await served.until(lambda s: {"lorry-1", "own-1"} <= {c["id"] for c in s["cases"]})
        assert {"water-1", "lorry-1", "own-1", "east-1"} <= {c["id"] for c in every["cases"]}
        assert (await served.command(command="stop")).status_code == 200
        await served.until(lambda s: s["ended"] and s["report"], seconds=60)
    assert (tmp_path / "report" / "report.html").is_file()
    by_partition = {}
    for n in (0, 1):
        async with open_log(partition_location(log, n), read_only=True) as store:
            by_partition[n] = [e async for e in store.read(1)]
    for n, events in by_partition.items():
        assert all(partition_of(e.subject, 2) == n for e in events if e.subject)
    seat_sent = {
        n: [e.data["message"]["type"] for e in events if e.sender == "southmere"]
        for n, events in by_partition.items()
    }
    assert seat_sent == {0: ["consultation"], 1: ["written_request"]}


async def test_a_form_of_the_wrong_shape_is_refused_naming_the_field(tmp_path: Path) -> None:
    """A field the form has not, a text field sent as null, a number, an object or a list,
    and a kind, case or recipient that is not text, are refused (400) naming what was wrong;
    nothing of them is recorded, and the next good form takes the first number.

    Found by a hostile client: `null` was recorded as the text "None", `true` as "True",
    an object as its Python repr and a list as its first line; a misspelt field (`question`)
    was dropped without a word, and a case id of 12345 taken as "12345".
    """
    async with serving(desk(), tmp_path) as served:
        await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        asking = {"kind": "information_request", "case": "water-1"}
        for body, said in (
            ({**asking, "values": {"questions": None}}, "questions: must be text, not null"),
            ({**asking, "values": {"questions": True}}, "questions: must be text, not true"),
            ({**asking, "values": {"questions": 12}}, "questions: must be text, not a number"),
            ({**asking, "values": {"questions": {"a": 1}}}, "must be text, not an object"),
            ({**asking, "values": {"questions": ["a", "b"]}}, "must be text, not a list"),
            (
                {**asking, "values": {"question": "How many?"}},
                "the information request form has no field 'question'",
            ),
            (
                {"kind": "refusal", "case": "water-1", "values": {"grounds": [1]}},
                "grounds: must be a list of text",
            ),
            ({**asking, "case": 12345, "values": {}}, "case must be text, not a number"),
            ({**asking, "kind": None, "values": {}}, "kind must be text, not null"),
            ({**asking, "recipient": ["northmark"], "values": {}}, "recipient must be text"),
            ({**asking, "message_id": "northmark.9", "values": {}}, "no field 'message_id'"),
        ):
            refused = await send(served, "southmere", **body)
            assert refused.status_code == 400, (body, refused.text)
            assert said in refused.json()["error"], (body, refused.text)
        sent = await send(served, "southmere", **asking, values={"questions": "How many?"})
        assert sent.status_code == 200, sent.text
        assert sent.json()["message_id"] == "southmere.1"
        assert (await served.command(command="stop")).status_code == 200
        await served.until(lambda s: s["ended"], seconds=60)
    async with open_log(str(served.log), read_only=True) as store:
        events = [e async for e in store.read(1)]
    by_seat = [e.data["message"] for e in events if e.sender == "southmere"]
    assert [(m["type"], m["questions"]) for m in by_seat] == [
        ("information_request", ["How many?"])
    ]


async def test_two_seats_opening_one_new_case_id_at_once_get_it_once(tmp_path: Path) -> None:
    """Two seats opening a case under the same new id at the same moment: one opens it,
    the other is told the id is not free; neither is charged with a breach.

    Found with two players racing: both were accepted (the id was in neither the log nor
    the scenario yet), and the second request was recorded into the first's case as
    `not-allowed-in-state`, charged to a trainee the console had said yes to.
    """
    async with serving(desk(humans=("northmark", "southmere")), tmp_path) as served:
        for party in ("northmark", "southmere"):
            await seat_state(served, party, lambda s: s["clock"]["time"])
        answers = await asyncio.gather(
            send(
                served,
                "southmere",
                kind="written_request",
                case="joint-1",
                recipient="northmark",
                values={**ESCORT, "signature": "L. Morrow"},
            ),
            send(
                served,
                "northmark",
                kind="written_request",
                case="joint-1",
                recipient="southmere",
                values={**ESCORT, "signature": "O. Tessary"},
            ),
        )
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        (refused,) = (a for a in answers if a.status_code == 409)
        assert refused.json()["error"] == (
            "case id joint-1 is not free: open the case under another id"
        )
        await served.until(lambda s: any(c["id"] == "joint-1" for c in s["cases"]))
        assert (await served.command(command="stop")).status_code == 200
        await served.until(lambda s: s["ended"], seconds=60)
    async with open_log(str(served.log), read_only=True) as store:
        events = [e async for e in store.read(1)]
    joint = [e for e in events if e.subject == "joint-1"]
    assert [(e.type, e.data["violations"]) for e in joint] == [("coop.msg.written_request", [])]


async def test_a_message_sent_as_the_controller_ends_the_run_is_recorded_or_refused(
    tmp_path: Path,
) -> None:
    """The trainee's send and the controller's "End exercise" at one moment: a message the
    seat said was sent is in the log before the end; otherwise the seat said the run is ending.

    Found by racing the two: the seat answered "sent as southmere.1", the run ended without
    it, and the seat showed it "waiting for the umpire" for good.
    """
    async with serving(desk(), tmp_path) as served:
        await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        stop, sent = await asyncio.gather(
            served.command(command="stop"),
            send(served, "southmere", kind="acknowledgement", case="water-1", values={}),
        )
        assert stop.status_code == 200, stop.text
        await served.until(lambda s: s["ended"], seconds=60)
        seat = await seat_state(served, "southmere", lambda s: s["ended"])
        assert seat["pending"] == []
    async with open_log(str(served.log), read_only=True) as store:
        events = [e async for e in store.read(1)]
    recorded = [e.data["message"]["message_id"] for e in events if e.sender == "southmere"]
    if sent.status_code == 200:
        assert recorded == [sent.json()["message_id"]]
        assert events[-1].type == "coop.exercise.ended"
    else:
        assert sent.status_code == 409
        assert "ending" in sent.json()["error"]
        assert recorded == []
