"""The shell's error root: every error `consumers/` raises on purpose derives from `ShellError`
(itself a `FengqiaoError`), and says on itself whether a retry can help."""

from __future__ import annotations

from engine.problems import FengqiaoError


class ShellError(FengqiaoError):
    """Root of the shell's errors."""


class KafkaUnavailableError(ShellError):
    """Kafka could not be reached or did not answer in time; trying later may work."""

    retryable = True


class FencedError(ShellError):
    """Another process took our transactional id (or our group generation is gone for good):
    this process must stop; its successor carries on exactly once."""

    retryable = False


class StoppedError(ShellError):
    """A loop refused to go on (e.g. open cases of workflow versions not loaded)."""

    retryable = False
