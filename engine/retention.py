"""Retention: how long a closed case is kept before it is retired, decided in domain time.

Why: a service that lives for years must not keep every case it ever handled. Without this the
compacted changelog, the state stores, the restore time and the memory of an engine grow with
every case since the first day. A closed case is still worth keeping for a while: an upstream
retry of its last event is recognised as a duplicate, a late event is refused as an event of a
closed case (with its state in the dead letter), and the case can be looked up. After the
retention it is *retired*: the replay drops it, the shell deletes it from its store and writes
a tombstone (its key, no value) to the changelog, which compaction then removes.

The decision belongs to the core, in domain time, so that `run`, `simulate`, `demo` and the
benchmarks share it: a closed case retires at its closing instant plus the retention.

- An event that happened at or after that instant finds no case, whether or not the clock has
  retired it yet (it is refused as `unknown_case`; a re-sent `case.reported` opens a new case).
  So the answer never depends on when a clock moved: per partition in `run`, over the whole
  file in `simulate`, nor on how many retirements a batch may carry.
- The clock retires the case at that instant plus the workflow's largest allowed lateness
  (`lateness:`), as it fires timers: an event that happened before the instant and is delivered
  within its source's lateness still finds the case, as it would in `simulate`.

Closed cases of workflow versions no longer loaded retire too (without lateness): removing old
versions is exactly when their closed cases should go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.case import Case
from engine.machine import CompiledWorkflow

ZERO = timedelta(0)


def check_retention(retention: timedelta | None) -> timedelta | None:
    """None keeps closed cases for ever; anything else must be positive (a retention of 0
    would forget a case as it closes, and the duplicate of its closing event would open it
    again)."""
    if retention is not None and retention <= ZERO:
        raise ValueError(f"retention must be positive (None: keep for ever), not {retention}")
    return retention


def retires_at(case: Case, retention: timedelta | None) -> datetime | None:
    """The instant from which `case` counts as retired: when it closed (it entered its
    terminal state then, and nothing moves a closed case) plus the retention. None: the case
    is open, or closed cases are kept for ever."""
    if retention is None or not case.closed:
        return None
    return case.entered_at.astimezone(UTC) + retention


def retired_by(case: Case, retention: timedelta | None, at: datetime) -> bool:
    """Whether an event that happened at `at` finds `case` already retired."""
    end = retires_at(case, retention)
    return end is not None and at >= end


def retirement_fires_at(
    case: Case, retention: timedelta | None, workflow: CompiledWorkflow | None
) -> datetime | None:
    """When a clock retires `case`: `retires_at`, plus the largest allowed lateness of its
    workflow (so a late event that happened in time is still decided with the case)."""
    end = retires_at(case, retention)
    if end is None or workflow is None or not workflow.lateness:
        return end
    return end + max(workflow.lateness.values())
