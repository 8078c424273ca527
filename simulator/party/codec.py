"""How a party puts its submissions and catch-up asks on the wire.

`CheckedCodec` builds the wire models (`simulator.messaging.wire`), so a
party whose message was put together by hand (a trainee's seat) or by a
policy fails here, at once and with the field named, rather than at the
umpire. `FastCodec` is a load generator's: its messages are built by code
from fixed templates, hundreds of thousands a run, and the umpire validates
every one of them anyway, so it writes the same JSON with orjson and no
models. The umpire reads the two alike (a test holds them to that).
"""

from datetime import datetime
from typing import Any, Protocol

import orjson

from simulator.messaging.wire import CatchUpRequest, Submission, encode


class Codec(Protocol):
    def submission(
        self, party: str, seq: int, message: dict[str, Any], due: datetime | None = None
    ) -> bytes: ...

    def catch_up_request(self, party: str, after: int) -> bytes: ...


class CheckedCodec:
    def submission(
        self, party: str, seq: int, message: dict[str, Any], due: datetime | None = None
    ) -> bytes:
        return encode(Submission(party=party, seq=seq, message=message, due=due))

    def catch_up_request(self, party: str, after: int) -> bytes:
        return encode(CatchUpRequest(party=party, after=after))


class FastCodec:
    def submission(
        self, party: str, seq: int, message: dict[str, Any], due: datetime | None = None
    ) -> bytes:
        data: dict[str, Any] = {
            "kind": "submission",
            "party": party,
            "seq": seq,
            "message": message,
        }
        if due is not None:
            data["due"] = due
        return orjson.dumps(data)

    def catch_up_request(self, party: str, after: int) -> bytes:
        return orjson.dumps({"kind": "catch_up_request", "party": party, "after": after})


__all__ = ["CheckedCodec", "Codec", "FastCodec"]
