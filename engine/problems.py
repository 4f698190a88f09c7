"""Problems found in an input file, reported as `PATH:LINE:COL: error: MESSAGE`.

One format for YAML syntax, schema and semantic errors, so editors and CI annotate them the
same way, and so a workflow author sees every problem of a file at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One problem at a 1-based line and column of a file."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # one problem, one line, whatever the source
        return f"{self.path}:{self.line}:{self.col}: error: {message}"


class FengqiaoError(Exception):
    """Root of the errors this project raises on purpose (so callers can catch ours only).

    `retryable` says whether doing the same again may succeed (a broker that is away) or not
    (bad input, a fenced producer, a bug): callers decide on it, never on library exception
    classes."""

    retryable: bool = False


class InvalidWorkflowError(FengqiaoError):
    """A workflow file (or folder) was refused; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreClosedError(FengqiaoError, RuntimeError):
    """A state store was used after `close()`."""
