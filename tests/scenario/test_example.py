"""The shipped example scenario loads, and every model survives a round trip."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from simulator.protocol import Agreement, AgreementSettings, CaseState, Party
from simulator.scenario import (
    CaseStateCondition,
    ExponentialDelay,
    FixedDelay,
    FollowUp,
    Generator,
    Inject,
    InjectMessage,
    MessageCondition,
    MessageTemplate,
    Policy,
    Response,
    RuleCondition,
    Scenario,
    ScenarioAgreement,
    ScenarioParty,
    UniformDelay,
    load_scenario,
    parse_scenario,
)
from simulator.scenario.model import Expectation, Mistakes
from tests.scenario.samples import BASE, EXAMPLE


def _models(value: Any) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from _models(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _models(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _models(item)


def test_example_loads() -> None:
    """scenarios/example.yaml loads cleanly, with its parties, policies and timeline."""
    scenario = load_scenario(EXAMPLE)
    assert scenario.exercise == "riverbend-cup"
    assert [p.id for p in scenario.parties] == ["northmark", "southmere"]
    assert set(scenario.policies) == {"cooperative", "requester"}
    assert scenario.duration == timedelta(days=30)
    assert len(scenario.injects) == 4
    assert scenario.generators[0].count == 5
    assert len(scenario.expectations) == 4


def test_example_uses_every_kind_of_model() -> None:
    """The example exercises each model of the format, so the round trips below cover them all."""
    kinds = {type(m) for m in _models(load_scenario(EXAMPLE))}
    expected = {
        Scenario,
        ScenarioAgreement,
        ScenarioParty,
        Policy,
        Response,
        FollowUp,
        Mistakes,
        Inject,
        InjectMessage,
        CaseStateCondition,
        RuleCondition,
        Generator,
        MessageTemplate,
        Expectation,
        FixedDelay,
        UniformDelay,
        ExponentialDelay,
    }
    assert expected <= kinds


def test_example_anchor_is_shared() -> None:
    """A YAML anchor reuses responses: written confirmations are handled like requests."""
    policy = load_scenario(EXAMPLE).policies["cooperative"]
    assert policy.on["written_confirmation"] == policy.on["written_request"]


def test_scenario_round_trips_through_python_json_and_yaml() -> None:
    """Dumping a scenario (Python, JSON or YAML form) and validating it again gives it back."""
    scenario = load_scenario(EXAMPLE)
    python = scenario.model_dump(by_alias=True)
    json_form = scenario.model_dump(mode="json", by_alias=True)
    assert Scenario.model_validate(python) == scenario
    assert Scenario.model_validate(json_form) == scenario
    assert Scenario.model_validate_json(scenario.model_dump_json(by_alias=True)) == scenario
    assert parse_scenario(yaml.safe_dump(json_form, sort_keys=False)) == scenario


def _instances() -> list[BaseModel]:
    found = list(_models(load_scenario(EXAMPLE)))
    # Kinds the example does not use.
    found += [
        MessageCondition(case="case-1", message="results"),
        RuleCondition(rule="refusal-without-reasons"),
        Response(reply="silence", weight=2),
        ExponentialDelay(mean=timedelta(0)),
    ]
    return found


@pytest.mark.parametrize("model", _instances(), ids=lambda m: type(m).__name__)
def test_every_model_round_trips(model: BaseModel) -> None:
    """Each model validates again from its own dump, in Python and in JSON form."""
    cls = type(model)
    assert cls.model_validate(model.model_dump(by_alias=True)) == model
    assert cls.model_validate(model.model_dump(mode="json", by_alias=True)) == model


def test_delays_dump_as_authors_write_them() -> None:
    """In JSON form a delay is written as in YAML: '4h', '2h..6h' or {exponential: 8h}."""
    scenario = load_scenario(EXAMPLE)
    responses = scenario.model_dump(mode="json", by_alias=True)["policies"]["cooperative"]["on"]
    afters = [r["after"] for r in responses["written_request"]]
    assert afters == ["2h..6h"] * 4
    follow_ups = [r["then"][0]["after"] for r in responses["written_request"]]
    assert follow_ups == ["1d", "1d", {"exponential": "8h"}, "2d"]


def test_protocol_views() -> None:
    """A scenario hands the protocol plain parties and settings, and resolves policies."""
    scenario = load_scenario(EXAMPLE)
    agreement = scenario.protocol_agreement()
    assert isinstance(agreement, Agreement)
    assert all(type(p) is Party for p in agreement.parties.values())
    assert type(agreement.settings) is AgreementSettings
    assert agreement.settings.as_soon_as_possible == timedelta(days=10)
    assert scenario.policy_of("southmere") is scenario.policies["cooperative"]
    assert scenario.end - scenario.start == timedelta(days=30)


def test_inline_policy_and_no_policy() -> None:
    """A party's policy may be written inline, or left out (the party then sends nothing)."""
    text = BASE.replace("    policy: calm\n  - id: beta", "    policy: {on: {}}\n  - id: beta")
    text = text.replace("    policy: calm\npolicies", "policies")
    scenario = parse_scenario(text)
    assert scenario.policy_of("alpha") == Policy()
    assert scenario.policy_of("beta") is None


def test_condition_kinds() -> None:
    """`when` is read as a state, a message or a rule condition by its keys."""
    scenario = load_scenario(EXAMPLE)
    assert scenario.injects[2].when == CaseStateCondition(case="energy-1", state=CaseState.REFUSED)
    assert scenario.injects[3].when == RuleCondition(
        rule="refusal-without-reasons", case="energy-1"
    )


def test_the_guide_shows_the_example_as_it_is() -> None:
    """docs/scenarios.md ends with scenarios/example.yaml, verbatim, so the two cannot drift."""
    guide = (EXAMPLE.parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    example = EXAMPLE.read_text(encoding="utf-8")
    assert guide.endswith(f"```yaml\n{example}```\n")
