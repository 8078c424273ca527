"""The load paths are real conversations: each one is valid, step by step, through the sequencer."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.load.conversation import PATHS, Conversation, Mix, load_mix, load_party
from simulator.messaging.wire import Submission, encode
from simulator.protocol import Agreement, CaseState
from simulator.umpire.sequencer import Sequencer

AT = datetime(2026, 1, 1, tzinfo=UTC)
TERMINAL = {
    "accepted": CaseState.COMPLETED,
    "consultation": CaseState.COMPLETED,
    "refusal_full": CaseState.REFUSED,
    "refusal_partial": CaseState.COMPLETED,
    "information": CaseState.COMPLETED,
    "oral": CaseState.COMPLETED,
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_path_ends_where_it_should_without_a_violation(path: str) -> None:
    """Each path's messages are accepted in turn, break no rule, and end the case as named."""
    a, b = load_party("p000"), load_party("p001")
    sequencer = Sequencer(Agreement.of([a, b]), "ex", wallclock=lambda: AT)
    conversation = Conversation(f"c-{path.replace('_', '-')}", path, a, b, padding="x" * 50)
    for step in range(conversation.steps):
        sender = conversation.sender(step).id
        payload = encode(Submission(party=sender, seq=step + 1, message=conversation.message(step)))
        decision = sequencer.submit(payload, sender, AT)
        assert decision.notice is None
        assert decision.event is not None
        assert decision.event.data["violations"] == []
        sequencer.committed(sequencer.take())
    case = sequencer.cases[conversation.case_id]
    assert case.state is TERMINAL[path]


def test_a_mix_file_gives_only_the_paths_it_names(tmp_path: Path) -> None:
    """Paths left out of a mix file get no share; the shares are normalised."""
    mix_file = tmp_path / "mix.yaml"
    mix_file.write_text("accepted: 3\noral: 1\n", encoding="utf-8")
    shares = load_mix(mix_file).shares()
    assert shares["accepted"] == 0.75
    assert shares["oral"] == 0.25
    assert shares["information"] == 0.0
    assert Mix().messages_per_case() > 3


@pytest.mark.parametrize(
    ("text", "named"),
    [("accepted: -1\n", "accepted"), ("teleport: 1\n", "teleport"), ("- 1\n", "mapping")],
)
def test_a_bad_mix_file_is_refused_naming_the_file_and_key(
    tmp_path: Path, text: str, named: str
) -> None:
    """A negative share, an unknown path or a list is refused with the file and what is wrong."""
    mix_file = tmp_path / "mix.yaml"
    mix_file.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=named) as caught:
        load_mix(mix_file)
    assert str(mix_file) in str(caught.value)
