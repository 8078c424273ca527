"""The umpire's decisions, apart from any I/O: what each submission becomes in the log.

The sequencer checks a submission (size, form, claimed sender against the
connection's party, message id reuse), folds it into its case with the
protocol rules, and returns the event to append: a message event with its
violations, or a rejection event with the reason the sender is told. It
changes its own view only when the caller reports the batch committed, so a
failed append leaves nothing half-applied.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from pydantic import ValidationError

from simulator.eventlog import Event, NewEvent
from simulator.messaging.wire import (
    MAX_PAYLOAD_BYTES,
    Rejected,
    Submission,
    WireError,
    decode_from_party,
    describe,
)
from simulator.protocol import (
    Agreement,
    Case,
    Deadline,
    DeadlineKind,
    Message,
    apply,
    deadlines,
    elapse,
    sending_problems,
)
from simulator.protocol.ids import UMPIRE_ID_PREFIXES, in_umpire_namespace
from simulator.records import (
    CLOCK_ELAPSED,
    MessageJson,
    is_message_event,
    message_from_json,
    message_json,
    message_payload,
    payload_digest,
    read_message,
    record_elapsed,
    record_message,
    record_rejection,
    rejection_id,
)

# Deadlines are checked just after they pass: "no more than 3 days" means the
# due instant itself is still in time.
DEADLINE_GRACE_SECONDS = 1


class Decision(NamedTuple):
    """What one submission leads to: an event to append (or none, for a repeat) and a notice.

    (A NamedTuple, not a frozen dataclass: one is made per submission decided, and a
    frozen dataclass's __init__ cost twice as much.)
    """

    party: str
    event: NewEvent | None
    notice: Rejected | None = None
    duplicate_of: str | None = None


@dataclass
class Pending:
    """A batch being built: events in order and the case states they lead to."""

    events: list[NewEvent] = field(default_factory=list)
    cases: dict[str, Case] = field(default_factory=dict)
    ids: dict[str, bytes] = field(default_factory=dict)


def claim(party: str, digest: str) -> bytes:
    """What the sequencer keeps of a message under its id: who sent it and its digest.

    One small bytes object (the party's name, then the digest's 12 bytes), not a
    tuple of two strings: it is kept for every message of a run, and the tuple took
    2.5 times the room (80 MB more for a million-message load run).
    """
    return party.encode() + bytes.fromhex(digest)


def message_digest(message: Message, dumped: MessageJson) -> str:
    """What tells a resend of a message (the same digest) from another message under its id.

    The digest of its JSON text: with sorted keys where the event's data is
    encoded that way anyway, else as pydantic writes it. One message class is
    always digested the same way, so equal messages get equal digests. The
    digests live only in memory (`load` computes them again from the log).
    """
    text = dumped.text if dumped.text is not None else message.model_dump_json()
    return payload_digest(text.encode())


class Sequencer:
    def __init__(
        self,
        agreement: Agreement,
        exercise: str,
        *,
        wallclock: Callable[[], datetime],
        max_payload: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.agreement = agreement
        self.exercise = exercise
        self.wallclock = wallclock
        self.max_payload = max_payload
        self.cases: dict[str, Case] = {}
        # message id -> `claim` (sender and digest of the message), to tell a resend from
        # a reuse.
        self.message_ids: dict[str, bytes] = {}
        self.pending = Pending()
        # Committed cases with an obligation open (`deadlines`): the only ones a timer
        # can change. Walking every case each time made a long load run's umpire stall
        # for tens of milliseconds a second over cases long closed. Each with its soonest
        # open deadline: a case's deadlines change only when the case does, simulated
        # time asks for the next one after every commit, and until it has passed a
        # timer finds nothing to do in the case.
        self._watched: dict[str, datetime] = {}
        # The case ids the scenario opens itself (`Agenda.opens_case`): a party's message
        # may not open one first. None where nothing is reserved (a load run).
        self.reserved: Callable[[str], bool] | None = None

    # -- building a batch ----------------------------------------------------

    def case(self, case_id: str) -> Case | None:
        return self.pending.cases.get(case_id, self.cases.get(case_id))

    def _known_id(self, message_id: str) -> bytes | None:
        return self.pending.ids.get(message_id, self.message_ids.get(message_id))

    def submit(self, payload: bytes, connection_party: str, at: datetime) -> Decision:
        """Decide what a raw payload on `connection_party`'s submit topic becomes."""
        try:
            decoded = decode_from_party(payload, self.max_payload)
        except WireError as exc:
            return self._reject(connection_party, at, str(exc), payload=payload)
        if not isinstance(decoded, Submission):
            return self._reject(
                connection_party,
                at,
                f"a {decoded.kind} does not belong on the submit topic",
                payload=payload,
            )
        return self.submission(decoded, connection_party, at, payload)

    def submission(
        self, submission: Submission, connection_party: str, at: datetime, payload: bytes = b""
    ) -> Decision:
        seq = submission.seq
        if submission.party != connection_party:
            return self._reject(
                connection_party,
                at,
                f"submission claims party {submission.party!r} but came from "
                f"{connection_party!r}'s connection",
                seq=seq,
                payload=payload,
            )
        try:
            message = message_from_json(submission.message)
        except ValidationError as exc:
            return self._reject(
                connection_party, at, f"message: {describe(exc)}", seq=seq, payload=payload
            )
        if problems := sending_problems(message):
            return self._reject(
                connection_party,
                at,
                "message: " + "; ".join(f"{field}: {why}" for field, why in problems),
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        if message.sender != connection_party:
            return self._reject(
                connection_party,
                at,
                f"message sender {message.sender!r} is not the connection's party "
                f"{connection_party!r}",
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        if in_umpire_namespace(message.message_id):
            return self._reject(
                connection_party,
                at,
                f"message id {message.message_id!r} is in the umpire's own namespace (ids "
                f"beginning {', '.join(repr(p) for p in UMPIRE_ID_PREFIXES)}): "
                "number the message otherwise",
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        owner, dot, _ = message.message_id.partition(".")
        if dot and owner != connection_party and owner in self.agreement.parties:
            # Another party numbers its own messages `owner.N` (`party.policy.message_id`,
            # the seats alike): taken first, its own message under the id would be
            # refused as a reuse, and it charged with a message it never got to send.
            return self._reject(
                connection_party,
                at,
                f"message id {message.message_id!r} is in {owner}'s namespace (the ids "
                f"{owner} numbers its own messages with): number the message "
                f"{connection_party}.N",
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        if (
            self.reserved is not None
            and self.case(message.case_id) is None
            and self.reserved(message.case_id)
        ):
            # The inject would find its case taken (and its sender charged with the
            # breach). Said as the console says it, no more: which case ids the
            # scenario will open is for the controller to know.
            return self._reject(
                connection_party,
                at,
                f"case id {message.case_id!r} is not free: open the case under another id",
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        dumped = message_json(message)
        digest = message_digest(message, dumped)
        # self._known_id(), inlined: this runs for every submission decided.
        known = self.pending.ids.get(message.message_id)
        if known is None:
            known = self.message_ids.get(message.message_id)
        if known is not None:
            if known == claim(connection_party, digest):
                return Decision(connection_party, None, duplicate_of=message.message_id)
            return self._reject(
                connection_party,
                at,
                f"message id {message.message_id!r} is already used by another message",
                seq=seq,
                message_id=message.message_id,
                payload=payload,
            )
        return self.record(message, at, party=connection_party, dumped=dumped, digest=digest)

    def record(
        self,
        message: Message,
        at: datetime,
        *,
        party: str,
        source: str | None = None,
        dumped: MessageJson | None = None,
        digest: str | None = None,
    ) -> Decision:
        """Fold a well-formed message into its case and stage its event.

        `dumped` and `digest`: `message_json` and `message_digest` of the
        message, where the caller has them already.
        """
        if source is not None and self._known_id(message.message_id) is not None:
            # The umpire's own message (an inject) under an id already in the log: only
            # a resumed agenda firing twice could do that. Appending it would collide
            # with the first; it is the same message, so it is not sent again.
            return Decision(party, None, duplicate_of=message.message_id)
        # self.case(), inlined: this runs for every message decided.
        pending = self.pending
        case_id = message.case_id
        current = pending.cases.get(case_id)
        if current is None:
            current = self.cases.get(case_id)
        case, found = apply(current, message, at, self.agreement)
        if case is not None:
            pending.cases[case_id] = case
        if dumped is None:
            dumped = message_json(message)
        pending.ids[message.message_id] = claim(party, digest or message_digest(message, dumped))
        event = record_message(
            message,
            found,
            exercise=self.exercise,
            at=at,
            wallclock=self.wallclock(),
            dumped=dumped,
        )
        if source is not None:
            event = event.model_copy(update={"source": source})
        pending.events.append(event)
        return Decision(party, event)

    def refuse(
        self, party: str, at: datetime, reason: str, payload: bytes, *, seq: int | None = None
    ) -> Decision:
        """Reject a payload the caller has already found wanting, for `reason`."""
        return self._reject(party, at, reason, seq=seq, payload=payload)

    def _reject(
        self,
        party: str,
        at: datetime,
        reason: str,
        *,
        seq: int | None = None,
        message_id: str | None = None,
        payload: bytes = b"",
    ) -> Decision:
        event_id = rejection_id(party, seq, payload)
        event = record_rejection(
            party,
            reason,
            seq=seq,
            message_id=message_id,
            payload=payload,
            event_id=event_id,
            exercise=self.exercise,
            at=at,
            wallclock=self.wallclock(),
        )
        self.pending.events.append(event)
        return Decision(party, event, Rejected(seq=seq, message_id=message_id, reason=reason))

    def stage(self, event: NewEvent) -> None:
        """Stage an event the umpire makes itself (exercise start, inject record, notes)."""
        self.pending.events.append(event)

    def elapse_due(self, at: datetime, event_id: Callable[[str], str]) -> list[NewEvent]:
        """Stage `coop.clock.elapsed` events for every case whose deadline passed by `at`."""
        staged = []
        # Only the cases a timer can change, in case order (the order of the ids given).
        watched = self._watched
        pending = self.pending.cases
        due = {case_id for case_id, soonest in watched.items() if soonest < at}
        for case_id in sorted(due.union(pending)):
            current = self.case(case_id)
            assert current is not None
            after, found = elapse(current, at, self.agreement)
            if not found:
                continue
            self.pending.cases[case_id] = after
            event = record_elapsed(
                case_id,
                found,
                parties=[
                    p
                    for p in (after.requesting, after.requested, after.offered_by, after.offered_to)
                    if p is not None
                ],
                event_id=event_id(case_id),
                exercise=self.exercise,
                at=at,
                wallclock=self.wallclock(),
            )
            self.pending.events.append(event)
            staged.append(event)
        return staged

    def take(self) -> Pending:
        """Hand over the staged batch for appending; the sequencer starts a new one.

        If the append fails the batch is simply dropped: nothing of it reached
        the sequencer's view, and the parties resend what was not committed.
        """
        batch, self.pending = self.pending, Pending()
        return batch

    def committed(self, batch: Pending) -> None:
        """The batch is in the log: its case states and ids become the sequencer's own."""
        self.cases.update(batch.cases)
        self.message_ids.update(batch.ids)
        self._watch(batch.cases.values())

    def _watch(self, cases: Iterable[Case]) -> None:
        for case in cases:
            # Every deadline runs from an oral request or from the start of execution
            # (`deadlines`), so a case with neither has none and is not asked: 4 in 10 of
            # the cases a load run's batches change, at a microsecond each
            # (tests/runtime/test_sequencer.py checks the premise over random folds).
            open_ = (
                self._open_deadlines(case)
                if case.oral_at is not None or case.execution_started_at is not None
                else ()
            )
            if open_:
                soonest = min(due.due_at for due in open_)
                self._watched[case.case_id] = soonest
            else:
                self._watched.pop(case.case_id, None)

    def _open_deadlines(self, case: Case) -> list[Deadline]:
        """The case's deadlines a timer may still act on (overdue results are said once)."""
        under = self.agreement.under(case.agreement)
        return [
            due
            for due in deadlines(case, under.settings, under.profile)
            if not (due.kind is DeadlineKind.RESULTS and case.results_overdue_reported)
        ]

    # -- timers ----------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        """When the next case deadline passes (plus the grace second), if any."""
        soonest = min(self._watched.values(), default=None)
        return None if soonest is None else soonest + timedelta(seconds=DEADLINE_GRACE_SECONDS)

    # -- recovery ----------------------------------------------------------------

    def load(self, events: Iterable[Event]) -> None:
        """Rebuild the sequencer's view from committed events (an umpire restarting)."""
        for event in events:
            message = fold_committed(self.cases, event, self.agreement)
            if message is not None:
                sender = message_payload(event)["sender"]
                self.message_ids[message.message_id] = claim(
                    sender, message_digest(message, message_json(message))
                )
        self._watch(self.cases.values())


def fold_committed(
    cases: dict[str, Case], event: Event | NewEvent, agreement: Agreement
) -> Message | None:
    """Fold one committed event into `cases` (what it did was decided when it was committed).

    Returns the event's message, if it carries one.
    """
    if is_message_event(event.type):
        message = read_message(event)
        case, _ = apply(cases.get(message.case_id), message, event.time, agreement)
        if case is not None:
            cases[message.case_id] = case
        return message
    if event.type == CLOCK_ELAPSED and event.subject in cases:
        cases[event.subject], _ = elapse(cases[event.subject], event.time, agreement)
    return None
