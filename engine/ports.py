"""The ports of the core: what the shell must provide, as `Protocol`s, all in one place.

- `Clock`: where the shell gets time from (the core never reads a clock: it is handed `now`).
- `StateStore`: the cases of each assigned partition and how far they are restored from the
  changelog; implementations in `engine/stores/` (memory, SQLite), one contract suite over both
  in tests/unit/test_store.py.
- `Transaction`: one exactly-once step of a consume-transform-produce loop (poll, send, commit
  the consumed offsets with the output, or abort and rewind); implemented over Kafka in
  `consumers/kafka/transaction.py`, faked in the unit tests of the loops.

The state store contract:

The Kafka shell keeps every open case of the partitions it owns in a `StateStore`. The source of
truth is the compacted changelog topic `fengqiao.case-state` (key = case_id, value = the
snapshot JSON of `encode_case`, or a tombstone): on assignment the shell restores a partition by
reading the changelog from `changelog_offset(partition)` (or from the beginning when it is None)
and writing what it reads; afterwards it writes each batch once the Kafka transaction that
produced it has committed. A store is therefore only ever *behind* the changelog, never ahead.
A tombstone is a retired case (a closed case past its retention, engine/retention.py): the
batch that retires it deletes it, and a restore that reads the tombstone deletes it too. A
store that missed a tombstone (compaction removes them after a day; a persistent store may
resume from an older offset) still holds the closed case, whose retirement instant has passed:
the next clock tick retires it again, with a new tombstone.

Contract of every implementation (tests/unit/test_store.py runs one suite over all of them):

- `write` is one atomic batch: the upserts, the deletes and the new changelog offset are applied
  together, or — when it raises — not at all. The whole batch is checked (and, for SQLite,
  encoded) before anything changes. A case id may not be both upserted and deleted in one batch;
  deleting an absent case is a no-op (tombstones may name cases the store never saw).
- `changelog_offset` is the *next* changelog offset to read for that partition (the consumer's
  position after the last record applied), stored in the same atomic write as the cases.
- `cases(partition)` yields in case_id order and tolerates writes during the iteration (whether
  it then sees the written cases is unspecified); the shell rebuilds its `TimerIndex` and gauges
  from it after a restore.
- Stores are not thread-safe: use each one from a single thread (the consumer loop), or
  serialise calls yourself. Other threads (HTTP, metrics) should read figures the loop publishes.
- After `close()`, every other method raises `StoreClosedError`; `close()` itself is idempotent.

`open_store("memory")` is for tests, the demo and small deployments that restore from the
changelog on every assignment; `open_store("sqlite:PATH")` keeps the cases on disk so a restart
or a reassignment of the same partition only reads the changelog tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from engine.case import Case


class Clock(Protocol):
    """Where the shell gets time from: the wall clock in production, fixed ones in tests."""

    def now(self) -> datetime: ...


PartitionKey = Any
"""A (topic, partition) pair: kafka-python's `TopicPartition` namedtuple in practice."""


class Send(NamedTuple):
    """One record to produce inside a transaction (partition None: by the key's hash; value
    None: a tombstone, which deletes the key from a compacted topic)."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None


class GroupView(NamedTuple):
    """This member's state in its consumer group (`<stable>`, `<rebalancing>`, `<unjoined>`),
    the generation it last joined, and whether a join request is waiting for the broker."""

    state: str
    generation: int
    joining: bool = False


class Transaction(Protocol):
    """One exactly-once step of a consume-transform-produce loop (consumers/kafka/transaction.py).

    `poll` returns the next input per partition; `commit` puts the sends and the consumed
    offsets in one transaction and answers True, or aborts, rewinds the input to the committed
    offsets and answers False (retryable); an error that forbids going on (a fenced producer)
    is raised. A rebalance listener passed to `open` is called from inside `poll`."""

    def open(self, topics: Sequence[str], listener: Any) -> None: ...

    def poll(self, timeout_ms: int) -> Mapping[PartitionKey, list[Any]]: ...

    def commit(self, sends: Iterable[Send], offsets: Mapping[PartitionKey, int]) -> bool: ...

    def rewind(self, partitions: Iterable[PartitionKey] | None = None) -> None: ...

    def seek(self, tp: PartitionKey, offset: int) -> None:
        """Read `tp` from `offset` on (local: no broker round trip; safe inside a listener)."""
        ...

    def caught_up(self, tp: PartitionKey) -> bool: ...

    def lag(self, tp: PartitionKey) -> int | None: ...

    def group(self) -> GroupView: ...

    def group_lag(self, topic: str) -> tuple[int, int]:
        """(partitions of `topic`, records the group has not committed over all of them)."""
        ...

    def rejoin(self) -> None:
        """Leave the group and join it again: a rebalance on fresh metadata (for a group whose
        assignment left every input partition unheld)."""
        ...

    def close(self) -> None: ...


class StateStore(Protocol):
    """The cases of each assigned partition and the changelog offset each is restored up to."""

    @property
    def persistent(self) -> bool:
        """True when the data outlives the process, so a restore may resume from
        `changelog_offset` instead of reading the changelog from the beginning."""
        ...

    def get(self, partition: int, case_id: str) -> Case | None:
        """The stored case, or None."""
        ...

    def write(
        self,
        partition: int,
        upserts: Mapping[str, Case],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        """Apply one batch atomically: all of it, or nothing when it raises.

        `upserts` maps each case_id to its new case (the key must equal `case.case_id`);
        `deletes` are case ids to remove (absent ones are ignored; none may also be upserted);
        `changelog_offset`, when given, is the next changelog offset to read for `partition`
        once this batch is applied (None keeps the stored one). Raises TypeError or ValueError
        for a malformed batch.
        """
        ...

    def write_snapshots(
        self,
        partition: int,
        snapshots: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        """`write` for changelog values as they were read (the UTF-8 JSON of `encode_case`),
        keyed by case id: the restore path. A store that keeps snapshots as text stores them
        unparsed (a million cases restore in half the time; a corrupt one fails when `cases`
        reads it, still inside the restore); the others decode them."""
        ...

    def changelog_offset(self, partition: int) -> int | None:
        """The next changelog offset to read; None: never restored, start from the beginning."""
        ...

    def cases(self, partition: int) -> Iterator[Case]:
        """Every case of `partition`, in case_id order."""
        ...

    def count(self, partition: int | None = None) -> int:
        """The number of cases of `partition`, or of all partitions."""
        ...

    def drop_partition(self, partition: int) -> None:
        """Forget the cases and the changelog offset of `partition` (on revocation, when the
        store is not persistent; a persistent store may keep them and later resume from its
        changelog offset)."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...
