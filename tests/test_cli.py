"""The `simulator` command line, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from simulator.cli import app
from simulator.protocol import RULES
from simulator.protocol.procedure import BEGIN_MARK, END_MARK, procedure_markdown

# PROTOCOL.md's rule table, row by row, with the article each row cites and the
# rule ids that implement it. Transcribed here so the test stands on its own.
PROTOCOL_TABLE = [
    ("a written request lacks a required element", "4.3", ["request-incomplete"]),
    ("not signed by the head or a deputy, or not sealed", "4.4", ["request-not-signed-or-sealed"]),
    ("an oral request is used in a case not marked urgent", "4.2", ["oral-request-not-urgent"]),
    (
        "an oral request is not confirmed in writing within 3 days",
        "4.2",
        ["oral-request-not-confirmed"],
    ),
    (
        "a signature does not verify ... without additional confirmation",
        "4.2, 4.4",
        ["forged-request-acted-on"],
    ),
    ("a refusal is not in writing", "5.3", ["refusal-not-in-writing"]),
    ("a refusal gives no reasons", "5.3", ["refusal-without-reasons"]),
    ("a refusal cites a ground outside Art. 5.1", "5.1", ["refusal-ground-outside-5-1"]),
    (
        "a refusal came without any consultation on conditions first",
        "5.2",
        ["refusal-without-consultation"],
    ),
    (
        "assistance went on although the requesting party rejected the conditions",
        "5.2",
        ["assistance-despite-rejected-conditions"],
    ),
    ("an impediment was notified later than promptly", "6.1", ["impediment-not-prompt"]),
    (
        "execution went on without disclosure consent",
        "6.3",
        ["execution-without-disclosure-consent"],
    ),
    (
        "an accepted case has no notice of results by as soon as possible",
        "6.4",
        ["results-overdue"],
    ),
    ("results given to a third party without prior consent", "7.3", ["transfer-without-consent"]),
    (
        "a message the case's state does not allow",
        "—",
        ["not-allowed-in-state", "case-closed", "wrong-party"],
    ),
    ("a reply to an unknown case", "—", ["unknown-case"]),
    ("a message is not in the exercise's working language", "9", ["not-working-language"]),
]


def test_rules_json_covers_every_row_of_the_protocol_table() -> None:
    """`simulator rules --format json` lists a rule with the right article for every table row."""
    result = CliRunner().invoke(app, ["rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    by_id = {r["id"]: r for r in records}
    for row, article, rule_ids in PROTOCOL_TABLE:
        for rule_id in rule_ids:
            assert rule_id in by_id, f"no rule for: {row}"
            assert by_id[rule_id]["article"] == article, row
    for record in records:
        assert set(record) >= {"id", "article", "severity", "summary"}
        assert record["severity"] in {"error", "warning", "info"}
        assert record["summary"].endswith(".")
    assert len(records) == len(RULES)
    assert len({r["id"] for r in records}) == len(records)


def test_severities_match_the_protocol_table() -> None:
    """Warnings and infos are exactly where PROTOCOL.md puts them."""
    by_id = {r.id: r.severity.value for r in RULES}
    assert by_id["refusal-without-consultation"] == "warning"
    assert by_id["impediment-not-prompt"] == "warning"
    assert by_id["results-overdue"] == "warning"
    assert by_id["not-working-language"] == "info"
    others = set(by_id) - {
        "refusal-without-consultation",
        "impediment-not-prompt",
        "results-overdue",
        "not-working-language",
    }
    assert {by_id[i] for i in others} == {"error"}


def test_rules_table_shows_every_rule() -> None:
    """The default table names each rule id and its article."""
    result = CliRunner().invoke(app, ["rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for rule in RULES:
        assert rule.id in result.stdout


def test_rules_markdown_and_severity_filter() -> None:
    """Markdown output can be filtered by severity; a bad severity is a usage error."""
    result = CliRunner().invoke(app, ["rules", "-f", "markdown", "--severity", "warning"])
    assert result.exit_code == 0
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 3
    bad = CliRunner().invoke(app, ["rules", "--severity", "fatal"])
    assert bad.exit_code == 2
    assert "fatal" in bad.output


def test_procedure_prints_and_updates_the_generated_page(tmp_path: Path) -> None:
    """`procedure` prints the diagram and table; `--update` rewrites them between the markers."""
    printed = CliRunner().invoke(app, ["procedure"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == procedure_markdown()
    diagram = CliRunner().invoke(app, ["procedure", "--mermaid"])
    assert diagram.stdout.startswith("stateDiagram-v2\n")
    page = tmp_path / "procedure.md"
    page.write_text(f"# Kept\n{BEGIN_MARK}\nstale\n{END_MARK}\nKept too.\n", encoding="utf-8")
    updated = CliRunner().invoke(app, ["procedure", "--update", str(page)])
    assert updated.exit_code == 0, updated.output
    assert page.read_text(encoding="utf-8") == f"# Kept\n{procedure_markdown()}Kept too.\n"
    page.write_text("no markers\n", encoding="utf-8")
    unmarked = CliRunner().invoke(app, ["procedure", "--update", str(page)])
    assert unmarked.exit_code == 2
    assert "markers" in unmarked.stderr


def test_module_and_console_script_both_work() -> None:
    """`python -m simulator` and the installed `simulator` script print the same rule book."""
    by_module = subprocess.run(
        [sys.executable, "-m", "simulator", "rules", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    script = Path(sys.executable).parent / "simulator"
    by_script = subprocess.run(
        [str(script), "rules", "--format", "json"], capture_output=True, text=True, check=True
    )
    assert json.loads(by_module.stdout) == json.loads(by_script.stdout)
    assert len(json.loads(by_module.stdout)) == len(RULES)


def test_rules_for_the_default_agreement_are_the_rule_book() -> None:
    """`simulator rules --agreement default` prints what `simulator rules` prints."""
    plain = CliRunner().invoke(app, ["rules", "--format", "json"])
    default = CliRunner().invoke(app, ["rules", "--format", "json", "--agreement", "default"])
    assert default.exit_code == 0, default.output
    assert default.stdout == plain.stdout


def test_rules_for_an_unknown_agreement_name_the_shipped_ones() -> None:
    """An agreement that is not shipped is a usage error that lists the profiles there are."""
    result = CliRunner().invoke(app, ["rules", "--agreement", "no-such-treaty"])
    assert result.exit_code == 2
    assert "default" in result.output


def test_rules_for_the_customs_agreement_cite_its_articles() -> None:
    """`--agreement customs-maa` gives the same rules in that agreement's articles and words."""
    result = CliRunner().invoke(app, ["rules", "--format", "json", "--agreement", "customs-maa"])
    assert result.exit_code == 0, result.output
    by_id = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(by_id) == {r.id for r in RULES}
    assert by_id["oral-request-not-confirmed"]["article"] == "6.1"
    assert by_id["refusal-ground-outside-5-1"]["article"] == "9.1"
    assert "commercial" in by_id["refusal-ground-outside-5-1"]["summary"]
    assert by_id["not-working-language"]["article"] == "6.3"


def test_agreements_as_markdown_is_a_markdown_table() -> None:
    """`agreements --format markdown` prints a Markdown table, one profile a row, as `rules`
    does. Before: the option was offered and printed the terminal table."""
    shown = CliRunner().invoke(app, ["agreements", "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "| Id | Agreement | Kind | Languages | Areas | Grounds of refusal |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| `default`", "| `customs-maa`"]


def test_a_profile_file_of_ones_own_is_checked_and_its_rule_book_printed(tmp_path: Path) -> None:
    """`agreements FILE` checks a profile file; `rules --agreement FILE` cites its articles."""
    convention = Path(__file__).parents[1] / "scenarios" / "profiles" / "tri-river-convention.yaml"
    shown = CliRunner().invoke(app, ["agreements", "--format", "json", str(convention)])
    assert shown.exit_code == 0, shown.output
    assert [p["id"] for p in json.loads(shown.stdout)] == ["tri-river-convention"]
    rules = CliRunner().invoke(app, ["rules", "--format", "json", "--agreement", str(convention)])
    assert rules.exit_code == 0, rules.output
    by_id = {r["id"]: r for r in json.loads(rules.stdout)}
    assert by_id["request-not-signed-or-sealed"]["article"] == "6.3"
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        convention.read_text(encoding="utf-8").replace("kind: multilateral", "kind: trilateral"),
        encoding="utf-8",
    )
    refused = CliRunner().invoke(app, ["agreements", str(broken)])
    assert refused.exit_code == 1
    assert "broken.yaml" in refused.output
    assert "kind" in refused.output
