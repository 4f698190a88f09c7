"""Reading the changelog (`fengqiao.case-state`): the one reader for restore, `migrate` and the
benchmarks.

The changelog is compacted: per case id the latest value wins, an empty value is a tombstone.
`read_changelog` reads one partition from an offset (or the beginning) up to the end it saw when
it started, with `read_committed` (aborted snapshots are never read), and yields the snapshots
in chunks — latest value per case id within the chunk, raw bytes, nothing decoded — each with
the position after it, so a store can apply a chunk and its offset atomically and a big
partition never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from consumers.kafka.transaction import client_config
from consumers.runtime.settings import Settings

CHUNK = 5_000
"""Changelog records per chunk (bounds memory on big partitions)."""


@dataclass
class ChangelogChunk:
    partition: int
    upserts: dict[str, bytes] = field(default_factory=dict)
    """Case id → its latest snapshot in the chunk (the JSON of `encode_case`, as read)."""
    deletes: set[str] = field(default_factory=set)
    """Case ids whose latest record in the chunk is a tombstone."""
    position: int = 0
    """The next changelog offset to read after this chunk."""

    def add(self, key: bytes, value: bytes | None) -> None:
        case_id = key.decode()
        if value is None:
            self.upserts.pop(case_id, None)
            self.deletes.add(case_id)
        else:
            self.upserts[case_id] = value
            self.deletes.discard(case_id)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes)


def changelog_partitions(settings: Settings) -> list[int]:
    """The partition numbers of the changelog topic."""
    reader = KafkaConsumer(**client_config(settings), group_id=None)
    try:
        return sorted(reader.partitions_for_topic(settings.topic_case_state) or ())
    finally:
        reader.close()


def read_changelog(
    settings: Settings,
    partition: int,
    start: int | None = None,
    *,
    chunk: int = CHUNK,
    remaining: Callable[[int], None] | None = None,
) -> Iterator[ChangelogChunk]:
    """The snapshots of `partition` from `start` (None: the beginning) to the end offset seen
    at the start, in chunks; the last chunk (possibly empty) ends at that end offset.
    `remaining(n)` is told how many records are left before each poll (restore progress)."""
    tp = TopicPartition(settings.topic_case_state, partition)
    # `earliest`: a start that fell out of the log (retention) means reading from the beginning.
    reader = KafkaConsumer(**client_config(settings), group_id=None,
                           isolation_level="read_committed", enable_auto_commit=False,
                           auto_offset_reset="earliest")  # fmt: skip
    try:
        reader.assign([tp])
        if start is None:
            reader.seek_to_beginning(tp)
        else:
            reader.seek(tp, start)
        end = reader.end_offsets([tp])[tp]
        current = ChangelogChunk(partition)
        while (left := end - reader.position(tp)) > 0:
            if remaining is not None:
                remaining(left)
            for message in reader.poll(timeout_ms=500).get(tp, []):
                current.add(message.key, message.value)
            if len(current) >= chunk:
                current.position = reader.position(tp)
                yield current
                current = ChangelogChunk(partition)
        if remaining is not None:
            remaining(0)
        current.position = end
        yield current
    finally:
        reader.close()
