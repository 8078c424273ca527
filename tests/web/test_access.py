"""Seat and control tokens: each opens its own page and nothing else."""

import asyncio
from pathlib import Path

import pytest

from simulator.web.tokens import Access, Tokens
from tests.web.conftest import desk, serving


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_a_seat_token_opens_neither_another_seat_nor_the_control_view(
    tmp_path: Path, broker: str
) -> None:
    """With two seats, each token opens its own seat only; the control token no seat."""
    humans = desk(humans=("northmark", "southmere"))
    async with serving(humans, tmp_path, broker=broker) as served:
        client = served.client
        north, south, control = (
            served.token("northmark"),
            served.token("southmere"),
            served.token("control"),
        )
        assert len({north, south, control}) == 3
        opens = {
            (path, name): (await client.get(path, params={"token": token})).status_code
            for path in ("/control", "/control/state", "/seat/northmark", "/seat/southmere")
            for name, token in (("north", north), ("south", south), ("control", control))
        }
        assert opens == {
            ("/control", "north"): 403,
            ("/control", "south"): 403,
            ("/control", "control"): 200,
            ("/control/state", "north"): 403,
            ("/control/state", "south"): 403,
            ("/control/state", "control"): 200,
            ("/seat/northmark", "north"): 200,
            ("/seat/northmark", "south"): 403,
            ("/seat/northmark", "control"): 403,
            ("/seat/southmere", "north"): 403,
            ("/seat/southmere", "south"): 200,
            ("/seat/southmere", "control"): 403,
        }
        # Acting needs the right token too: a seat cannot command the clock or send as another.
        stop = await client.post(
            "/control/command", params={"token": south}, json={"command": "stop"}
        )
        assert stop.status_code == 403
        spoof = await client.post(
            "/seat/northmark/send",
            params={"token": south},
            json={"kind": "withdrawal", "case": "water-1", "values": {}},
        )
        assert spoof.status_code == 403
        for path in ("/control/stream", "/seat/northmark/stream"):
            assert (await client.get(path, params={"token": south})).status_code == 403
        assert (await client.get("/seat/southmere")).status_code == 403
        assert (await client.get("/seat/nobody", params={"token": south})).status_code == 403
        # Both seats are live over this broker: each sees the request it is party to.
        state = await served.until(lambda s: any(c["id"] == "water-1" for c in s["cases"]))
        assert state["ended"] is None
        for party, token in (("northmark", north), ("southmere", south)):
            async with (
                asyncio.timeout(20),
                client.stream("GET", f"/seat/{party}/stream", params={"token": token}) as stream,
            ):
                async for line in stream.aiter_lines():
                    if line.startswith("data:") and '"water-1"' in line:
                        break


def test_tokens_are_random_and_compared_whole() -> None:
    """Two issues never share a token; a prefix or an empty token opens nothing."""
    first, second = Tokens.issue(["a", "b"]), Tokens.issue(["a", "b"])
    assert first.control != second.control
    assert first.seats["a"] != second.seats["a"]
    assert len(first.seats["a"]) >= 32
    assert first.allows(Access("seat", "a"), first.seats["a"])
    assert not first.allows(Access("seat", "a"), first.seats["a"][:-1])
    assert not first.allows(Access("seat", "a"), "")
    assert not first.allows(Access("seat", "a"), None)
    assert not first.allows(Access("seat", "c"), first.seats["a"])
    assert not first.allows(Access("control"), first.seats["a"])
