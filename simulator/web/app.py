"""The web app: the control view, the seats, their live streams and their commands.

Pages are rendered on the server; a small script draws the live parts from
server-sent events (one JSON snapshot per change, at most a few a second).
Every page and stream takes its token in the query string: the control
token opens only the control view, a seat's token only that seat. Tokens
sit in URLs, so no page sends a referrer and nothing is cached.
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from simulator.errors import SimulatorError
from simulator.letters import (
    LETTERS_DIRECTORY,
    letters_of,
    render_letter,
    render_pdf,
)
from simulator.messaging.wire import Control, describe
from simulator.protocol import Case
from simulator.protocol.ids import CASE_ID_PATTERN
from simulator.records import message_payload, violation_payloads
from simulator.web.board import Board, Signal, iso
from simulator.web.forms import (
    FORMS,
    OPENING_TYPES,
    FormError,
    allowed_now,
    counterpart,
    json_kind,
    message_from_form,
)
from simulator.web.limits import BodyLimit, RefusalLog, RequestRefused, parse_json
from simulator.web.player import PlayerSeat
from simulator.web.tokens import Access, Tokens

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
# Several commits in a burst become one update; a person cannot read faster.
MIN_INTERVAL_S = 0.1
HEARTBEAT_S = 1.0
# What a seat's form posts: anything else is refused, not dropped without a word.
SEND_FIELDS = ("kind", "case", "recipient", "values")
# How long a run asked to end waits, at most, for what the seats sent to be recorded.
SETTLE_S = 5.0
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


@dataclass
class Console:
    """Everything the pages read and act on, for one served exercise or log."""

    board: Board
    tokens: Tokens
    # The umpire's answer: carried out or not, and what it says.
    send_control: Callable[[Control], Awaitable[tuple[bool, str]]]
    seats: dict[str, PlayerSeat] = field(default_factory=dict)
    report_file: Path | None = None
    base_url: str = ""
    # The run was asked to end: the seats send nothing more.
    closing: bool = False

    async def close_seats(self, wait_s: float = SETTLE_S) -> None:
        """Let the seats send nothing more, and wait (`wait_s` at most) until what they sent
        is recorded: the end comes after it. Ended at once, the run had gone without a
        message the seat had answered "sent" for (the umpire takes a person's submission
        when it arrives, and it came after the end)."""
        self.closing = True
        loop = asyncio.get_running_loop()
        give_up = loop.time() + wait_s
        for seat in self.seats.values():
            while seat.outbox and seat.ended is None and (left := give_up - loop.time()) > 0:
                await seat.changed.wait_past(seat.changed.version, left)

    def links(self) -> dict[str, str]:
        found = {"control": f"{self.base_url}/control?token={self.tokens.control}"}
        for party, token in sorted(self.tokens.seats.items()):
            found[party] = f"{self.base_url}/seat/{party}?token={token}"
        return found


def _token(request: Request) -> str | None:
    return request.query_params.get("token") or request.headers.get("x-token")


def _refused() -> Response:
    return HTMLResponse(
        "<!doctype html><title>Not this page</title><h1>This link does not open this page.</h1>"
        "<p>Open the page with the link <code>simulator serve</code> printed for it: the "
        "controller's for the control view, each player's for their seat.</p>",
        status_code=403,
        headers=SECURITY_HEADERS,
    )


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": text}, status_code=status, headers=SECURITY_HEADERS)


async def _stream(
    signal: Signal, snapshot: Callable[[], dict[str, Any]]
) -> AsyncIterator[dict[str, str]]:
    loop = asyncio.get_running_loop()
    while True:
        seen = signal.version
        yield {"event": "state", "data": json.dumps(snapshot(), ensure_ascii=False)}
        sent = loop.time()
        await signal.wait_past(seen, HEARTBEAT_S)
        # A burst of commits becomes one update, but the first change after a quiet
        # spell goes at once: a trainee's message shows on the control view at once.
        await asyncio.sleep(max(sent + MIN_INTERVAL_S - loop.time(), 0.0))


def seat_snapshot(seat: PlayerSeat, training: bool) -> dict[str, Any]:
    """What one seat shows: only its own events and cases, and what it may send now."""
    party = seat.party
    now = seat.now()
    others = sorted(p for p in seat.parties if p != party.id)
    cases = []
    for case in sorted(seat.cases.values(), key=lambda c: c.opened_at):
        allowed = (
            allowed_now(case, party, seat.parties, seat.agreement, now)
            if now is not None and not case.state.terminal
            else []
        )
        steps = [
            {
                "position": e.position,
                "time": iso(e.time),
                "type": message_payload(e)["type"],
                "sender": e.sender,
                "recipient": e.recipient,
                "message": message_payload(e),
                "violations": violation_payloads(e),
                # Every message that went in writing has its letter.
                "letter": message_payload(e).get("medium") != "oral",
            }
            for p, e in sorted(seat.events.items())
            if e.subject == case.case_id and e.type.startswith("coop.msg.")
        ]
        oral = next((s["message"] for s in steps if s["type"] == "oral_request"), None)
        cases.append(
            {
                "id": case.case_id,
                "state": case.state.value,
                "terminal": case.state.terminal,
                "role": (
                    "requesting" if party.id in (case.requesting, case.offered_to) else "requested"
                ),
                "counterpart": counterpart(case, party.id, "acknowledgement", others),
                "area": case.area,
                "allowed": allowed,
                "recipients": {kind: counterpart(case, party.id, kind, others) for kind in FORMS},
                "prefill": oral,
                "steps": steps,
            }
        )
    other_events = [
        {
            "position": e.position,
            "time": iso(e.time),
            "type": e.type,
            "case": e.subject,
            "data": e.data,
        }
        for _, e in sorted(seat.events.items())
        if not e.type.startswith("coop.msg.")
    ]
    outbox = [
        {"seq": p.seq, "message_id": p.message_id, "type": p.kind, "case": p.case_id}
        for p in seat.outbox.values()
    ]
    return {
        "party": party.id,
        "name": party.name,
        "training": training,
        "clock": {
            "time": iso(now),
            "paused": seat.round.paused if seat.round else False,
            "speed": seat.round.speed if seat.round else None,
        },
        "ended": seat.ended.reason if seat.ended else None,
        "cases": cases,
        "other_events": other_events,
        # Once the run has ended nothing more is recorded: what the seat still holds
        # was sent too late (the run ran out, or was stopped from elsewhere), and the
        # seat says so rather than "waiting for the umpire" for good.
        "pending": [] if seat.ended else outbox,
        "not_recorded": outbox if seat.ended else [],
        "opening": list(OPENING_TYPES),
        "parties": others,
    }


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def control_ok(request: Request) -> bool:
    return _console(request).tokens.allows(Access("control"), _token(request))


def seat_of(request: Request) -> PlayerSeat | None:
    console = _console(request)
    party = request.path_params["party"]
    if not console.tokens.allows(Access("seat", party), _token(request)):
        return None
    return console.seats.get(party)


async def index(request: Request) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Exercise console</title><h1>Exercise console</h1>"
        "<p>Open the control or seat link printed by <code>simulator serve</code>.</p>",
        headers=SECURITY_HEADERS,
    )


async def control_page(request: Request) -> Response:
    console = _console(request)
    board = console.board
    if not control_ok(request):
        return _refused()
    return templates.TemplateResponse(
        request,
        "control.html",
        {"board": board, "token": console.tokens.control, "links": console.links()},
        headers=SECURITY_HEADERS,
    )


async def control_stream(request: Request) -> Response:
    board = _console(request).board
    if not control_ok(request):
        return _refused()
    return EventSourceResponse(_stream(board.changed, board.snapshot), headers=SECURITY_HEADERS)


async def control_state(request: Request) -> Response:
    board = _console(request).board
    if not control_ok(request):
        return _refused()
    return JSONResponse(board.snapshot(), headers=SECURITY_HEADERS)


async def control_command(request: Request) -> Response:
    console = _console(request)
    board = console.board
    if not control_ok(request):
        return _refused()
    try:
        command = Control.model_validate(parse_json(await request.body()))
    except ValidationError as exc:
        return _error(400, describe(exc))
    except RequestRefused as exc:
        return _error(exc.status, exc.reason)
    if command.command == "speed" and command.speed is None:
        return _error(400, "speed needs a factor")
    if command.command == "note" and not (command.text or "").strip():
        return _error(400, "a note needs text")
    if command.command == "inject" and command.inject not in {i.id for i in board.scenario.injects}:
        return _error(400, f"no inject {command.inject!r} in the scenario")
    if board.mode == "replay" and command.command in ("inject", "note"):
        return _error(409, "a replay shows a finished run; it cannot be changed")
    if board.ended:
        return _error(409, "the exercise has ended")
    if command.command == "stop":
        await console.close_seats()
    ok, detail = await console.send_control(command)
    if not ok:
        return _error(409, detail)
    return JSONResponse({"ok": True, "detail": detail}, headers=SECURITY_HEADERS)


# The report's links to the letters beside it, and the names those letters may have.
_LETTER_LINK = re.compile(r'href="letters/([^"?#]+)"')
_LETTER_NAME = re.compile(r"\d{5}-[a-z0-9_-]+\.html")
# A letter is one self-contained page with its own style, and nothing else.
LETTER_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


async def control_report(request: Request) -> Response:
    console = _console(request)
    if not control_ok(request):
        return _refused()
    if console.report_file is None or not console.report_file.is_file():
        return _error(404, "the report is written when the exercise ends")
    # The letters are served behind the same token as the report: its links carry it.
    token = console.tokens.control
    page = _LETTER_LINK.sub(
        lambda m: f'href="/control/report/letters/{m[1]}?token={token}"',
        console.report_file.read_text(encoding="utf-8"),
    )
    # Not SECURITY_HEADERS' whole policy: the report is self-contained, its styles and
    # charts inline; but framed by no one, and never sniffed as anything else.
    return HTMLResponse(
        page,
        headers={
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "frame-ancestors 'none'",
        },
    )


async def control_report_letter(request: Request) -> Response:
    """A letter the report links, from the report's own letters directory."""
    console = _console(request)
    if not control_ok(request):
        return _refused()
    name = request.path_params["name"]
    if console.report_file is None or _LETTER_NAME.fullmatch(name) is None:
        return _error(404, "no such letter")
    path = console.report_file.parent / LETTERS_DIRECTORY / name
    if not path.is_file():
        return _error(404, "no such letter")
    return HTMLResponse(path.read_text(encoding="utf-8"), headers=LETTER_HEADERS)


async def seat_page(request: Request) -> Response:
    console = _console(request)
    board = console.board
    seat = seat_of(request)
    if seat is None:
        return _refused()
    # Who may sign is the agreements': the seat offers those any of its agreements admits.
    agreement = seat.agreement
    profiles = [b.profile for b in agreement.bindings if seat.party.id in b.parties]
    kinds = {kind for profile in profiles or [agreement.profile] for kind in profile.signatories}
    signatories = [
        *([seat.party.head] if "head" in kinds else []),
        *(seat.party.deputies if "deputy" in kinds else ()),
    ]
    return templates.TemplateResponse(
        request,
        "seat.html",
        {
            "board": board,
            "seat": seat,
            "token": console.tokens.seats[seat.party.id],
            "signatories": signatories,
            "forms": {k: f.as_json() for k, f in FORMS.items()},
        },
        headers=SECURITY_HEADERS,
    )


async def seat_stream(request: Request) -> Response:
    board = _console(request).board
    seat = seat_of(request)
    if seat is None:
        return _refused()
    return EventSourceResponse(
        _stream(seat.changed, lambda: seat_snapshot(seat, board.training)),
        headers=SECURITY_HEADERS,
    )


async def seat_letter(request: Request) -> Response:
    """The letter of a message the seat holds, as a page or (`?format=pdf`) as a PDF."""
    seat = seat_of(request)
    if seat is None:
        return _refused()
    try:
        position = int(request.path_params["position"])
    except ValueError:
        return _error(404, "no such letter")
    event = seat.events.get(position)
    if event is None or event.subject is None:
        return _error(404, "no such letter")
    # Folded from the seat's own events: what it holds, numbered as the log numbers it.
    held = [seat.events[p] for p in sorted(seat.events) if p <= position]
    letter = next(
        (
            found
            for found in letters_of(held, seat.agreement, case=event.subject)
            if found.position == position
        ),
        None,
    )
    if letter is None:
        return _error(404, "no letter: the message did not go in writing")
    if request.query_params.get("format") == "pdf":
        try:
            pdf = await asyncio.to_thread(render_pdf, letter)
        except SimulatorError as exc:  # no Pango on this machine: the page still works
            return _error(503, str(exc))
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                **LETTER_HEADERS,
                "Content-Disposition": f'inline; filename="{letter.stem}.pdf"',
            },
        )
    return HTMLResponse(render_letter(letter), headers=LETTER_HEADERS)


async def seat_send(request: Request) -> Response:
    console = _console(request)
    board = console.board
    seat = seat_of(request)
    if seat is None:
        return _refused()
    if seat.ended is not None or board.ended:
        return _error(409, "the exercise has ended")
    try:
        body = parse_json(await request.body())
    except RequestRefused as exc:
        return _error(exc.status, exc.reason)
    if unknown := sorted(set(body) - set(SEND_FIELDS)):
        return _error(
            400,
            f"a seat's message has no field {', '.join(map(repr, unknown))}: "
            f"it sends {', '.join(SEND_FIELDS)}",
        )
    for name in ("kind", "case", "recipient"):
        # Taken as text whatever came, 12345 had opened case "12345".
        if (
            name in body
            and not isinstance(body[name], str)
            and not (name == "recipient" and body[name] is None)
        ):
            return _error(400, f"{name} must be text, not {json_kind(body[name])}")
    kind = body.get("kind", "")
    case_id = body.get("case", "").strip()
    values = body.get("values", {})
    if not isinstance(values, dict):
        return _error(400, f"values must be an object of the form's fields, not {values!r:.80}")
    if kind not in FORMS:
        return _error(400, f"{kind!r} is not a message type")
    if CASE_ID_PATTERN.fullmatch(case_id) is None:
        return _error(400, f"case id {case_id!r} must match [a-z0-9_-]{{1,64}}")
    case = seat.cases.get(case_id)
    now = seat.now()
    if case is None:
        if kind not in OPENING_TYPES and not board.training:
            return _error(409, f"{case_id} is not one of your cases")
        if _not_free(board, case_id) or _opening_elsewhere(console, seat, case_id):
            # Said alike of another parties' case and of one the scenario will open, and
            # nothing more: a seat learns nothing of cases that are not its own.
            return _error(409, f"case id {case_id} is not free: open the case under another id")
    elif not board.training:
        allowed = allowed_now(case, seat.party, seat.parties, seat.agreement, now) if now else []
        if kind not in allowed:
            return _error(
                409,
                f"the procedure does not allow {kind.replace('_', ' ')} while {case_id} is "
                f"{case.state.value}",
            )
    if not board.training and any(item.case_id == case_id for item in seat.outbox.values()):
        # What is allowed next follows from the last message once it is recorded: a second
        # click (or tab) checked against the state before it had been let through.
        return _error(
            409, f"your last message in {case_id} is not recorded yet: send this once it is"
        )
    others = sorted(p for p in seat.parties if p != seat.party.id)
    expected = counterpart(case, seat.party.id, kind, others)
    recipient = str(body.get("recipient") or expected or "")
    if recipient not in seat.parties or recipient == seat.party.id:
        return _error(400, "choose whom the message goes to")
    if not board.training and case is not None and recipient != expected:
        goes_to = _recipients(case, seat.party.id, kind, others)
        if recipient not in goes_to:
            return _error(
                409,
                f"a {kind.replace('_', ' ')} in {case_id} goes to {' or '.join(goes_to)}, "
                f"not {recipient}",
            )
    try:
        message = message_from_form(
            kind,
            values,
            sender=seat.party,
            recipient=seat.parties[recipient],
            case_id=case_id,
            message_id="draft",
            in_reply_to=seat.last_message.get(case_id),
        )
    except FormError as exc:
        return _error(400, str(exc))
    if console.closing or seat.ended is not None or board.ended:
        # Checked last, with nothing awaited between here and the seat's outbox: the end
        # waits for what is in it.
        return _error(409, "the exercise is ending: nothing more can be sent")
    # Numbered only once it is sure to go: a refused form leaves no gap in the sequence.
    seq, message_id = seat.new_message_id()
    message["message_id"] = message_id
    await seat.submit(seq, message)
    return JSONResponse({"ok": True, "message_id": message_id}, headers=SECURITY_HEADERS)


def _not_free(board: Board, case_id: str) -> bool:
    """Whether a new case may not have this id: a case of the log (whoever's), or one
    the scenario opens itself (an inject's, a generator's), which it would take over."""
    return case_id in board.cases.cases or board.scenario.creates_case(case_id)


def _opening_elsewhere(console: Console, seat: PlayerSeat, case_id: str) -> bool:
    """Whether another seat has sent a message under this case id that is not recorded
    yet: the id is not in the log, but will be, and is not free either. Two trainees
    opening one id at once had both been let through, the second charged with a breach."""
    return any(
        item.case_id == case_id
        for other in console.seats.values()
        if other is not seat
        for item in other.outbox.values()
    )


def _recipients(case: Case, party: str, kind: str, others: Sequence[str]) -> list[str]:
    """Whom a message of `kind` from `party` in this case may go to, outside training."""
    if kind == "results_transfer":
        # To any third party: consent, or its lack, is the procedure's to judge (Art. 7.3).
        return [p for p in others if p not in (case.requesting, case.requested)]
    expected = counterpart(case, party, kind, others)
    return [expected] if expected is not None else list(others)


ROUTES = [
    Route("/", index),
    Route("/control", control_page),
    Route("/control/stream", control_stream),
    Route("/control/state", control_state),
    Route("/control/command", control_command, methods=["POST"]),
    Route("/control/report", control_report),
    Route("/control/report/letters/{name}", control_report_letter),
    Route("/seat/{party}", seat_page),
    Route("/seat/{party}/stream", seat_stream),
    Route("/seat/{party}/send", seat_send, methods=["POST"]),
    Route("/seat/{party}/letter/{position}", seat_letter),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]


def build_app(console: Console) -> Starlette:
    # Outermost, so that BodyLimit's own refusals (413) are logged too.
    app = Starlette(routes=ROUTES, middleware=[Middleware(RefusalLog), Middleware(BodyLimit)])
    app.state.console = console
    return app


__all__ = ["Console", "build_app", "seat_snapshot"]
