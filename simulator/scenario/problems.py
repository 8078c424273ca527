"""Problems found in a scenario file, and the error that carries all of them."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ScenarioError

# Enough to fix a file in one go without burying the terminal.
MAX_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario: where (line, field path) and what."""

    line: int | None
    path: str  # the field, as in `parties[1].id`; "" for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidScenarioError(ScenarioError):
    """A scenario that cannot be used, with every problem found, ordered by line.

    `line` and `problem` describe the first problem, as for any
    ScenarioError; `problems` has them all, and the message lists them one
    per line as `file:line: field: problem`.
    """

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        line: int | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        ordered = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        if not ordered:
            ordered = [Problem(line, "", problem)]
        first = ordered[0]
        super().__init__(path, str(first), line=first.line)
        self.problems: tuple[Problem, ...] = tuple(ordered)
        lines = [self._where(p) + str(p) for p in ordered[:MAX_SHOWN]]
        if len(ordered) > MAX_SHOWN:
            lines.append(f"... and {len(ordered) - MAX_SHOWN} more problems")
        self.args = ("\n".join(lines),)

    @classmethod
    def of(cls, path: Path | str, problems: Sequence[Problem]) -> "InvalidScenarioError":
        if not problems:
            raise ValueError("an invalid scenario has at least one problem")
        return cls(path, str(problems[0]), line=problems[0].line, problems=problems)

    def _where(self, problem: Problem) -> str:
        return f"{self.path}:{problem.line}: " if problem.line is not None else f"{self.path}: "
