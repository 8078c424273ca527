"""Controlling a running exercise from outside: pause, resume, speed, jump, inject, note, stop.

`simulator run` writes a control file beside its log (`LOG.control.json`,
readable by its owner only) naming the broker and the controller's
credentials, and removes it when the run ends. `simulator control` reads
it and publishes one command on the exercise's control topic.
"""

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from simulator.context import fresh_rng
from simulator.errors import InputError
from simulator.topics import Topics
from simulator.transport import BrokerAddress, Credentials, SessionSettings, Transport
from simulator.wire import Control, encode


class ControlFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    exercise: str
    host: str
    port: int
    username: str
    password: str
    # --secure: the broker speaks TLS; its CA certificate.
    tls: bool = False
    ca_file: str | None = None


def control_path(log_location: str) -> Path:
    if log_location.startswith(("postgresql://", "postgres://")):
        return Path("runs") / "postgres.control.json"
    return Path(f"{log_location}.control.json")


def write_control_file(path: Path, data: ControlFile) -> None:
    # Created 0600 from the start: it holds the controller's password.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(data.model_dump_json())


def read_control_file(path: Path) -> ControlFile:
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{path}: no control file; is the exercise running (simulator run … --log LOG)?"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable control file: {exc}") from None
    return ControlFile.model_validate(raw)


async def send_control(target: ControlFile, command: Control) -> None:
    topics = Topics(target.exercise)
    address = BrokerAddress(
        host=target.host,
        port=target.port,
        tls=target.tls,
        ca_file=Path(target.ca_file) if target.ca_file else None,
    )
    transport = Transport(
        address,
        SessionSettings(f"ctl-{fresh_rng().getrandbits(40):010x}", persistent=False),
        rng=fresh_rng(),
        credentials=Credentials(target.username, target.password),
    )
    async with transport:
        await transport.publish(topics.control, encode(command))
