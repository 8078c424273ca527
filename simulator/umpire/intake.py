"""The umpire's intake: what arrives on the parties' submit topics, decoded once, until decided.

An intake takes each MQTT message from a principal's submit topic, decodes
it once and keeps the submissions (or the undecodable payload, with the
principal it came from) until a driver stages them with the sequencer. It
says who may submit at all, and remembers which sequence numbers each party
has used, so a resent submission is decided once. Nothing it takes is
dropped unsaid: a sequence number used again for another submission, and a
submission from a principal that is no party, are rejected with the reason
(the rejection is in the log, and the sender sees it if it may read).

`PartyIntake` is the exercise's: one submission per message, each party
speaking for itself. A load run hands the umpire its own (batches, gateways
that speak for several parties: `simulator.load.umpire.BatchIntake`); the
umpire and its drivers see only this interface.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from simulator.messaging.wire import Submission, WireError, decode_from_party
from simulator.protocol.ids import partition_of
from simulator.umpire.sequencer import Decision, Sequencer


def reused_reason(party: str, seq: int) -> str:
    return (
        f"sequence number {seq} of {party!r} was used already for another submission: "
        "a resend repeats it exactly, a new submission takes a new number"
    )


def stranger_reason(principal: str) -> str:
    return f"{principal!r} is no party of this exercise: it has no submissions to make"


def elsewhere(submission: Submission, partition: tuple[int, int]) -> str | None:
    """Why a submission is not partition `(number, count)`'s to decide: its case is another's."""
    number, count = partition
    case = submission.message.get("case_id")
    if type(case) is not str:
        return None  # no case to route by: the sequencer says what is wrong with it
    owner = partition_of(case, count)
    if owner == number:
        return None
    return (
        f"case {case[:80]!r} belongs to partition {owner} of {count}, not to {number}: "
        f"submit it on submit/{submission.party}/{owner}"
    )


def refuse_all(
    sequencer: Sequencer, at: datetime, refused: Sequence[tuple[str, bytes, str, int | None]]
) -> list[Decision]:
    """Rejections for what an intake found wanting itself: (principal, payload, reason, seq)."""
    return [
        sequencer.refuse(principal, at, reason, payload, seq=seq)
        for principal, payload, reason, seq in refused
    ]


class Intake(Protocol):
    def speaks(self, principal: str) -> bool:
        """Whether what `principal` submits or reports is taken at all."""
        ...

    def take(self, principal: str, payload: bytes) -> None:
        """One MQTT message from `principal`'s submit topic: decode it and keep it."""
        ...

    def refuse(self, principal: str, payload: bytes, reason: str) -> None:
        """Record `principal`'s MQTT message as rejected, for `reason`, when next staged."""
        ...

    def waiting(self) -> bool:
        """Whether anything taken is still to be decided."""
        ...

    def stage(self, at: datetime) -> list[Decision]:
        """Decide everything waiting, in the intake's order, at simulated time `at`."""
        ...

    def has(self, party: str, seq: int) -> bool:
        """Whether `party`'s submission `seq` has arrived (waiting or decided already)."""
        ...

    def decide(self, party: str, seq: int, at: datetime) -> Decision | None:
        """Decide `party`'s submission `seq` now, if it is waiting (a round's stated order)."""
        ...


# Numbers a party may take back before they reach the umpire, remembered at once (each
# a withdrawn case's plan, in a round report or a stated plan: a season has a handful).
MAX_UNRECEIVED = 10_000


@runtime_checkable
class Holding(Protocol):
    """An intake that can hold a submission sent ahead of its time until it is decided."""

    def hold(self, party: str, seq: int) -> None: ...

    def retract(self, party: str, seq: int) -> None: ...


@runtime_checkable
class Queued(Protocol):
    """An intake that says what waits, so a driver can decide each at its own time."""

    def queued(self) -> list[tuple[str, int, datetime | None]]:
        """The submissions waiting to be decided (not held): (party, seq, `Submission.due`)."""
        ...

    def stage_malformed(self, at: datetime) -> list[Decision]:
        """Decide what did not decode, or was refused, at `at`."""
        ...


class PartyIntake:
    """One submission per MQTT message, each from the party whose submit topic it came on."""

    def __init__(
        self,
        sequencer: Sequencer,
        parties: Iterable[str],
        *,
        partition: tuple[int, int] | None = None,
    ) -> None:
        self.sequencer = sequencer
        self.parties = frozenset(parties)
        # (this umpire's partition, how many there are), where the cases are split: a
        # submission whose case is another partition's is refused, naming that one.
        self.partition = partition
        # Decodable submissions waiting to be decided: party -> seq -> (submission, payload).
        self.inbox: dict[str, dict[int, tuple[Submission, bytes]]] = defaultdict(dict)
        # What did not decode, or came on another party's topic: decoded again, strictly,
        # by the sequencer, which records the rejection with its reason.
        self.malformed: list[tuple[str, bytes]] = []
        # Found wanting here: (principal, payload, reason, seq), rejected with the reason.
        self.refused: list[tuple[str, bytes, str, int | None]] = []
        # Party -> seq -> the submission decided under it (to tell a resend from a reuse).
        self.seen_seqs: dict[str, dict[int, Submission]] = defaultdict(dict)
        # Submissions sent ahead of their time, which only `decide` decides (rounds).
        self.held: set[tuple[str, int]] = set()
        # Submissions their party took back before they were decided (`retract`): what
        # was taken back under each number, once known (None: not received yet).
        self.retracted: dict[tuple[str, int], Submission | None] = {}
        # Per party, how many numbers it took back that never came (None above).
        self.unreceived: Counter[str] = Counter()

    def speaks(self, principal: str) -> bool:
        return principal in self.parties

    def take(self, principal: str, payload: bytes) -> None:
        if principal not in self.parties:
            self.refused.append((principal, payload, stranger_reason(principal), None))
            return
        try:
            decoded = decode_from_party(payload, self.sequencer.max_payload)
        except WireError:
            self.malformed.append((principal, payload))
            return
        if not isinstance(decoded, Submission) or decoded.party != principal:
            self.malformed.append((principal, payload))
            return
        if self.partition is not None and (wrong := elsewhere(decoded, self.partition)):
            self.refused.append((principal, payload, wrong, decoded.seq))
            return
        seq = decoded.seq
        if (principal, seq) in self.retracted:
            taken_back = self.retracted[(principal, seq)]
            if taken_back is None:
                # The submission itself, overtaken by the word taking it back.
                self.retracted[(principal, seq)] = decoded
                self.unreceived[principal] -= 1
            elif taken_back != decoded:
                self.refused.append((principal, payload, reused_reason(principal, seq), seq))
            return
        waiting = self.inbox[principal].get(seq)
        first = self.seen_seqs[principal].get(seq)
        if first is None and waiting is not None:
            first = waiting[0]
        if first is None:
            self.inbox[principal][seq] = (decoded, payload)
        elif first != decoded:
            self.refused.append((principal, payload, reused_reason(principal, seq), seq))

    def refuse(self, principal: str, payload: bytes, reason: str) -> None:
        self.refused.append((principal, payload, reason, None))

    def waiting(self) -> bool:
        return bool(self.malformed or self.refused) or any(self.inbox.values())

    def has(self, party: str, seq: int) -> bool:
        return seq in self.inbox.get(party, {}) or seq in self.seen_seqs[party]

    def hold(self, party: str, seq: int) -> None:
        """Keep `party`'s submission `seq` (sent ahead of its time) out of `stage`."""
        self.held.add((party, seq))

    def retract(self, party: str, seq: int) -> None:
        """`party` takes back its submission `seq`, not decided yet: it never will be.

        A simulated party does so when its case was withdrawn before the plan came
        due (in a round report, or in real time in its stated plan). What arrives
        under the number later (the submission itself, overtaken by the word taking
        it back, or a resend) is dropped: the party has said it does not stand.
        Another message under it is refused as a reuse of the number, as under any
        number used already (nothing a party sends vanishes without a trace); one
        decided already is taken back too late and stands.
        """
        if seq in self.seen_seqs[party]:
            return
        self.held.discard((party, seq))
        found = self.inbox[party].pop(seq, None)
        if found is not None:
            self.retracted[(party, seq)] = found[0]
        elif (party, seq) not in self.retracted and self.unreceived[party] < MAX_UNRECEIVED:
            # Remembered in case the submission itself is still on its way. Bounded: a
            # party naming numbers it never sent (its own, or a hostile client with its
            # credentials) must not grow the umpire without end; past the bound, what
            # comes under such a number is judged as it comes.
            self.retracted[(party, seq)] = None
            self.unreceived[party] += 1

    def queued(self) -> list[tuple[str, int, datetime | None]]:
        return [
            (party, seq, submission.due)
            for party, waiting in self.inbox.items()
            for seq, (submission, _) in waiting.items()
            if (party, seq) not in self.held
        ]

    def decide(self, party: str, seq: int, at: datetime) -> Decision | None:
        self.held.discard((party, seq))
        found = self.inbox[party].pop(seq, None)
        if found is None:
            return None
        # Marked at staging: a failed append ends the run, so nothing is lost by it.
        submission, payload = found
        self.seen_seqs[party][seq] = submission
        return self.sequencer.submission(submission, party, at, payload)

    def stage(self, at: datetime) -> list[Decision]:
        decisions = [
            decision
            for party in sorted(self.inbox)
            for seq in sorted(self.inbox[party])
            if (party, seq) not in self.held
            and (decision := self.decide(party, seq, at)) is not None
        ]
        return decisions + self.stage_malformed(at)

    def stage_malformed(self, at: datetime) -> list[Decision]:
        malformed, self.malformed = self.malformed, []
        refused, self.refused = self.refused, []
        return [
            self.sequencer.submit(payload, party, at) for party, payload in malformed
        ] + refuse_all(self.sequencer, at, refused)


__all__ = [
    "Holding",
    "Intake",
    "PartyIntake",
    "Queued",
    "elsewhere",
    "refuse_all",
    "reused_reason",
    "stranger_reason",
]
