"""Broken scenarios are refused with the file, the line and the field of each problem."""

from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import InvalidScenarioError, load_scenario, parse_scenario
from tests.scenario.samples import BASE, problem_at, problems_of, with_line

# (name, line replaced, its new text, line reported, field reported, part of the message)
BROKEN = [
    ("wrong type", 4, "seed: seven", 4, "seed", "valid integer (got 'seven')"),
    (
        "unknown party in an inject",
        34,
        "      to: gamma",
        34,
        "injects[0].send.to",
        "'gamma' is not a party of this scenario (parties: alpha, beta)",
    ),
    (
        "party id with /",
        15,
        "  - id: a/b",
        15,
        "parties[1].id",
        "party id 'a/b' must match [a-z0-9_-]{1,64}",
    ),
    ("party id with +", 15, "  - id: a+b", 15, "parties[1].id", "party id 'a+b' must match"),
    ("party id with #", 15, "  - id: a#b", 15, "parties[1].id", "party id 'a#b' must match"),
    ("reserved party id", 15, "  - id: umpire", 15, "parties[1].id", "reserved"),
    (
        "a start the runtime cannot represent",
        5,
        "start: 0001-01-01T00:00:00+14:00",
        5,
        "start",
        "outside the times the simulator can run: a start from 1000 up to 8999 (UTC)",
    ),
    (
        "a start at the calendar's end",
        5,
        "start: 9999-12-31T23:00:00Z",
        5,
        "start",
        "outside the times the simulator can run",
    ),
    (
        "party id numbering into the umpire's namespace",
        15,
        "  - id: gen",
        15,
        "parties[1].id",
        "party id 'gen' would put its message ids in the umpire's namespace",
    ),
    (
        # Told apart here, one person in the log (its text is NFC): the record opening the
        # exercise, which keys each official's public key by name, failed with a traceback.
        "two deputies, one name in two Unicode spellings",
        18,
        '    deputies: [{name: "Zoe\\u0308 Brandt"}, {name: "Zo\\u00eb Brandt"}]',
        15,
        "parties[1]",
        "head and deputies must be different people ('Zoë Brandt' twice",
    ),
    (
        "unknown key",
        19,
        "    seel: B-SEAL",
        19,
        "parties[1].seel",
        "unknown key 'seel' (did you mean 'seal'?)",
    ),
    (
        "unknown top-level key",
        22,
        "policys:",
        22,
        "policys",
        "unknown key 'policys' (did you mean 'policies'?)",
    ),
    (
        "bad delay syntax",
        27,
        "          after: 2 hours",
        27,
        "policies.calm.on.written_request[0].after",
        "'2 hours' is not a duration",
    ),
    (
        "delay without a unit",
        27,
        "          after: 4",
        27,
        "policies.calm.on.written_request[0].after",
        "4 has no unit",
    ),
    (
        "unknown message type in a policy",
        25,
        "      writen_request:",
        25,
        "policies.calm.on.writen_request",
        "unknown message type 'writen_request' (did you mean 'written_request'?)",
    ),
    (
        "unknown reply type",
        26,
        "        - reply: acknowledgment",
        26,
        "policies.calm.on.written_request[0].reply",
        "unknown message type 'acknowledgment' (did you mean 'acknowledgement'?)",
    ),
    (
        "field that the message type lacks",
        27,
        "          after: 2h..6h\n          fields: {nota: x}",
        28,
        "policies.calm.on.written_request[0].fields.nota",
        "acknowledgement has no field 'nota' (did you mean 'note'?)",
    ),
    (
        "envelope field",
        36,
        "      fields: {area: public_order, case_id: case-2}",
        36,
        "injects[0].send.fields.case_id",
        "filled in by the runtime",
    ),
    (
        "bad field value",
        36,
        "      fields: {area: public_disorder}",
        36,
        "injects[0].send.fields.area",
        "(did you mean 'public_order'?) (got 'public_disorder')",
    ),
    (
        "required message field missing",
        36,
        "      fields: {}",
        36,
        "injects[0].send.fields",
        "written_request needs the field 'area'",
    ),
    (
        "when on an unknown case",
        38,
        "    when: {case: case-9, state: refused}",
        38,
        "injects[1].when.case",
        "no inject or generator creates case 'case-9' (did you mean 'case-1'?)",
    ),
    (
        "unknown state",
        38,
        "    when: {case: case-1, state: refuzed}",
        38,
        "injects[1].when.state",
        "(did you mean 'refused'?) (got 'refuzed')",
    ),
    (
        "unknown rule",
        38,
        "    when: {rule: refusal-without-reason}",
        38,
        "injects[1].when.rule",
        "unknown rule 'refusal-without-reason' (did you mean 'refusal-without-reasons'?)",
    ),
    (
        "missing policy reference",
        14,
        "    policy: clam",
        14,
        "parties[0].policy",
        "no policy named 'clam' in `policies` (did you mean 'calm'?)",
    ),
    (
        "probability above 1",
        27,
        "          after: 2h..6h\n    mistakes: {late_reply: 1.5, late_by: 1d}",
        28,
        "policies.calm.mistakes.late_reply",
        "less than or equal to 1 (got 1.5)",
    ),
    (
        "start without timezone",
        5,
        "start: 2026-03-02T09:00:00",
        5,
        "start",
        "has no timezone",
    ),
    ("missing required key", 3, "", 1, "title", "this key is required"),
    (
        "a title of two lines",
        3,
        'title: "Line one\\n# Injected heading"',
        3,
        "title",
        "a title is one line: no line break, tab or other control character",
    ),
    (
        "inject from a party to itself",
        34,
        "      to: alpha",
        34,
        "injects[0].send.to",
        "from 'alpha' to itself",
    ),
    (
        "inject after the end",
        30,
        "    at: 10d",
        30,
        "injects[0].at",
        "10d is not before the end of the exercise (10d)",
    ),
]


@pytest.mark.parametrize(
    ("number", "text", "line", "field", "message"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_scenario_names_file_line_and_field(
    tmp_path: Path, number: int, text: str, line: int, field: str, message: str
) -> None:
    """Each broken scenario is refused, naming the file, the line and the field at fault."""
    path = tmp_path / "broken.yaml"
    path.write_text(with_line(number, text), encoding="utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(path)
    found = [p for p in caught.value.problems if p.path == field]
    assert len(found) == 1, str(caught.value)
    assert found[0].line == line
    assert message in found[0].message
    assert f"{path}:{line}: {field}: " in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            with_line(19, "    seal: B-SEAL\n    seal: C-SEAL"),
            20,
            "duplicate key 'seal' (first on line 19)",
        ),
        (with_line(10, "    head: {name: A. Head, name: B}"), 10, "duplicate key 'name'"),
        (with_line(9, "    name: Alpha: Agency"), 9, "YAML syntax: mapping values are not allowed"),
        (with_line(19, "    seal: [B-SEAL"), 20, "YAML syntax"),
        (with_line(19, "\tseal: B-SEAL"), 19, "YAML syntax"),
        ("- version: 1\n- exercise: x\n", 1, "the top level must be a mapping"),
        ("just text\n", 1, "the top level must be a mapping"),
        (BASE + "---\nversion: 1\n", 40, "expected a single document"),
        (
            with_line(3, "title: !!python/object:os.system ls"),
            3,
            "tag 'tag:yaml.org,2002:python",
        ),
        (with_line(5, "start: !!timestamp soon"), 5, "tag 'tag:yaml.org,2002:timestamp' is not"),
        (with_line(5, "start: 2026-02-30T09:00:00Z"), 5, "'2026-02-30T09:00:00Z' cannot be read"),
        (with_line(4, "seed: " + "9" * 5000), 4, "cannot be read"),
        (with_line(3, "title: a \x07 bell"), 3, "U+0007 is not allowed"),
    ],
    ids=[
        "duplicate key",
        "duplicate key in flow mapping",
        "YAML syntax",
        "unclosed bracket",
        "tab indentation",
        "top level is a list",
        "top level is a scalar",
        "two documents",
        "python tag",
        "timestamp tag",
        "impossible date",
        "number too long to read",
        "control character",
    ],
)
def test_unreadable_yaml_is_refused_with_its_line(text: str, line: int, message: str) -> None:
    """YAML that cannot be read safely, or is not a mapping, is refused with its line."""
    with pytest.raises(InvalidScenarioError) as caught:
        parse_scenario(text, "scenarios/bad.yaml")
    assert caught.value.line == line
    assert message in caught.value.problem
    assert str(caught.value).startswith(f"scenarios/bad.yaml:{line}: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_refused(tmp_path: Path, text: str) -> None:
    """An empty file, or one with only comments, is refused as empty."""
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line is None
    assert (
        str(caught.value) == f"{path}: is empty: a scenario needs at least version, exercise, ..."
    )


def test_every_problem_is_reported_in_line_order() -> None:
    """All problems are reported at once, ordered by line; the error's line is the first one's."""
    text = with_line(
        27, "          after: soon", with_line(15, "  - id: a/b", with_line(4, "seed: x"))
    )
    with pytest.raises(InvalidScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    error = caught.value
    assert [(p.line, p.path) for p in error.problems] == [
        (4, "seed"),
        (15, "parties[1].id"),
        (27, "policies.calm.on.written_request[0].after"),
    ]
    assert error.line == 4
    assert str(error).splitlines()[0].startswith("s.yaml:4: seed: ")
    assert len(str(error).splitlines()) == 3


def test_an_invalid_list_item_does_not_also_report_the_list_too_short() -> None:
    """One broken party is reported as that party, not also as "fewer than 2 parties"."""
    problems = problems_of(with_line(15, "  - id: umpire"))
    assert [p.path for p in problems] == ["parties[1].id"]


def test_scenario_error_is_a_scenario_error() -> None:
    """The error is a simulator ScenarioError, so the CLI's handling of input errors applies."""
    with pytest.raises(ScenarioError) as caught:
        parse_scenario("", "x.yaml")
    assert caught.value.path == Path("x.yaml")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A file that does not exist is refused by name."""
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == f"{path}: no such file"


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as a scenario is refused."""
    with pytest.raises(InvalidScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_file_over_5_mb_is_refused(tmp_path: Path) -> None:
    """A file over 5 MB is refused before it is parsed."""
    path = tmp_path / "big.yaml"
    path.write_bytes(BASE.encode() + b"#" * (5 * 1024 * 1024))
    with pytest.raises(InvalidScenarioError, match="a scenario file is at most 5,242,880"):
        load_scenario(path)


def test_text_over_5_mb_is_refused() -> None:
    """parse_scenario holds text to the same 5 MB limit as files."""
    with pytest.raises(InvalidScenarioError, match="over 5,242,880 bytes"):
        parse_scenario(BASE + "#" * (5 * 1024 * 1024))


def test_non_utf8_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused, naming the line they are on."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(with_line(3, "title: Caf\xe9").encode("latin-1"))
    with pytest.raises(InvalidScenarioError) as caught:
        load_scenario(path)
    assert caught.value.line == 3
    assert "is not UTF-8 text" in str(caught.value)


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """A UTF-8 file that starts with a byte order mark loads."""
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert load_scenario(path).exercise == "drill"


def test_alias_bomb_is_refused() -> None:
    """Aliases that expand into millions of values are refused before validation."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(InvalidScenarioError, match="expands to over 1,000,000 values"):
        parse_scenario("\n".join(levels) + "\n")


def test_recursive_alias_is_refused() -> None:
    """An alias inside its own anchor is refused."""
    with pytest.raises(InvalidScenarioError, match="refers to itself"):
        parse_scenario("a: &a [*a]\n")


@pytest.mark.parametrize("depth", [101, 1_000_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    """Nesting over 100 levels is refused with its line, however deep, never a crash."""
    with pytest.raises(InvalidScenarioError, match="nested more than 100 levels deep") as caught:
        parse_scenario("a:\n  " + "[" * depth + "]" * depth + "\n")
    assert caught.value.line == 2


def test_problem_in_an_aliased_value_is_reported_where_defined_and_where_used() -> None:
    """A bad value behind an anchor is reported at the anchor and at each alias of it."""
    text = with_line(
        27,
        "          after: &later 2 hours\n"
        "  other:\n"
        "    on:\n"
        "      refusal:\n"
        "        - reply: acknowledgement\n"
        "          after: *later",
    )
    assert problem_at(text, "policies.calm.on.written_request[0].after").line == 27
    assert problem_at(text, "policies.other.on.refusal[0].after").line == 32
