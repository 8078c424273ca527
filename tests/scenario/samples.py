"""A small valid scenario to break one line at a time, and helpers to read what went wrong."""

from pathlib import Path

import pytest

from simulator.scenario import InvalidScenarioError, Problem, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "scenarios" / "example.yaml"


def two_parties(exercise: str, title: str, *, seed: int = 3, beta_policy: str = "") -> str:
    """The head of a scenario for unit tests: alpha and beta, over 30 days from 2 March 2026.

    `beta_policy` names beta's policy; the caller appends policies, injects and the rest.
    """
    policy = f"\n    policy: {beta_policy}" if beta_policy else ""
    return f"""\
version: 1
exercise: {exercise}
title: {title}
seed: {seed}
start: 2026-03-02T09:00:00Z
duration: 30d
parties:
  - id: alpha
    name: Alpha Agency
    head: {{name: A. Head}}
    deputies: [{{name: A. Deputy}}]
    seal: A-SEAL
    coordination_unit: Liaison Office
  - id: beta
    name: Beta Agency
    head: {{name: B. Head}}
    deputies: [{{name: B. Deputy}}]
    seal: B-SEAL
    coordination_unit: Liaison Office{policy}
"""


# A policy for `two_parties(..., beta_policy="decliner")`: beta declines an offer exactly a
# day after it (for tests of what comes at one instant).
DECLINER = """\
policies:
  decliner:
    on:
      offer:
        - reply: offer_declined
          after: 1d
          fields: {reason: "Our officers are committed elsewhere."}
"""


def offer_inject(at: str) -> str:
    """An inject `offer`: alpha offers beta a training course (case offer-1) at `at`."""
    return f"""\
  - id: offer
    at: {at}
    send:
      type: offer
      from: alpha
      to: beta
      case: offer-1
      fields: {{area: public_order, description: Joint steward training.}}
"""


# Line numbers matter: the tests replace a numbered line and expect the
# problem to be reported on it.
BASE = """\
version: 1
exercise: drill
title: A drill
seed: 3
start: 2026-03-02T09:00:00Z
duration: 10d
parties:
  - id: alpha
    name: Alpha Agency
    head: {name: A. Head}
    deputies: [{name: A. Deputy}]
    seal: A-SEAL
    coordination_unit: Liaison Office
    policy: calm
  - id: beta
    name: Beta Agency
    head: {name: B. Head}
    deputies: [{name: B. Deputy}]
    seal: B-SEAL
    coordination_unit: Liaison Office
    policy: calm
policies:
  calm:
    on:
      written_request:
        - reply: acknowledgement
          after: 2h..6h
injects:
  - id: first
    at: 2h
    send:
      type: written_request
      from: alpha
      to: beta
      case: case-1
      fields: {area: public_order}
  - id: second
    when: {case: case-1, state: refused}
    send: {type: withdrawal, from: alpha, to: beta, case: case-1}
"""


def with_line(number: int, text: str, base: str = BASE) -> str:
    """BASE with line `number` (from 1) replaced by `text` (which may span lines)."""
    lines = base.splitlines()
    assert 1 <= number <= len(lines)
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def problems_of(text: str, path: str = "scenarios/broken.yaml") -> tuple[Problem, ...]:
    """The problems parse_scenario reports for `text`; fails the test if there are none."""
    with pytest.raises(InvalidScenarioError) as caught:
        parse_scenario(text, path)
    return caught.value.problems


def problem_at(text: str, path: str) -> Problem:
    """The one problem reported for field `path`."""
    found = [p for p in problems_of(text) if p.path == path]
    assert len(found) == 1, f"expected one problem at {path!r}, got {problems_of(text)}"
    return found[0]
