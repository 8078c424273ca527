"""The umpire: the only writer of the log, its sequencer (decisions) and its agenda (timeline)."""

from simulator.umpire.core import (
    Agenda,
    EmptyAgenda,
    PartySilent,
    Umpire,
    UmpireResult,
    UmpireSettings,
)

__all__ = ["Agenda", "EmptyAgenda", "PartySilent", "Umpire", "UmpireResult", "UmpireSettings"]
