"""Polls gathered into one transaction: throughput for a backlog, latency for live traffic.

A transaction costs the same broker round trips whatever it holds (begin, the offsets, the
commit and its markers), and kafka-python ships a partition's records in fewer, fuller requests
when there are more of them; a case that changes several times in one batch also writes one
changelog snapshot instead of several. So while a loop is behind, it gathers its polls into one
batch, for at most `FENGQIAO_COMMIT_INTERVAL_MS` or `FENGQIAO_BATCH_MAX_RECORDS` inputs. As soon
as it is no longer behind, what it gathered goes at once: live traffic never waits for the
interval, only a backlog fills it. "Behind" (`behind`) is a full poll, or a partition more than
a poll short of its high watermark; not "short of the high watermark" at all, which a
`read_committed` consumer is whenever a producer's transaction is open on the partition (the
adapters write case events in transactions), nor a partition whose watermark is not known yet.

What is gathered is consumer positions that moved, nothing committed. When a rebalance revokes
a partition, its gathered messages are dropped and its position is set back to the first of
them (`drop` says where): kafka-python's eager rebalance keeps the position of a partition that
stays with this member, so without the seek they would be skipped. A stop drops them too: the
next owner reads them again from the committed offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from kafka import TopicPartition

POLL_RECORDS_MAX = 1000
"""The most records one poll returns (kafka-python's `max_poll_records`): a batch is checked
against its limits between polls, so it can pass `FENGQIAO_BATCH_MAX_RECORDS` by less than
one poll."""


def poll_records(batch_max_records: int) -> int:
    """`max_poll_records` for a loop whose batches hold at most `batch_max_records` inputs."""
    return min(batch_max_records, POLL_RECORDS_MAX)


def behind(polled: int, poll_max: int, lags: Iterable[int | None]) -> bool:
    """Whether more input is waiting now: the last poll came back full, or some partition lags
    its high watermark by more than a poll (None: not known yet, which says nothing)."""
    return polled >= poll_max or any(lag is not None and lag > poll_max for lag in lags)


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

    def add(self, polled: Mapping[TopicPartition, list[Any]]) -> int:
        """Gather a poll; returns how many messages it held."""
        before = self.count
        for tp, messages in polled.items():
            if messages:
                self.messages.setdefault(tp, []).extend(messages)
                self.count += len(messages)
        if self.count and self.started is None:
            self.started = self.clock()
        return self.count - before

    def ready(self, behind: bool) -> bool:
        """Whether to run the batch now: something is gathered, and the loop is not behind, or
        the batch is full, or its interval is over."""
        if not self.count:
            return False
        return not behind or self.count >= self.max_records or self.wait_ms() == 0

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

    def drop(self, partitions: Container[int]) -> dict[TopicPartition, int]:
        """Forget what was gathered from these partitions; returns the offset of the first
        message dropped per partition (where the consumer must read from again)."""
        first: dict[TopicPartition, int] = {}
        for tp in [tp for tp in self.messages if tp.partition in partitions]:
            messages = self.messages.pop(tp)
            first[tp] = messages[0].offset
            self.count -= len(messages)
        if not self.count:
            self.started = None
        return first
