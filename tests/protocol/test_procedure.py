"""The procedure trainers read is the one the umpire applies: explored from the fold, not copied."""

from pathlib import Path

from simulator.protocol import CaseState
from simulator.protocol.procedure import (
    BEGIN_MARK,
    CONFIRMATION_LAPSES,
    END_MARK,
    Transition,
    allowed_table,
    mermaid,
    procedure_markdown,
    replace_generated,
    transitions,
)

DOC = Path(__file__).parents[2] / "docs" / "procedure.md"
S = CaseState


def test_docs_procedure_shows_the_state_machine_of_the_code() -> None:
    """docs/procedure.md's diagram and table are what the code generates today."""
    document = DOC.read_text(encoding="utf-8")
    assert procedure_markdown() in document, (
        "docs/procedure.md disagrees with the state machine: "
        "run `.venv/bin/simulator procedure --update docs/procedure.md` and read the diff"
    )


def test_replacing_the_generated_part_keeps_the_rest() -> None:
    """Only what is between the markers is rewritten."""
    stale = f"# Title\n\nProse.\n\n{BEGIN_MARK}\nold diagram\n{END_MARK}\n\n## More prose\n"
    fresh = replace_generated(stale)
    assert fresh.startswith("# Title\n\nProse.\n\n")
    assert fresh.endswith(f"{END_MARK}\n\n## More prose\n")
    assert "old diagram" not in fresh
    assert procedure_markdown() in fresh


def _steps(source: CaseState | None, message: str) -> set[tuple[str, CaseState, bool]]:
    return {
        (t.sender, t.target, t.resumes)
        for t in transitions()
        if t.source is source and t.message == message
    }


def test_the_table_follows_the_corrected_diagram() -> None:
    """The edges issue 14 is about, as the exploration finds them in the fold."""
    # Art. 4.2: an oral request is received; the 3 days run alongside, whatever the stage.
    assert _steps(None, "oral_request") == {("requesting", S.RECEIVED, False)}
    for state in (S.RECEIVED, S.IN_EXECUTION, S.AWAITING_DECISION):
        assert _steps(state, CONFIRMATION_LAPSES) == {("the clock", S.LAPSED, False)}
    assert _steps(S.COMPLETED, CONFIRMATION_LAPSES) == {("the clock", S.COMPLETED, False)}
    assert _steps(S.IN_EXECUTION, "results") == {("requested", S.COMPLETED, False)}
    # Art. 5.1: a partial refusal in execution too; a full one only before it.
    assert _steps(S.IN_EXECUTION, "refusal (partial)") == {("requested", S.IN_EXECUTION, False)}
    assert _steps(S.IN_EXECUTION, "refusal (full)") == set()
    assert _steps(S.UNDER_CONSIDERATION, "refusal (full)") == {("requested", S.REFUSED, False)}
    # Art. 6.2, 6.3: from receipt on, and back where it was.
    for state in (S.RECEIVED, S.UNDER_CONSIDERATION, S.IN_EXECUTION):
        assert _steps(state, "information_request") == {
            ("requested", S.AWAITING_INFORMATION, False)
        }
        assert _steps(state, "confidentiality_impossible") == {
            ("requested", S.AWAITING_DECISION, False)
        }
    back = {("requesting", s, True) for s in (S.RECEIVED, S.UNDER_CONSIDERATION, S.IN_EXECUTION)}
    assert _steps(S.AWAITING_INFORMATION, "additional_information") == back
    assert _steps(S.AWAITING_DECISION, "confidentiality_decision (go ahead)") == back
    assert _steps(S.AWAITING_DECISION, "acceptance") == set()
    assert _steps(S.AWAITING_DECISION, "results") == set()


def test_a_consultation_in_execution_returns_to_execution_whatever_the_answer() -> None:
    """Art. 5.2 "pending a decision to refuse", in part too: consulted in execution, the answer
    resumes it; consulted before, rejected conditions leave the request under consideration."""
    assert _steps(S.IN_EXECUTION, "consultation") == {("requested", S.IN_CONSULTATION, False)}
    assert _steps(S.IN_CONSULTATION, "conditions_rejected") == {
        ("requesting", S.UNDER_CONSIDERATION, False),
        ("requesting", S.IN_EXECUTION, True),
    }
    assert _steps(S.IN_CONSULTATION, "conditions_accepted") == {
        ("requesting", S.IN_EXECUTION, False),
        ("requesting", S.IN_EXECUTION, True),
    }
    table = allowed_table()
    assert (
        "|  | `conditions_rejected` | requesting | `under_consideration` / back to `in_execution` |"
        in table
    )


def test_every_state_is_reached_and_every_open_one_can_be_left() -> None:
    """No state of the fold is missing from the table; only closed ones have no way out."""
    steps = transitions()
    reached = {t.target for t in steps}
    assert reached == set(CaseState)
    leaving = {t.source for t in steps if t.source is not t.target}
    assert leaving - {None} == {s for s in CaseState if not s.terminal}


def test_the_diagram_draws_every_state_change_once() -> None:
    """Each state-changing step is an edge; withdrawal and the lapse come from any open request."""
    steps = transitions()
    diagram = mermaid(steps)
    assert diagram.startswith("stateDiagram-v2\n")
    assert "    open_request --> withdrawn : withdrawal\n" in diagram
    assert f"    open_request --> lapsed : {CONFIRMATION_LAPSES}\n" in diagram
    assert "    in_execution --> completed : results\n" in diagram
    assert "    received --> in_execution : acceptance, refusal (partial)\n" in diagram
    drawn = set()
    for line in diagram.splitlines():
        if " --> " in line and " : " in line:
            edge, labels = line.strip().split(" : ")
            source, target = edge.split(" --> ")
            drawn |= {(source, target, label) for label in labels.split(", ")}
    for t in steps:
        if t.source is not t.target:
            source = "[*]" if t.source is None else t.source.value
            assert {
                (source, t.target.value, t.message),
                ("open_request", t.target.value, t.message),
            } & drawn, t


def test_steps_are_sorted_and_stable() -> None:
    """Two explorations give the same table in the same order (the page must not churn)."""
    explore = transitions.__wrapped__
    assert explore() == explore() == transitions()
    assert transitions()[0] == Transition(None, "written_request", "requesting", S.RECEIVED)
