"""A party's outbox: each submission kept until the party sees it committed or rejected.

The broker may lose a submission (or the umpire's answer), and the umpire
appends idempotently, so a party resends what it has not seen settled. But
lateness is not loss: a busy umpire commits late, and resending then only adds
to its work (a resend storm). So a submission is resent only on evidence that
it was lost: a later one of the same party was committed since (the umpire
takes one party's submissions in order: resent soon, then backing off, since
only its commit may have been lost on the way back, which catch-up fills), or
nothing of the party's was committed for a whole backoff (doubling per
attempt, up to a cap), as after a broker restart.

One outbox per party, used by every kind of party: simulated agencies and
trainees' seats (`simulator.party.session`) and the parties of a load
generator (`simulator.load.generator`), which keeps thousands of them.
"""

from dataclasses import dataclass, field


@dataclass(slots=True)
class Outgoing:
    seq: int
    message_id: str
    kind: str
    case_id: str
    payload: bytes
    sent_at: float = 0.0
    # 0: queued, not sent yet (a load generator sends in batches).
    attempts: int = 0
    # Sent ahead of its time and known to be held by the umpire until then: not lost.
    held: bool = False


@dataclass(frozen=True, slots=True)
class ResendPolicy:
    after_s: float = 1.0
    max_s: float = 8.0

    def backoff(self, attempts: int) -> float:
        return min(self.after_s * float(2 ** max(attempts - 1, 0)), self.max_s)


@dataclass(slots=True)
class Outbox:
    policy: ResendPolicy = field(default_factory=ResendPolicy)
    items: dict[int, Outgoing] = field(default_factory=dict)
    # Message id -> the seqs it went under (a message may be submitted again under a new seq).
    _seqs: dict[str, list[int]] = field(default_factory=dict)
    # The highest seq seen committed, and when the party last saw one of its own settled.
    committed_seq: int = 0
    progress_at: float = 0.0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Outgoing) -> None:
        self.items[item.seq] = item
        self._seqs.setdefault(item.message_id, []).append(item.seq)

    @staticmethod
    def sent(item: Outgoing, now: float) -> None:
        item.attempts += 1
        item.sent_at = now

    def committed(self, message_id: str, now: float) -> list[Outgoing]:
        """The party saw `message_id` committed: what that settles."""
        settled = [
            item
            for seq in self._seqs.pop(message_id, ())
            if (item := self.items.pop(seq, None)) is not None
        ]
        if settled:
            self.committed_seq = max(self.committed_seq, *(item.seq for item in settled))
            self.progress_at = now
        return settled

    def rejected(self, seq: int, now: float) -> Outgoing | None:
        """The party saw its submission `seq` rejected: what that settles."""
        item = self.items.pop(seq, None)
        if item is not None:
            seqs = self._seqs.get(item.message_id, [])
            if seq in seqs:
                seqs.remove(seq)
            if not seqs:
                self._seqs.pop(item.message_id, None)
            self.progress_at = now
        return item

    def hold(self, seq: int) -> None:
        """The umpire has `seq`, sent ahead of its time, and holds it: waiting is not loss."""
        item = self.items.get(seq)
        if item is not None:
            item.held = True

    def due(self, now: float) -> list[Outgoing]:
        """What to send again now (the caller sends it and marks it `sent`)."""
        policy = self.policy
        due = []
        for item in self.items.values():
            if item.attempts == 0 or item.held:
                continue  # not sent yet, or waiting for its time at the umpire
            since_sent = now - item.sent_at
            wait = policy.backoff(item.attempts)
            if self.committed_seq > item.seq:
                # Overtaken: lost on the way in, or only its commit lost on the way back
                # (then a resend changes nothing and catch-up must fill the gap). The first
                # resend goes soon; the next ones back off, or they crowd out the rest.
                if since_sent >= (policy.after_s / 2 if item.attempts == 1 else wait):
                    due.append(item)
            elif now - max(self.progress_at, item.sent_at) >= wait:
                due.append(item)
        return due


__all__ = ["Outbox", "Outgoing", "ResendPolicy"]
