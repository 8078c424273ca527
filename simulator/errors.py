"""The error root of the simulator, branched by whose fault an error is.

    SimulatorError
    ├── InputError                 bad input from a user: fix the file or the command
    │   ├── ScenarioError          a scenario file is broken (file, line, field)
    │   │   └── InvalidScenarioError   every problem found, ordered by line
    │   ├── LogFileError           a file given as a log is corrupt or foreign (path)
    │   ├── BrokerUrlError         a broker URL that cannot be used
    │   └── SessionSettingsError   MQTT session settings that would lose messages
    ├── BrokerError                the broker is unreachable or refused us
    │   ├── BrokerStartError       a broker we launch did not start (its log tail)
    │   ├── BrokerUnavailable, BrokerRefused, SubscriptionRefused, PayloadTooLarge
    │   └── UnknownPrincipal, UnsupportedProtocol
    ├── PartySilent                a simulated party stopped answering rounds
    ├── PartyStuck                 a party's round reports say a plan is due it never sends
    └── InternalError              a bug in the simulator: report it
        └── ProjectionGap          a read model was fed events with a gap

The event log's own errors (`simulator.eventlog.LogError` and its branches:
NotALogError, CorruptLogError, VersionConflict, …) stay independent of this
tree so the log package imports nothing of the simulator; the command line
turns them into one message and exit code 2, like input errors.

Violations of the agreement by a participant are not errors: they are
exercise results, recorded as events (see `simulator.protocol.rules`).
Each error carries what is needed to act on it.
"""

from pathlib import Path


class SimulatorError(Exception):
    """Root of every error the simulator raises on purpose."""


class InputError(SimulatorError):
    """Bad input from a user."""


class ScenarioError(InputError):
    def __init__(self, path: Path | str, problem: str, *, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class LogFileError(InputError):
    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class BrokerError(SimulatorError):
    """The broker could not be reached or refused the connection."""


class InternalError(SimulatorError):
    """A bug in the simulator."""
