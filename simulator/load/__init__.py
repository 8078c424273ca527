"""Load testing message flows: whole conversations at a target rate, reconciled against the log."""

from simulator.load.conversation import PATHS, Mix, load_mix
from simulator.load.report import LoadReport
from simulator.load.runner import LoadOptions, run_load

__all__ = ["PATHS", "LoadOptions", "LoadReport", "Mix", "load_mix", "run_load"]
