"""The JSON Schema of the scenario format, for editors (yaml-language-server and the like)."""

from typing import Any

from simulator.scenario.model import Scenario

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# simulator.protocol's Official carries no field descriptions; editors show
# these on hover, so they are added here rather than in the protocol.
_OFFICIAL_DESCRIPTIONS = {
    "name": "The official's name, as it appears on a signature.",
    "title": "The official's title, e.g. Minister or Deputy Director.",
}


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema a scenario file validates against, built from the models.

    It describes the file as written (durations as text, `from`/`to` keys);
    cross-field rules such as "the inject's party exists" are the loader's.
    """
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    official = schema["$defs"]["Official"]["properties"]
    for name, text in _OFFICIAL_DESCRIPTIONS.items():
        official[name].setdefault("description", text)
    _close_patterned_objects(schema)
    return {"$schema": SCHEMA_DIALECT, **schema}


def _close_patterned_objects(node: Any) -> None:
    """Make maps with patterned keys (policy names) refuse keys that break the pattern.

    Pydantic describes `dict[PolicyName, Policy]` with patternProperties only,
    which lets an editor accept `Bad Name:` silently; the loader refuses it.
    """
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_patterned_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_patterned_objects(value)
