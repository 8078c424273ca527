"""The MQTT topic scheme of an exercise, and the principals that use it.

    {root}/{exercise}/submit/{party}[/{n}]       party -> umpire: submissions
    {root}/{exercise}/report/{party}[/{n}]       party -> umpire: round reports, catch-up asks
    {root}/{exercise}/log/{sender}/{recipient}   umpire -> the two parties: committed events
    {root}/{exercise}/inbox/{party}              umpire -> one party: rejections, catch-up
    {root}/{exercise}/clock                      umpire -> everyone: clock, rounds, exercise events
    {root}/{exercise}/control                    controller -> umpire: pause, resume, speed, inject
    {root}/{exercise}/answers                    umpire -> controllers: each command's answer

Each party may publish only to its own submit and report topics and read
only its own inbox, the clock, and the committed events it is a party to;
the broker's ACL enforces that and the umpire checks the claimed sender
too. An exercise whose cases are split among partitioned umpires
(`simulator.eventlog.lease`) adds the partition `n` of the case to the
submit and report topics, so each submission reaches the one umpire that
owns its case; an exercise with one umpire uses the bare topics. Every name
that goes into a topic is validated first: a `+`, `#`, `/`,
NUL or leading `$` would change what a topic or an ACL pattern means.
"""

import re
from dataclasses import dataclass

from simulator.protocol import is_party_id
from simulator.protocol.ids import UMPIRE_ID_PREFIXES, in_umpire_namespace

DEFAULT_ROOT = "coop"
UMPIRE = "umpire"
OBSERVER = "observer"
CONTROLLER = "controller"
# Principals of the simulator itself; no party may take these names.
RESERVED_IDS = frozenset({UMPIRE, OBSERVER, CONTROLLER, "all", "system"})

MAX_PARTITIONS = 64

_SEGMENT = re.compile(r"[a-z0-9_-]{1,64}")
_ROOT = re.compile(r"[a-z0-9_-]{1,64}(/[a-z0-9_-]{1,64}){0,3}")


class TopicError(ValueError):
    """A name that cannot safely be part of a topic."""


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or _SEGMENT.fullmatch(value) is None:
        raise TopicError(f"{what} {value!r} must match [a-z0-9_-]{{1,64}} to be used in a topic")
    return value


def _party(value: str) -> str:
    if not is_party_id(value):
        raise TopicError(f"party id {value!r} must match [a-z0-9_-]{{1,64}}")
    return value


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one exercise."""

    exercise: str
    root: str = DEFAULT_ROOT
    # How many umpires the cases are split among (0: one umpire decides everything, on
    # the bare submit topics); what the brokers' ACLs let a party publish follows it.
    partitions: int = 0

    def __post_init__(self) -> None:
        if _ROOT.fullmatch(self.root) is None:
            raise TopicError(f"topic root {self.root!r} must be 1-4 segments of [a-z0-9_-]")
        _segment(self.exercise, "exercise id")
        if not isinstance(self.partitions, int) or not 0 <= self.partitions <= MAX_PARTITIONS:
            raise TopicError(f"partitions must be 0..{MAX_PARTITIONS}, not {self.partitions!r}")

    @property
    def base(self) -> str:
        return f"{self.root}/{self.exercise}"

    @property
    def tree(self) -> str:
        """The filter an observer subscribes to for the whole exercise."""
        return f"{self.base}/#"

    def submit(self, party: str, partition: int | None = None) -> str:
        return f"{self.base}/submit/{_party(party)}{_partition(partition)}"

    def report(self, party: str, partition: int | None = None) -> str:
        return f"{self.base}/report/{_party(party)}{_partition(partition)}"

    def inbox(self, party: str) -> str:
        return f"{self.base}/inbox/{_party(party)}"

    def log(self, sender: str, recipient: str) -> str:
        return f"{self.base}/log/{_segment(sender, 'sender')}/{_segment(recipient, 'recipient')}"

    @property
    def clock(self) -> str:
        return f"{self.base}/clock"

    @property
    def control(self) -> str:
        return f"{self.base}/control"

    @property
    def answers(self) -> str:
        return f"{self.base}/answers"

    # Filters the umpire subscribes to.
    @property
    def all_submissions(self) -> str:
        return f"{self.base}/submit/+"

    @property
    def all_reports(self) -> str:
        return f"{self.base}/report/+"

    def partition_filters(self, partition: int) -> tuple[str, ...]:
        """What the umpire owning `partition` subscribes to: its submissions and reports.

        Partition 0's takes the bare submit topics too, where no submission of a
        partitioned run belongs, so that one sent there is refused with its reason
        rather than lost unheard.
        """
        suffix = _partition(partition)
        own = (f"{self.base}/submit/+{suffix}", f"{self.base}/report/+{suffix}")
        return (*own, self.all_submissions) if partition == 0 else own

    def is_partitioned(self, topic: str) -> bool:
        """Whether a submit or report topic names a partition (`{kind}/{party}/{n}`)."""
        return topic.count("/") - self.base.count("/") == 3

    # Filters a party subscribes to.
    def party_filters(self, party: str) -> tuple[str, ...]:
        _party(party)
        return (
            f"{self.base}/log/{party}/+",
            f"{self.base}/log/+/{party}",
            self.inbox(party),
            self.clock,
        )

    def party_of(self, topic: str, kind: str) -> str | None:
        """The party named by a submit/report topic, or None if the topic is not one."""
        prefix = f"{self.base}/{kind}/"
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix) :]
        # A partitioned exercise's topics end in the partition: `{party}/{n}`.
        party, slash, number = rest.partition("/")
        if slash and not (number.isdigit() and number.isascii()):
            return None
        return party if is_party_id(party) else None


def _partition(partition: int | None) -> str:
    if partition is None:
        return ""
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        raise TopicError(f"partition {partition!r} must be a whole number from 0")
    return f"/{partition}"


def check_party_id(party: str) -> str:
    """A party id that is valid and not one of the simulator's own principals."""
    _party(party)
    if party in RESERVED_IDS:
        raise TopicError(f"party id {party!r} is reserved for the simulator")
    # A simulated party numbers its messages `<party>.<n>`: they must stay its own.
    if in_umpire_namespace(f"{party}."):
        raise TopicError(
            f"party id {party!r} would put its message ids in the umpire's namespace "
            f"(ids beginning {', '.join(repr(p) for p in UMPIRE_ID_PREFIXES)})"
        )
    return party
