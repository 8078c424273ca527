"""Load testing message flows: whole conversations at a target rate, reconciled against the log."""

from simulator.load.ceiling import Ceiling, find_max
from simulator.load.conversation import PATHS, Mix, load_mix
from simulator.load.report import LoadReport
from simulator.load.runner import LoadOptions, run_load

__all__ = [
    "PATHS",
    "Ceiling",
    "LoadOptions",
    "LoadReport",
    "Mix",
    "find_max",
    "load_mix",
    "run_load",
]
