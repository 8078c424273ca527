"""How often a writer checkpoints, and where a second copy of its checkpoints goes.

Read from the environment (``SIMULATOR_CHECKPOINT_EVERY``,
``SIMULATOR_CHECKPOINT_SECONDS``, ``SIMULATOR_CHECKPOINT_WITNESS``) when a
store is not given them, so that every command that writes a log (`run`,
`serve`, `load`, `fork`, `log import`) honours them without a flag of its own.
An argument given to the store wins over the environment, which wins over
the defaults here.
"""

import os

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from simulator.eventlog.errors import SettingsError
from simulator.eventlog.witness import Witness, open_witness

DEFAULT_CHECKPOINT_EVERY = 10_000
DEFAULT_CHECKPOINT_SECONDS = 1.0


class CheckpointSettings(BaseSettings):
    """The checkpoint window: a killed writer leaves at most this much unvouched.

    A checkpoint is written once ``every`` events have been appended since
    the last one, and ``seconds`` after an append that no checkpoint covers
    yet (0 turns the timer off). ``witness`` is a second place for every
    checkpoint: a file (or a directory, which then holds
    ``checkpoints.jsonl``) or a ``postgresql://`` URL whose ``schema``
    parameter names the witness schema; see ``simulator.eventlog.witness``.
    """

    model_config = SettingsConfigDict(env_prefix="SIMULATOR_CHECKPOINT_", extra="ignore")

    every: int = Field(DEFAULT_CHECKPOINT_EVERY, ge=1)
    seconds: float = Field(DEFAULT_CHECKPOINT_SECONDS, ge=0)
    witness: str | None = None


def checkpoint_settings() -> CheckpointSettings:
    """The settings from the environment; SettingsError naming the variable if one is bad."""
    try:
        return CheckpointSettings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "SIMULATOR_CHECKPOINT_" + "_".join(str(part) for part in error["loc"]).upper()
        raise SettingsError(name, error["msg"]) from exc


def resolve_checkpointing(
    read_only: bool,
    every: int | None,
    seconds: float | None,
    witness: str | os.PathLike[str] | Witness | None,
) -> tuple[int, float, Witness | None]:
    """A store's checkpoint window and witness: its arguments first, then the settings.

    A read-only store writes no checkpoints, so it reads no settings either.
    """
    if read_only:
        return 1, 0.0, None
    if every is None or seconds is None or witness is None:
        settings = checkpoint_settings()
        every = settings.every if every is None else every
        seconds = settings.seconds if seconds is None else seconds
        if witness is None:
            witness = settings.witness or None
    if every < 1 or seconds < 0:
        raise ValueError("checkpoint_every >= 1 and checkpoint_seconds >= 0")
    if isinstance(witness, str | os.PathLike):
        return every, seconds, open_witness(witness)
    return every, seconds, witness
