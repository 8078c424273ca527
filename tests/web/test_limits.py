"""The console refuses oversize bodies and deep JSON with a message, with curl as with httpx.

Before: a 200 MB body to `/control/command` was read whole (466 MB resident)
and answered 200; deeply nested JSON was an HTTP 500 (RecursionError).
"""

import asyncio
import json
import shutil
from pathlib import Path

from structlog.testing import capture_logs

from simulator.web.limits import MAX_BODY_BYTES
from tests.web.conftest import desk, serving


async def _curl(url: str, body: Path, *headers: str) -> tuple[int, dict[str, object]]:
    binary = shutil.which("curl")
    assert binary, "curl is missing: apt-get install curl"
    extra = [arg for header in headers for arg in ("-H", header)]
    proc = await asyncio.create_subprocess_exec(
        binary, "-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
        "-H", "Content-Type: application/json", *extra, "--data-binary", f"@{body}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text, _, code = out.decode().rpartition("\n")
    return int(code), json.loads(text)


async def test_oversize_and_deeply_nested_bodies_are_refused_saying_why(tmp_path: Path) -> None:
    async with serving(desk(), tmp_path) as served:
        control = served.token("control")
        seat = served.token("southmere")
        base = str(served.client.base_url)
        big = tmp_path / "big.json"
        big.write_bytes(b'{"command":"note","text":"' + b"x" * (8 * 1024 * 1024) + b'"}')
        for url, headers in (
            (f"{base}/control/command?token={control}", ()),
            (f"{base}/seat/southmere/send?token={seat}", ()),
            # A body that does not say its length runs over the limit all the same.
            (f"{base}/control/command?token={control}", ("Transfer-Encoding: chunked",)),
        ):
            code, answer = await _curl(url, big, *headers)
            assert code == 413, answer
            assert f"exceeds the limit of {MAX_BODY_BYTES} bytes" in str(answer["error"])
        deep = tmp_path / "deep.json"
        deep.write_text('{"command":' + "[" * 5000 + "]" * 5000 + "}")
        code, answer = await _curl(f"{base}/control/command?token={control}", deep)
        assert code == 400
        assert "nested deeper than" in str(answer["error"])
        # Within the limits, the console works as before (and nothing was recorded).
        response = await served.command(command="note", text="still here")
        assert response.status_code == 200, response.text
        bad = await served.client.post(
            "/seat/southmere/send", params={"token": seat}, content=b"[1, 2]"
        )
        assert bad.status_code == 400
        assert "expected a JSON object" in bad.json()["error"]


async def test_every_refused_request_is_logged_with_what_it_was_told(tmp_path: Path) -> None:
    """A refusal never reaches the umpire, so the console logs it: method, path (not the
    token in the query), status and the error the client got. Before: no trace at all."""
    async with serving(desk(), tmp_path) as served:
        seat = served.token("southmere")
        base = str(served.client.base_url)
        big = tmp_path / "big.json"
        big.write_bytes(b'{"kind":"' + b"x" * (2 * MAX_BODY_BYTES) + b'"}')
        with capture_logs() as logged:
            bad = await served.client.post(
                "/seat/southmere/send", params={"token": seat}, content=b"[1, 2]"
            )
            forged = await served.client.get("/seat/northmark", params={"token": seat})
            code, _ = await _curl(f"{base}/seat/southmere/send?token={seat}", big)
            fine = await served.client.get(
                "/control/state", params={"token": served.token("control")}
            )

    refusals = [entry for entry in logged if entry["event"] == "web_request_refused"]
    assert (bad.status_code, forged.status_code, code, fine.status_code) == (400, 403, 413, 200)
    assert [(r["method"], r["path"], r["status"]) for r in refusals] == [
        ("POST", "/seat/southmere/send", 400),
        ("GET", "/seat/northmark", 403),
        ("POST", "/seat/southmere/send", 413),
    ]
    assert "expected a JSON object" in refusals[0]["error"]
    assert "This link does not open this page" in refusals[1]["error"]
    assert f"exceeds the limit of {MAX_BODY_BYTES} bytes" in refusals[2]["error"]
    assert all(seat not in str(r) for r in refusals)
