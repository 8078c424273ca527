"""What the console accepts: request bodies of bounded size, JSON of bounded depth.

Every request to the console carries a small JSON form or command. Unbounded,
a 200 MB body to `/control/command` was read whole (466 MB resident) and
answered 200, and deeply nested JSON ran Python's parser out of stack (HTTP
500). `BodyLimit` refuses a body over the limit with 413 before any handler
sees it, whether it says its length or comes in chunks; `read_json` parses
with the same checks as the wire (`messaging.wire.decode_json`: size, UTF-8,
depth, no NaN) and says what was wrong. `RefusalLog` logs every request
answered 400 or more, and what it was told.
"""

import json
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.messaging.wire import WireError, decode_json

log = structlog.get_logger(__name__)

# A seat's letter, with every field filled in at length, is a few kilobytes.
MAX_BODY_BYTES = 64 * 1024


class RequestRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 and never read whole."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send, int(value))
                return
        # Read the body here, up to the limit (bodies are small); the handler gets it
        # replayed. A chunked body says its size only by running over.
        chunks: list[bytes] = []
        size = 0
        more = scope["method"] not in ("GET", "HEAD")
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: int) -> None:
        response = JSONResponse(
            {
                "ok": False,
                "error": f"request body of {size} bytes or more exceeds the limit of "
                f"{self.limit} bytes",
            },
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class RefusalLog:
    """ASGI middleware: every request answered 400 or more is logged, with what it was told.

    Bad input is refused before it reaches the umpire, so nothing else records it; the
    log line names the method, the path (not the query, which holds the token), the
    status and the answer's error text, so an operator can see who was refused and why.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        body: list[bytes] = []

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, watched)
        if status >= 400:
            log.warning(
                "web_request_refused",
                method=scope["method"],
                path=scope["path"],
                status=status,
                error=_said(b"".join(body)),
            )


def _said(body: bytes) -> str:
    """The error a refusal's body gives: its JSON `error`, else the start of its text."""
    try:
        found = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    error = found.get("error") if isinstance(found, dict) else None
    if isinstance(error, str):
        return error[:500]
    return body[:200].decode("utf-8", "replace")


def parse_json(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object; `RequestRefused` (400) saying what was wrong."""
    try:
        return decode_json(body, MAX_BODY_BYTES)
    except WireError as exc:
        raise RequestRefused(400, f"the request is not a JSON object we accept: {exc}") from None


__all__ = ["MAX_BODY_BYTES", "BodyLimit", "RefusalLog", "RequestRefused", "parse_json"]
