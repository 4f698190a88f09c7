"""Polls gathered into one transaction: throughput for a backlog, latency for live traffic.

A transaction costs the same broker round trips whatever it holds (begin, the offsets, the
commit and its markers), and kafka-python ships a partition's records in fewer, fuller requests
when there are more of them; a case that changes several times in one batch also writes one
changelog snapshot instead of several. So while a loop is behind, it gathers its polls into one
batch, for at most `FENGQIAO_COMMIT_INTERVAL_MS` or `FENGQIAO_BATCH_MAX_RECORDS` inputs. As soon
as every partition it holds is caught up, what it gathered goes at once: live traffic never
waits for the interval, only a backlog fills it.

What is gathered is consumer positions that moved, nothing committed: a rebalance drops the
gathered messages of the partitions it touches (their next owner, or this member after it,
reads them again from the committed offsets), and so does a stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Mapping
from typing import Any

from kafka import TopicPartition

POLL_RECORDS_MAX = 1000
"""The most records one poll returns (kafka-python's `max_poll_records`): a batch is checked
against its limits between polls, so it can pass `FENGQIAO_BATCH_MAX_RECORDS` by less than
one poll."""


def poll_records(batch_max_records: int) -> int:
    """`max_poll_records` for a loop whose batches hold at most `batch_max_records` inputs."""
    return min(batch_max_records, POLL_RECORDS_MAX)


class Gathered:
    """The messages polled since the last batch, per partition, in offset order."""

    def __init__(
        self,
        interval_ms: int,
        max_records: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_ms / 1000
        self.max_records = max_records
        self.clock = clock
        self.messages: dict[TopicPartition, list[Any]] = {}
        self.count = 0
        self.started: float | None = None
        """When the first message of this batch was polled (None: nothing gathered)."""

    def add(self, polled: Mapping[TopicPartition, list[Any]]) -> None:
        for tp, messages in polled.items():
            if messages:
                self.messages.setdefault(tp, []).extend(messages)
                self.count += len(messages)
        if self.count and self.started is None:
            self.started = self.clock()

    def ready(self, caught_up: bool) -> bool:
        """Whether to run the batch now: something is gathered, and the loop is caught up, or
        the batch is full, or its interval is over."""
        if not self.count:
            return False
        return caught_up or self.count >= self.max_records or self.wait_ms() == 0

    def wait_ms(self) -> int:
        """How long the next poll may wait before this batch must go (the whole interval when
        nothing is gathered)."""
        if self.started is None:
            return round(self.interval_s * 1000)
        left = self.started + self.interval_s - self.clock()
        return max(0, round(left * 1000))

    def take(self) -> dict[TopicPartition, list[Any]]:
        """The gathered batch; the next one starts empty."""
        batch, self.messages = self.messages, {}
        self.count, self.started = 0, None
        return batch

    def drop(self, partitions: Container[int]) -> None:
        """Forget what was gathered from these partitions (their positions are being reset)."""
        for tp in [tp for tp in self.messages if tp.partition in partitions]:
            self.count -= len(self.messages.pop(tp))
        if not self.count:
            self.started = None
