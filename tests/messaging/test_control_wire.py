"""A controller's command on the wire: what the umpire takes as a speed."""

import pytest

from simulator.messaging.wire import WireError, decode_control


@pytest.mark.parametrize(
    ("speed", "taken"), [("60", 60.0), ("true", None), ("0.0001", None), ("2e7", None),
                         ("7200", 7200.0), ("0.5", 0.5), ("1e7", 1e7)],
)  # fmt: skip
def test_a_speed_is_a_number_a_clock_can_run_at(speed: str, taken: float | None) -> None:
    """`true` and `"60"` had been taken as x1 and x60 (lax coercion), 1e-300 froze the run.

    Each speed is sent bare and as a string: as a string, never taken."""
    for text in (speed, f'"{speed}"'):
        payload = f'{{"kind":"control","command":"speed","speed":{text}}}'.encode()
        if taken is None or text.startswith('"'):
            with pytest.raises(WireError, match="speed"):
                decode_control(payload)
        else:
            assert decode_control(payload).speed == taken
