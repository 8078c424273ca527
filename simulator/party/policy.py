"""A simulated agency's decisions: what it answers, when, and which mistakes it makes.

The engine sees the committed events a party may see, in position order,
and plans actions: a reply chosen by weight from the party's policy for
the message it received, its delay sampled from the scenario's
distribution, and the follow-ups (`then`) planned once the reply itself is
committed. Every random draw comes from the party's own seeded stream for
the case, in the case's event order, so a party that restarts and folds the
same events again makes the same plans with the same sequence numbers, and
knows which of them already reached the log. One stream per case: how cases
interleave (arrival order in real time, rounds in simulated time) changes no
case's draws, so a realtime run ends as its simulated twin does.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulator.eventlog import Event
from simulator.messaging.wire import Lookahead
from simulator.protocol import Party, SignatureStatus, parse_message
from simulator.protocol.drafting import REQUEST_CONTENT, REQUEST_TYPES, SIGNED_TYPES, draft
from simulator.records import (
    REJECTION,
    RejectionData,
    is_message_event,
    message_payload,
    read_rejection,
)
from simulator.scenario.model import SILENCE, FollowUp, Mistakes, Response, Scenario
from simulator.signing import Signatories


@dataclass(order=True)
class Plan:
    """An action a party will take: a message of `kind` in `case_id`, due at `due`."""

    due: datetime
    seq: int
    kind: str = field(compare=False)
    case_id: str = field(compare=False)
    recipient: str = field(compare=False)
    in_reply_to: str | None = field(compare=False)
    fields: dict[str, Any] = field(compare=False)
    # Chains of follow-ups to start when this plan's message is committed: its
    # own `then`, and the rest of the chain it is a step of.
    chains: tuple[tuple[FollowUp, ...], ...] = field(compare=False)
    submitted: bool = field(default=False, compare=False)
    done: bool = field(default=False, compare=False)


@dataclass
class CaseView:
    request: dict[str, Any] = field(default_factory=dict)
    oral_request_id: str | None = None
    third_party: str | None = None
    area: str | None = None  # from an offer, before any request
    # The two parties, from the request or offer that opened the case (when seen).
    parties: tuple[str, str] | None = None
    # Withdrawn, and the party heeded it: it plans nothing more in the case.
    closed: bool = False


# The answer to a request whose signature does not verify (Art. 4.2), sent at once.
_ASK_CONFIRMATION = FollowUp(
    reply="confirmation_request",
    fields={
        "doubt": (
            "The signature on the request does not verify with the signatory's key: "
            "please confirm that you sent it, and its content."
        )
    },
)


# What opens a case, and so names its two parties.
_OPENING = frozenset({"written_request", "oral_request", "offer"})


def _from_outside(case: CaseView, sender: str, recipient: str, kind: str) -> bool:
    """Whether a message in a case the party knows comes from (or goes to) outside it."""
    if case.parties is None:
        return False
    if sender not in case.parties:
        return True
    return recipient not in case.parties and kind != "results_transfer"


def message_id(party: str, seq: int, generation: int = 0) -> str:
    """`party.seq`, or `party.gN.seq` in a forked run (generation N), so never a collision.

    "." cannot appear in a party id, so these never collide with other ids either.
    """
    return f"{party}.{seq}" if generation == 0 else f"{party}.g{generation}.{seq}"


def follow_ups(scenario: Scenario, source: str) -> tuple[FollowUp, ...]:
    """The `then` of the inject or generator an event's source names."""
    kind, _, rest = source.partition("/")
    if kind == "inject":
        return next((i.then for i in scenario.injects if i.id == rest), ())
    if kind == "generator":
        generator_id = rest.partition("/")[0]
        return next((g.then for g in scenario.generators if g.id == generator_id), ())
    return ()


class PolicyEngine:
    def __init__(
        self,
        party: Party,
        scenario: Scenario,
        rng: random.Random,
        *,
        generation: int = 0,
        signatories: Signatories | None = None,
    ) -> None:
        self.party = party
        # Signs what this party sends and checks the signatures of what it receives.
        self.signatories = signatories or Signatories.training(scenario.exercise, scenario.parties)
        self.generation = generation
        self.scenario = scenario
        # The root of the per-case streams: one draw from the stream the runtime hands in.
        self._root = rng.getrandbits(64)
        self._streams: dict[str, random.Random] = {}
        self.parties = {p.id: p for p in scenario.parties}
        self.policy = scenario.policy_of(party.id)
        self.mistakes: Mistakes = self.policy.mistakes if self.policy else Mistakes()
        self.plans: dict[int, Plan] = {}
        self.next_seq = 1
        self.cases: dict[str, CaseView] = {}
        # Plans dropped when their case was withdrawn, not yet handed to the runtime.
        self.retracted: set[int] = set()
        self.position = 0
        self.working_language = scenario.agreement.working_language
        self._lookahead: Lookahead | None = None

    # -- folding events ------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Fold one event the party may see; events must come in position order."""
        if event.position <= self.position:
            return
        self.position = event.position
        if event.type == REJECTION:
            rejection = read_rejection(event)
            plan = self.plans.get(rejection.seq) if rejection.seq is not None else None
            if event.recipient == self.party.id and plan is not None and self._of(rejection, plan):
                plan.done = True
            return
        if not is_message_event(event.type):
            return
        message = message_payload(event)
        kind = message["type"]
        case = self.cases.setdefault(message["case_id"], CaseView())
        sender, recipient = message["sender"], message["recipient"]
        if case.parties is None and kind in _OPENING:
            case.parties = (sender, recipient)
        elif sender != self.party.id and _from_outside(case, sender, recipient, kind):
            # Someone else's word in a case that is not theirs (Art. 6.3, 7.1): it
            # changes nothing in the case (`protocol.outsider`), so a party takes it
            # no more into account than the umpire's fold does.
            return
        if kind == "offer":
            case.area = message.get("area")
        if kind in REQUEST_TYPES:
            case.request = {k: message[k] for k in REQUEST_CONTENT if k in message}
            if kind == "oral_request":
                case.oral_request_id = message["message_id"]
        if kind in ("transfer_consent_request", "transfer_consent"):
            case.third_party = message.get("third_party")
        ours = message["sender"] == self.party.id
        if not ours and message["recipient"] != self.party.id:
            return
        if case.closed:
            # Withdrawn: what still comes in the case (a trainee's message, a plan
            # already on its way) starts nothing; a plan of ours is settled by it.
            if ours:
                self._own_committed(event, message, follow=False)
            return
        if kind == "withdrawal":
            self._withdrawn(message["case_id"], case, event.time)
        if ours:
            self._own_committed(event, message)
        else:
            self._received(event, message)

    def _withdrawn(self, case_id: str, case: CaseView, at: datetime) -> None:
        """A withdrawal ends the case: drop what was planned in it, unless the party errs.

        Drawn for every withdrawal the party sends or receives, at 0 too, so a
        scenario that plants the mistake changes no other draw. What a dropped
        plan had sent ahead of its time the runtime takes back from the umpire
        (`retracted`); the withdrawal's own `then`, and a policy's answer to it,
        are planned after this, as the scenario wrote them. A plan due at the
        withdrawal's own instant crosses it and goes: whether the party saw the
        withdrawal first depends on how that instant was split into batches (a
        held submission is decided with the others due then; a fork may be cut
        between them), and a fork must go on as its parent went.
        """
        if self._chance(self.mistakes.miss_withdrawal, case_id):
            return
        case.closed = True
        for plan in self.plans.values():
            if plan.case_id == case_id and not plan.done and plan.due > at:
                plan.done = True
                self.retracted.add(plan.seq)

    def take_retracted(self) -> set[int]:
        """The plans dropped since last asked (their seqs): the runtime withdraws any it sent."""
        retracted, self.retracted = self.retracted, set()
        return retracted

    def _of(self, rejection: RejectionData, plan: Plan) -> bool:
        """Whether a rejection under a plan's number is of the plan's message.

        Anything sent on the party's connection under that number is rejected
        under it too (a fuzzer's payload, a hand-typed `mosquitto_pub`), and a
        plan's number is taken when it is planned, long before it is sent: taking
        such a rejection for the plan's dropped a message sent ahead of its time
        before the umpire decided it. So: a rejection naming the plan's message id,
        or any once the plan is sent (it is not sent again either way; its outbox
        slot is settled only by a rejection of its own bytes, `Outbox.rejected`).
        """
        if rejection.message_id is not None:
            return rejection.message_id == message_id(self.party.id, plan.seq, self.generation)
        return plan.submitted

    def _own_seq(self, own: str) -> int | None:
        prefix = message_id(self.party.id, 0, self.generation)[:-1]
        rest = own[len(prefix) :] if own.startswith(prefix) else ""
        return int(rest) if rest.isdigit() else None

    def _own_committed(self, event: Event, message: dict[str, Any], *, follow: bool = True) -> None:
        """Settle the plan of the party's own committed message and, if `follow`, start what
        follows it (not in a withdrawn case; an earlier generation's message settles its
        plan all the same, or a fork sends it again)."""
        chains: tuple[Sequence[FollowUp], ...] = ()
        seq = self._own_seq(message["message_id"])
        if seq is not None:
            plan = self.plans.get(seq)
            if plan is not None:
                plan.done = True
                chains = plan.chains
        elif message["message_id"].startswith(f"{self.party.id}."):
            # Sent in an earlier generation of a forked run: it answered its trigger,
            # so what today's policy planned for that trigger is settled; where it
            # planned the same kind of message, its follow-ups go on from this one.
            for plan in self.plans.values():
                if not plan.done and plan.in_reply_to == message.get("in_reply_to"):
                    plan.done = True
                    if plan.kind == message["type"] and plan.case_id == message["case_id"]:
                        chains = plan.chains
        else:
            chains = (follow_ups(self.scenario, event.source),)
        if not follow:
            return
        for chain in chains:
            # A `then` list is a chain: each step counts from the one before it.
            if chain:
                self._plan(
                    chain[0], event.time, message, recipient=message["recipient"], rest=chain[1:]
                )

    def _received(self, event: Event, message: dict[str, Any]) -> None:
        if self.policy is None:
            return
        if self._doubted(message):
            # Art. 4.2: doubt about authenticity is answered by asking, not by acting.
            self._plan(_ASK_CONFIRMATION, event.time, message, recipient=message["sender"])
            return
        options = self.policy.on.get(message["type"], ())
        if any(o.when is not None for o in options):
            # Only a policy that uses `when` filters, so every other one draws as before.
            options = self._applicable(options, message)
        if options and any(o.weight > 0 for o in options):
            choice = self._choose(options, message["case_id"])
            self._plan(choice, event.time, message, recipient=message["sender"])

    def _applicable(
        self, options: Sequence[Response], message: dict[str, Any]
    ) -> tuple[Response, ...]:
        """The responses whose `when` holds for the case; if none does, those without `when`."""
        case = self.cases.get(message["case_id"], CaseView())
        agreement = self.agreement_of(message)
        area = case.request.get("area") or case.area
        specific = tuple(
            o
            for o in options
            if o.when is not None
            and o.when.holds(agreement=agreement, area=area, case_id=message["case_id"])
        )
        return specific or tuple(o for o in options if o.when is None)

    def agreement_of(self, message: dict[str, Any]) -> str | None:
        """The id of the agreement the message's case is under, as policies name it."""
        named = self.cases.get(message["case_id"], CaseView()).request.get("agreement")
        if named is not None:
            return str(named)
        return self.scenario.agreement_between(message["sender"], message["recipient"])

    def _doubted(self, message: dict[str, Any]) -> bool:
        """Whether a received request's signature fails and this party asks rather than acts."""
        if message["type"] not in ("written_request", "written_confirmation"):
            return False
        try:
            status = self.signatories.verify(parse_message(message))
        except ValueError:
            return False
        if status is not SignatureStatus.INVALID:
            return False
        # Drawn only for a forged request, so that other runs keep their random streams.
        return not self._chance(self.mistakes.act_on_forged_request, message["case_id"])

    def _stream(self, case_id: str) -> random.Random:
        stream = self._streams.get(case_id)
        if stream is None:
            # Seeded with a string: stable across processes (hashed with SHA-512).
            stream = self._streams[case_id] = random.Random(f"{self._root}:{case_id}")
        return stream

    def _choose(self, options: Sequence[Response], case_id: str) -> Response:
        total = sum(o.weight for o in options)
        pick = self._stream(case_id).uniform(0, total)
        for option in options:
            pick -= option.weight
            if pick <= 0 and option.weight > 0:
                return option
        return next(o for o in reversed(options) if o.weight > 0)

    def _chance(self, probability: float, case_id: str) -> bool:
        # Drawn even at 0, so that enabling one mistake does not shift every other draw.
        return self._stream(case_id).random() < probability

    def _plan(
        self,
        step: FollowUp,
        at: datetime,
        trigger: dict[str, Any],
        *,
        recipient: str,
        rest: Sequence[FollowUp] = (),
    ) -> None:
        case_id = trigger["case_id"]
        delay = step.after.sample(self._stream(case_id))
        if self._chance(self.mistakes.late_reply, case_id):
            delay += self.mistakes.late_by
        forget = self._chance(self.mistakes.forget_written_confirmation, case_id)
        if step.reply == SILENCE or (step.reply == "written_confirmation" and forget):
            return
        case = self.cases.get(trigger["case_id"], CaseView())
        if step.reply == "results_transfer" and case.third_party:
            recipient = case.third_party
        seq = self.next_seq
        self.next_seq += 1
        self.plans[seq] = Plan(
            due=at + delay,
            seq=seq,
            kind=step.reply,
            case_id=trigger["case_id"],
            recipient=recipient,
            in_reply_to=trigger["message_id"],
            fields=self._fields(step, case, trigger),
            chains=(tuple(step.then), tuple(rest)),
        )

    def _fields(self, step: FollowUp, case: CaseView, trigger: dict[str, Any]) -> dict[str, Any]:
        kind = step.reply
        fields: dict[str, Any] = {}
        if kind in REQUEST_TYPES:
            fields.update(case.request)
        if kind == "written_confirmation":
            fields["confirms"] = case.oral_request_id or trigger["message_id"]
        if kind == "transfer_consent" and case.third_party:
            fields["third_party"] = case.third_party
        fields.update(step.fields)
        case_id = trigger["case_id"]
        if kind == "refusal" and self._chance(self.mistakes.refuse_without_reasons, case_id):
            fields["reasons"] = ""
        unsigned_kind = kind in SIGNED_TYPES and kind != "additional_confirmation"
        if unsigned_kind and self._chance(self.mistakes.unsigned_request, case_id):
            fields["signature"] = None
        if self._chance(self.mistakes.wrong_language, case_id):
            fields["language"] = "en" if self.working_language != "en" else "fr"
        return fields

    # -- what to send ----------------------------------------------------------------

    def due(self, now: datetime) -> list[Plan]:
        """Planned actions due by `now` that were never submitted, in (due, seq) order."""
        return sorted(
            p for p in self.plans.values() if not p.done and not p.submitted and p.due <= now
        )

    def settled(self, now: datetime) -> list[Plan]:
        """Planned actions due after `now` whose message is settled already, in (due, seq) order.

        A plan's message depends only on the plan itself, except a request's,
        which takes the case's request as the party knows it when the plan comes
        due: those are not settled until then. A plan is dropped only when its
        case is withdrawn (`take_retracted`), and the party is asked at once
        after a withdrawal (`lookahead`), before anything it sent ahead is due.
        """
        return sorted(
            p
            for p in self.plans.values()
            if not p.done and not p.submitted and p.due > now and p.kind not in REQUEST_TYPES
        )

    def lookahead(self) -> Lookahead:
        """How soon, at the soonest, this party acts on an event it is yet to see.

        Its promise to the umpire of a simulated run (`RoundDone.lookahead`):
        what falls due sooner than that after such an event is committed
        without asking the party first. Every plan is its trigger's time plus a
        step's sampled delay (a late reply only adds to it). A message of its
        own of a type starts the steps that follow that type in the scenario's
        `then` chains (an inject's or a generator's own chain after its
        message); a message to it starts a response its policy has for that
        type. A withdrawal it sends or receives drops its plans in the case due
        after it, at once (unless it misses withdrawals for sure). Nothing else
        it sees makes it act. An answer to a forged request
        goes at once, so in a scenario that forges any, a party that doubts
        promises nothing about the requests it receives.
        """
        if self._lookahead is None:
            own: dict[str, timedelta] = {}

            def then(kind: str, step: FollowUp) -> None:
                if step.reply != SILENCE:
                    own[kind] = min(own.get(kind, step.after.least), step.after.least)

            def walk(chain: Sequence[FollowUp]) -> None:
                for n, step in enumerate(chain):
                    if step.reply == SILENCE:
                        continue
                    for follows in (step.then[:1], chain[n + 1 : n + 2]):
                        for next_step in follows:
                            then(step.reply, next_step)
                    walk(step.then)

            starts: list[tuple[str, Sequence[FollowUp]]] = [
                (i.send.type, i.then) for i in self.scenario.injects
            ]
            starts += [(g.send.type, g.then) for g in self.scenario.generators]
            received: dict[str, timedelta] = {}
            if self.policy is not None:
                for kind, options in self.policy.on.items():
                    sending = [o for o in options if o.reply != SILENCE]
                    if sending:
                        received[kind] = min(o.after.least for o in sending)
                    starts += [(o.reply, o.then) for o in sending]
                forged = any(i.tamper is not None for i in self.scenario.injects)
                if forged and self.mistakes.act_on_forged_request < 1:
                    for kind in ("written_request", "written_confirmation"):
                        received[kind] = _ASK_CONFIRMATION.after.least
                starts.append((_ASK_CONFIRMATION.reply, _ASK_CONFIRMATION.then))
            for kind, chain in starts:
                for first in chain[:1]:
                    then(kind, first)
                walk(chain)
            if self.mistakes.miss_withdrawal < 1:
                # A withdrawal drops the party's plans in its case at once: what it sent
                # ahead must be taken back before it is due.
                own["withdrawal"] = received["withdrawal"] = timedelta(0)
            self._lookahead = Lookahead(own=own, received=received)
        return self._lookahead

    def next_due(self) -> datetime | None:
        waiting = [p.due for p in self.plans.values() if not p.done and not p.submitted]
        return min(waiting) if waiting else None

    def message(self, plan: Plan) -> dict[str, Any]:
        """The protocol message a plan becomes (validated by the umpire, not here)."""
        recipient = self.parties.get(plan.recipient)
        if recipient is None:
            raise ValueError(f"{self.party.id}: planned a message to unknown {plan.recipient!r}")
        base = (
            self.cases.get(plan.case_id, CaseView()).request if plan.kind in REQUEST_TYPES else {}
        )
        drafted = draft(
            plan.kind,
            message_id=message_id(self.party.id, plan.seq, self.generation),
            case_id=plan.case_id,
            sender=self.party,
            recipient=recipient,
            fields=plan.fields,
            in_reply_to=plan.in_reply_to,
            base=base,
        )
        return self.signatories.sign(drafted)
