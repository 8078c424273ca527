"""Hand-made messages as the umpire would commit them: a real Sequencer, positions, a hash chain."""

from datetime import UTC, datetime
from typing import Any

from simulator.eventlog import GENESIS_HASH, Event, NewEvent, committed_event
from simulator.eventlog.envelope import seal
from simulator.protocol import parse_message
from simulator.protocol.drafting import draft
from simulator.records import REJECTION, UMPIRE_SOURCE
from simulator.scenario import Scenario
from simulator.signing import Signatories
from simulator.umpire.sequencer import Sequencer

# The wall clock is no part of what these tests check; one fixed instant keeps events equal.
WALLCLOCK = datetime(2030, 1, 1, tzinfo=UTC)


class CommittedLog:
    """The log one umpire would write for a scenario, one batch per call."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.signatories = Signatories.training(scenario.exercise, scenario.parties)
        self.sequencer = Sequencer(
            scenario.protocol_agreement(self.signatories.verify),
            scenario.exercise,
            wallclock=lambda: WALLCLOCK,
        )
        self.events: list[Event] = []
        self._versions: dict[str, int] = {}

    def drafted(
        self,
        kind: str,
        *,
        message_id: str,
        case_id: str,
        sender: str,
        recipient: str,
        fields: dict[str, Any] | None = None,
        in_reply_to: str | None = None,
    ) -> dict[str, Any]:
        """A message as its sender's coordination unit drafts and signs it."""
        data = draft(
            kind,
            message_id=message_id,
            case_id=case_id,
            sender=self.scenario.party(sender),
            recipient=self.scenario.party(recipient),
            fields=fields or {},
            in_reply_to=in_reply_to,
        )
        return self.signatories.sign(data)

    def message(self, data: dict[str, Any], at: datetime, *, source: str | None = None) -> Event:
        """Commit one message (with its violations) at simulated time `at`."""
        message = parse_message(data)
        self.sequencer.record(message, at, party=message.sender, source=source)
        [event] = self.commit()
        return event

    def rejection(
        self, party: str, seq: int, at: datetime, reason: str, message_id: str | None = None
    ) -> Event:
        """Commit the umpire's refusal of `party`'s submission number `seq` (of `message_id`)."""
        self.sequencer.stage(
            NewEvent(
                id=f"rej-{party}-{seq}",
                source=UMPIRE_SOURCE,
                type=REJECTION,
                time=at,
                data={"party": party, "seq": seq, "message_id": message_id, "reason": reason},
                exercise=self.scenario.exercise,
                recipient=party,
                wallclock=WALLCLOCK,
            )
        )
        [event] = self.commit()
        return event

    def commit(self) -> list[Event]:
        """Append what the sequencer staged: each event gets its position, case version and hash."""
        return commit_staged(self.sequencer, self.events, self._versions)


def commit_staged(
    sequencer: Sequencer, events: list[Event], versions: dict[str, int]
) -> list[Event]:
    """Append to `events` what `sequencer` staged, as a store would: each event its position,
    its case version (`versions` keeps each case's last) and its place in the hash chain."""
    batch = sequencer.take()
    committed = []
    for proposal in batch.events:
        position = len(events) + 1
        prevhash = events[-1].hash if events else GENESIS_HASH
        caseversion = 0
        if proposal.subject is not None:
            caseversion = versions.get(proposal.subject, 0) + 1
            versions[proposal.subject] = caseversion
        digest, _ = seal(proposal, position, caseversion, prevhash)
        event = committed_event(proposal, position, caseversion, prevhash, digest)
        events.append(event)
        committed.append(event)
    sequencer.committed(batch)
    return committed
