"""The JSON Schema describes the file as written, and the example conforms to it.

`jsonschema` is not a dependency, so a small checker below covers the
keywords the generated schema uses; a keyword it does not know fails the
test rather than passing silently.
"""

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from simulator.scenario import Scenario, scenario_json_schema
from simulator.scenario.loader import parse_yaml
from tests.scenario.samples import EXAMPLE

# Keywords that carry no constraint.
ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$defs", "format"}
TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> list[str]:
    found: list[str] = []
    for keyword, expected in schema.items():
        if keyword in ANNOTATIONS:
            continue
        if keyword == "$ref":
            target: Any = root
            for part in expected.removeprefix("#/").split("/"):
                target = target[part]
            found += _errors(value, target, root, at)
        elif keyword == "type":
            kinds = TYPES[expected]
            if not isinstance(value, kinds) or (expected != "boolean" and isinstance(value, bool)):
                found.append(f"{at}: {value!r} is not of type {expected}")
        elif keyword == "properties" and isinstance(value, dict):
            for key, sub in expected.items():
                if key in value:
                    found += _errors(value[key], sub, root, f"{at}.{key}")
        elif keyword == "patternProperties" and isinstance(value, dict):
            for pattern, sub in expected.items():
                for key in value:
                    if re.search(pattern, key):
                        found += _errors(value[key], sub, root, f"{at}.{key}")
        elif keyword == "additionalProperties" and isinstance(value, dict):
            listed = set(schema.get("properties", {}))
            patterns = list(schema.get("patternProperties", {}))
            for key in value:
                if key in listed or any(re.search(p, key) for p in patterns):
                    continue
                if expected is False:
                    found.append(f"{at}: unexpected key {key!r}")
                elif isinstance(expected, dict):
                    found += _errors(value[key], expected, root, f"{at}.{key}")
        elif keyword == "propertyNames" and isinstance(value, dict):
            for key in value:
                found += _errors(key, expected, root, f"{at}[{key!r}]")
        elif keyword == "required" and isinstance(value, dict):
            found += [f"{at}: missing {key!r}" for key in expected if key not in value]
        elif keyword == "items" and isinstance(value, list):
            for i, item in enumerate(value):
                found += _errors(item, expected, root, f"{at}[{i}]")
        elif keyword == "minItems" and isinstance(value, list):
            if len(value) < expected:
                found.append(f"{at}: fewer than {expected} items")
        elif keyword == "maxItems" and isinstance(value, list):
            if len(value) > expected:
                found.append(f"{at}: more than {expected} items")
        elif keyword == "minLength" and isinstance(value, str):
            if len(value) < expected:
                found.append(f"{at}: shorter than {expected}")
        elif keyword == "maxLength" and isinstance(value, str):
            if len(value) > expected:
                found.append(f"{at}: longer than {expected}")
        elif keyword in ("minimum", "maximum") and isinstance(value, int | float):
            if (value < expected) if keyword == "minimum" else (value > expected):
                found.append(f"{at}: {value} breaks {keyword} {expected}")
        elif keyword == "pattern" and isinstance(value, str):
            if re.search(expected, value) is None:
                found.append(f"{at}: {value!r} does not match {expected}")
        elif keyword == "enum":
            if value not in expected:
                found.append(f"{at}: {value!r} not in enum")
        elif keyword == "const":
            if value != expected:
                found.append(f"{at}: {value!r} is not {expected!r}")
        elif keyword == "anyOf":
            if all(_errors(value, sub, root, at) for sub in expected):
                found.append(f"{at}: {value!r} matches none of anyOf")
        elif keyword == "oneOf":
            matching = [sub for sub in expected if not _errors(value, sub, root, at)]
            if len(matching) != 1:
                found.append(f"{at}: {value!r} matches {len(matching)} of oneOf")
        elif keyword not in {
            "properties",
            "patternProperties",
            "additionalProperties",
            "propertyNames",
            "required",
            "items",
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "pattern",
        }:
            raise AssertionError(f"the test's checker does not know the keyword {keyword!r}")
    return found


def _as_json(value: Any) -> Any:
    """YAML as an editor sees it: timestamps are strings."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, date | datetime) else v)
    )


def _example() -> dict[str, Any]:
    data = _as_json(parse_yaml(EXAMPLE.read_text(encoding="utf-8")))
    assert isinstance(data, dict)
    return data


def test_schema_is_json_with_the_top_level_keys() -> None:
    """The schema is plain JSON, an object schema with a property for every top-level key."""
    schema = scenario_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "version",
        "exercise",
        "title",
        "description",
        "seed",
        "start",
        "duration",
        "agreement",
        "agreements",
        "profiles",
        "parties",
        "policies",
        "injects",
        "generators",
        "expectations",
    }
    assert set(schema["required"]) == {
        "version",
        "exercise",
        "title",
        "start",
        "duration",
        "parties",
    }


def test_every_property_has_a_description() -> None:
    """Every property, at the top and in every definition, carries a description for editors."""
    schema = scenario_json_schema()
    objects = [schema, *schema["$defs"].values()]
    missing = [
        f"{obj.get('title')}.{name}"
        for obj in objects
        for name, prop in obj.get("properties", {}).items()
        if "description" not in prop
    ]
    assert missing == []


def test_schema_uses_the_keys_authors_write() -> None:
    """Routes are `from`/`to`, and durations and delays are text, as in the YAML."""
    defs = scenario_json_schema()["$defs"]
    assert {"from", "to"} <= set(defs["InjectMessage"]["properties"])
    assert {"from", "to"} <= set(defs["Generator"]["properties"])
    assert defs["ScenarioAgreement"]["properties"]["promptly"]["type"] == "string"
    assert defs["Response"]["properties"]["after"]["default"] == "0s"


def test_example_conforms_to_the_schema() -> None:
    """scenarios/example.yaml, as an editor reads it, has no schema errors."""
    schema = scenario_json_schema()
    assert _errors(_example(), schema, schema) == []


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("parties", 0, "seel"), "x", "unexpected key 'seel'"),
        (("duration",), "30 days", "does not match"),
        (("policies", "cooperative", "on", "written_request", 0, "after"), "2h..", "oneOf"),
        (("policies", "cooperative", "on", "writen_request"), [], "not in enum"),
        (("injects", 0, "send", "type"), "writen_request", "not in enum"),
        (("version",), 2, "is not 1"),
        (("policies", "Bad Name"), {}, "unexpected key 'Bad Name'"),
    ],
)
def test_schema_catches_mistakes(path: tuple[str | int, ...], value: Any, error: str) -> None:
    """The schema flags typos, bad durations and unknown message types, as the loader does."""
    schema = scenario_json_schema()
    data = _example()
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert any(error in found for found in _errors(data, schema, schema))


def test_schema_comes_from_the_models() -> None:
    """The schema's definitions are the scenario models'."""
    defs = scenario_json_schema()["$defs"]
    assert {"ScenarioParty", "Policy", "Response", "Inject", "Generator", "Expectation"} <= set(
        defs
    )
    assert Scenario.model_json_schema(by_alias=True)["properties"].keys() == (
        scenario_json_schema()["properties"].keys()
    )


def test_the_schema_shipped_next_to_the_scenarios_is_the_models() -> None:
    """scenarios/scenario.schema.json (editors read it) is what the models give today.

    Regenerate it with `simulator scenario schema -o scenarios/scenario.schema.json`.
    """
    shipped = Path(__file__).parents[2] / "scenarios" / "scenario.schema.json"
    assert json.loads(shipped.read_text(encoding="utf-8")) == scenario_json_schema()
