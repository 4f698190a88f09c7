"""The timer index of a partition: which case is due next.

Timers live in the case records; this heap only answers "what is due by T" quickly. Entries are
never removed in place: when a case's timers change, a new entry is pushed and stale ones are
skipped on pop (lazy deletion), which keeps every update O(log n).
"""

from __future__ import annotations

import heapq
from datetime import datetime


class TimerIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def set(self, case_id: str, due: datetime | None) -> None:
        """Record the next due instant of a case (None: it has no pending timer)."""
        if due is None:
            self._due.pop(case_id, None)
            return
        if self._due.get(case_id) == due:
            return
        self._due[case_id] = due
        heapq.heappush(self._heap, (due, case_id))

    def peek(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[str]:
        """Cases with a timer due at or before `now`, in (due, case_id) order; removes them."""
        out: list[str] = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return out
            _, case_id = heapq.heappop(self._heap)
            del self._due[case_id]
            out.append(case_id)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
