"""Agreement profiles of a scenario's own: by path or inline, recorded whole in the log."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from simulator.cli import app
from simulator.protocol import load_profile
from simulator.records import agreement_payload, read_agreement
from simulator.scenario import InvalidScenarioError, load_scenario, parse_scenario
from tests.scenario.samples import BASE, problem_at

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios"
CONVENTION = SHIPPED / "profiles" / "tri-river-convention.yaml"


def own_profile(profile_id: str = "my-treaty") -> dict[str, object]:
    """The convention's profile under another id: a profile of the scenario's own."""
    data = yaml.safe_load(CONVENTION.read_text(encoding="utf-8"))
    data["id"] = profile_id
    return dict(data)


def with_profile(tmp_path: Path, entry: str, profile: str = "my-treaty") -> Path:
    text = BASE.replace(
        "parties:\n",
        f"profiles: [{entry}]\nagreements:\n"
        f"  - {{id: ab, profile: {profile}, parties: [alpha, beta]}}\nparties:\n",
        1,
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_by_path_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    """`profiles: [treaties/x.yaml]` is found next to the scenario and binds its agreements."""
    (tmp_path / "treaties").mkdir()
    (tmp_path / "treaties" / "x.yaml").write_text(yaml.safe_dump(own_profile()), "utf-8")
    scenario = load_scenario(with_profile(tmp_path, "treaties/x.yaml"))
    binding = scenario.protocol_agreement().bindings[0]
    assert (binding.profile.id, binding.profile.kind) == ("my-treaty", "multilateral")
    # What the scenario leaves out is the profile's: its first language, its deadlines.
    assert binding.settings.working_language == "en"
    assert binding.settings.promptly.total_seconds() == 12 * 3600


def test_a_profile_may_be_written_inline() -> None:
    """A mapping in `profiles` is the profile itself."""
    text = BASE.replace(
        "parties:\n",
        f"profiles:\n  - {yaml.safe_dump(own_profile(), default_flow_style=True, width=10**6)}"
        "agreement: {profile: my-treaty}\nparties:\n",
        1,
    )
    assert parse_scenario(text, "s.yaml").protocol_agreement().profile.id == "my-treaty"


def test_a_broken_profile_file_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    """A profile file that does not validate is reported as itself: file, line, field."""
    data = own_profile()
    data["languages"] = []
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(with_profile(tmp_path, "x.yaml"))
    error = caught.value
    assert Path(error.path).name == "x.yaml"
    by_path = {p.path: p for p in error.problems}
    assert "languages" in by_path
    assert by_path["languages"].line is not None
    # A rule the profile does not cite is named too.
    whole = own_profile()
    whole["rules"] = {k: v for k, v in whole["rules"].items() if k != "results-overdue"}  # type: ignore[attr-defined]
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(whole, sort_keys=False), "utf-8")
    with pytest.raises(InvalidScenarioError, match="missing \\['results-overdue'\\]"):
        load_scenario(with_profile(tmp_path, "x.yaml"))


def test_a_missing_profile_file_or_a_path_that_is_no_profile_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidScenarioError, match="no such file") as caught:
        load_scenario(with_profile(tmp_path, "nowhere.yaml"))
    assert Path(caught.value.path).name == "nowhere.yaml"
    with pytest.raises(InvalidScenarioError, match=r"'notes.txt' is not the path of a profile"):
        load_scenario(with_profile(tmp_path, "notes.txt"))


def test_an_own_profile_may_not_take_a_shipped_id_and_names_are_checked() -> None:
    """A shipped id is refused for an own profile; an unknown name lists the own ones too."""
    inline = yaml.safe_dump(own_profile("customs-maa"), default_flow_style=True, width=10**6)
    text = BASE.replace("parties:\n", f"profiles:\n  - {inline}parties:\n", 1)
    assert "shipped agreement profile" in problem_at(text, "profiles[0].id").message
    own = yaml.safe_dump(own_profile(), default_flow_style=True, width=10**6)
    unknown = BASE.replace(
        "parties:\n", f"profiles:\n  - {own}agreement: {{profile: my-trety}}\nparties:\n", 1
    )
    assert "my-treaty" in problem_at(unknown, "agreement.profile").message


def test_a_profile_file_under_a_shipped_id_is_refused_by_itself(tmp_path: Path) -> None:
    """`simulator agreements FILE` refuses a profile file whose id is a shipped one's, at its line,
    as a scenario naming the file is refused. Before: the check passed (exit 0) and only the
    scenario that used the profile was refused."""
    text = CONVENTION.read_text(encoding="utf-8").replace(
        "id: tri-river-convention", "id: customs-maa"
    )
    (tmp_path / "x.yaml").write_text(text, "utf-8")
    line = text.splitlines().index("id: customs-maa") + 1
    checked = CliRunner().invoke(app, ["agreements", str(tmp_path / "x.yaml")])
    assert checked.exit_code == 1
    assert f"x.yaml:{line}: id: 'customs-maa' is a shipped agreement profile" in " ".join(
        checked.output.split()
    )
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(with_profile(tmp_path, "x.yaml", profile="customs-maa"))
    assert Path(caught.value.path).name == "x.yaml"
    assert caught.value.line == line


def test_the_log_holds_the_profile_so_a_replay_needs_no_file() -> None:
    """The exercise-started record carries an own profile whole; reading it back needs no file."""
    scenario = load_scenario(SHIPPED / "tri-river.yaml")
    agreement = scenario.protocol_agreement()
    payload = agreement_payload(agreement)
    assert payload["profiles"]["tri-river-convention"]["signatories"] == ["head"]

    started = SimpleNamespace(data={"agreement": payload})
    again = read_agreement(started)  # type: ignore[arg-type]
    assert again.bindings[0].profile == agreement.bindings[0].profile
    # The default profile is not recorded: its logs stay as they were.
    assert "profiles" not in agreement_payload(
        load_scenario(SHIPPED / "example.yaml").protocol_agreement()
    )
    assert load_profile("default").id == "default"


@pytest.mark.parametrize(
    ("deadline", "value", "why"),
    [
        # The window a case is held to would run past any date: the umpire overflowed.
        ("written_confirmation", "P999999999D", "at most 36525 days"),
        ("as_soon_as_possible", "P99999999D", "at most 36525 days"),
        ("promptly", "PT0.5S", "whole seconds"),
        ("written_confirmation", "PT0.000001S", "whole seconds"),
        # A bare number's unit would be a guess (pydantic takes it as seconds).
        ("promptly", "5", "no unit"),
    ],
)
def test_a_profile_deadline_no_exercise_could_keep_is_refused_in_the_profile_file(
    tmp_path: Path, deadline: str, value: str, why: str
) -> None:
    """An own profile's deadline of a fraction of a second, over 100 years or without a unit is
    refused at its own line in the profile file, by `simulator agreements` too."""
    text = CONVENTION.read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith(f"  {deadline}:")]
    (tmp_path / "x.yaml").write_text(text.replace(line, f"  {deadline}: {value}"), "utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(with_profile(tmp_path, "x.yaml", profile="tri-river-convention"))
    (problem,) = caught.value.problems
    assert Path(caught.value.path).name == "x.yaml"
    assert problem.path == f"deadlines.{deadline}"
    assert problem.line == text.splitlines().index(line) + 1
    assert why in problem.message
    checked = CliRunner().invoke(app, ["agreements", str(tmp_path / "x.yaml")])
    assert checked.exit_code == 1
    assert f"x.yaml:{problem.line}: deadlines.{deadline}" in checked.output


def test_refusal_grounds_that_are_one_id_in_the_log_are_refused_in_the_profile_file(
    tmp_path: Path,
) -> None:
    """Two ground ids that differ only in their Unicode spelling are one in the log (its text
    is NFC): the run failed with a traceback recording the profile. Refused at the file."""
    text = CONVENTION.read_text(encoding="utf-8").replace(
        "  sovereignty: likely",
        '  "re\\u0301serve": one\n  "r\\u00e9serve": two\n  sovereignty: likely',
    )
    (tmp_path / "x.yaml").write_text(text, "utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(with_profile(tmp_path, "x.yaml", profile="tri-river-convention"))
    (problem,) = caught.value.problems
    assert Path(caught.value.path).name == "x.yaml"
    assert problem.path == "refusal_grounds"
    assert "'réserve' is given twice, in two Unicode spellings" in problem.message


def test_an_empty_profile_file_is_said_to_be_an_empty_profile(tmp_path: Path) -> None:
    """An empty profile file is named as one: it said a scenario needs a version."""
    (tmp_path / "x.yaml").write_text("# nothing yet\n", "utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(with_profile(tmp_path, "x.yaml"))
    assert str(caught.value).endswith("x.yaml: is empty: a profile needs at least id, title, ...")
