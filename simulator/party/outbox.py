"""A party's outbox: each submission kept until the party sees it committed or rejected.

The broker may lose a submission (or the umpire's answer), and the umpire
appends idempotently, so a party resends what it has not seen settled. But
lateness is not loss: a busy umpire commits late, and stalls for seconds at a
time past capacity (a load run at 3,000 cases/s found its whole commit stream
stopped for 2 s or more in about one resend scan of five), and resending then
only adds to its work (a resend storm: 80k resends in a 15 s run that lost
nothing, every one for a party quiet for a backoff, none for one overtaken).
So a submission is resent on evidence that it was lost:

- overtaken: a later one of the same party in the same lane (the umpire, or
  partition, that decides it) was committed since, and the umpire takes one
  party's submissions in its lane in order. Resent soon, then backing off,
  since only its commit may have been lost on the way back (catch-up fills that);
- the connection it went out on dropped since (`Outbox.due`'s `epoch`), or its
  publish failed (`Outbox.suspect`);
- a silent party: nothing of the party's settled for a whole backoff (doubling
  while the silence lasts, up to a cap), as after losing its newest
  submissions, which nothing can overtake. Silence is also what a stalled
  umpire looks like, so it earns one *probe* per lane, not a resend of
  everything: the submission sent least often, the newest among those. If that
  one was lost, its commit overtakes the older ones lost with it; if the
  umpire was only slow, one duplicate was all it cost; the next probe takes the
  next submission.

One outbox per party, used by every kind of party: simulated agencies and
trainees' seats (`simulator.party.session`) and the parties of a load
generator (`simulator.load.generator`), which keeps thousands of them.
"""

from dataclasses import dataclass, field

from simulator.records import rejects


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
    # Who decides it (a load run's partition): the umpire takes a party's submissions in
    # order within a lane only, so only a later commit in the same lane overtakes it.
    lane: int = 0
    # The connection it last went out on (the sender's count of connections made), and
    # whether that publish failed: a connection made since, or a failure, is evidence.
    epoch: int = 0
    suspect: bool = False


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
    # Lane -> the highest seq seen committed there; when the party last saw one of its
    # own settled; and when it last probed a silence (one resend, `due`), how often since.
    committed_seq: dict[int, int] = field(default_factory=dict)
    progress_at: float = 0.0
    probed_at: float = 0.0
    probes: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: Outgoing) -> None:
        self.items[item.seq] = item
        self._seqs.setdefault(item.message_id, []).append(item.seq)

    @staticmethod
    def sent(item: Outgoing, now: float, epoch: int = 0) -> None:
        item.attempts += 1
        item.sent_at = now
        item.epoch = epoch
        item.suspect = False

    @staticmethod
    def suspect(item: Outgoing) -> None:
        """Its publish failed: maybe it never left (resent by the next `due`)."""
        item.suspect = True

    def _progress(self, now: float) -> None:
        self.progress_at = now
        self.probes = 0

    def committed(self, message_id: str, now: float) -> list[Outgoing]:
        """The party saw `message_id` committed: what that settles."""
        settled = [
            item
            for seq in self._seqs.pop(message_id, ())
            if (item := self.items.pop(seq, None)) is not None
        ]
        for item in settled:
            if item.seq > self.committed_seq.get(item.lane, 0):
                self.committed_seq[item.lane] = item.seq
        if settled:
            self._progress(now)
        return settled

    def rejected(self, seq: int, rejection: str, now: float) -> Outgoing | None:
        """The party saw the rejection `rejection` (an event id) under its `seq`: what it settles.

        Only the submission it is of: another payload sent under the same number
        (on the party's connection, by anyone holding it) is rejected too, and that
        must not settle the real one, which may not even have been decided yet.
        """
        item = self.items.get(seq)
        if item is None or not rejects(rejection, item.payload):
            return None
        self._forget(item)
        self._progress(now)
        return item

    def retract(self, seq: int) -> None:
        """The party took `seq` back (sent ahead of its time, in a case since withdrawn)."""
        item = self.items.get(seq)
        if item is not None:
            self._forget(item)

    def _forget(self, item: Outgoing) -> None:
        del self.items[item.seq]
        seqs = self._seqs.get(item.message_id, [])
        if item.seq in seqs:
            seqs.remove(item.seq)
        if not seqs:
            self._seqs.pop(item.message_id, None)

    def hold(self, seq: int) -> None:
        """The umpire has `seq`, sent ahead of its time, and holds it: waiting is not loss."""
        item = self.items.get(seq)
        if item is not None:
            item.held = True

    def due(self, now: float, epoch: int = 0) -> list[Outgoing]:
        """What to send again now, on evidence of loss (the caller sends it and marks it `sent`).

        `epoch` is the count of connections the sender has made so far: what went out
        on an earlier one may have been lost with it.
        """
        policy = self.policy
        due = []
        # Lane -> the silence probe's candidate: sent least often, newest among those.
        quiet: dict[int, Outgoing] = {}
        last_sent = 0.0
        for item in self.items.values():
            if item.attempts == 0 or item.held:
                continue  # not sent yet, or waiting for its time at the umpire
            last_sent = max(last_sent, item.sent_at)
            if item.suspect or item.epoch < epoch:
                due.append(item)
                continue
            if self.committed_seq.get(item.lane, 0) > item.seq:
                # Overtaken: lost on the way in, or only its commit lost on the way back
                # (then a resend changes nothing and catch-up must fill the gap). The first
                # resend goes soon; the next ones back off, or they crowd out the rest.
                since_sent = now - item.sent_at
                wait = policy.backoff(item.attempts)
                if since_sent >= (policy.after_s / 2 if item.attempts == 1 else wait):
                    due.append(item)
                continue
            best = quiet.get(item.lane)
            if best is None or (item.attempts, -item.seq) < (best.attempts, -best.seq):
                quiet[item.lane] = item
        if quiet:
            # Silent since the last thing it sent or settled (or probed): one probe a lane.
            since = max(self.progress_at, self.probed_at, last_sent)
            if now - since >= policy.backoff(self.probes + 1):
                self.probed_at = now
                self.probes += 1
                due.extend(quiet.values())
        return due


__all__ = ["Outbox", "Outgoing", "ResendPolicy"]
