"""The wire's nesting check, measured level by level, is the plain recursive depth."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.messaging.wire import MAX_JSON_DEPTH, WireError, _depth, decode_json

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=40,
)


def plain_depth(value: Any) -> int:
    """A container is one level deeper than the deepest thing in it; a scalar is one."""
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, (dict, list)) and children:
        return 1 + max(plain_depth(child) for child in children)
    return 1


@given(JSON, st.integers(min_value=1, max_value=8))
def test_the_depth_is_the_recursive_depth_or_past_the_limit(value: Any, limit: int) -> None:
    depth = _depth(value, limit)
    expected = plain_depth(value)
    if expected <= limit:
        assert depth == expected
    else:
        assert depth > limit


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_a_payload_at_the_limit_decodes_and_one_past_it_is_refused(levels: int) -> None:
    """`levels` objects around a scalar nest levels + 1 deep: 64 is the most taken."""
    text = '{"a":' * levels + "1" + "}" * levels
    assert plain_depth(json.loads(text)) == levels + 1
    if levels + 1 <= MAX_JSON_DEPTH:
        assert decode_json(text.encode())
    else:
        with pytest.raises(WireError, match="nested deeper"):
            decode_json(text.encode())
