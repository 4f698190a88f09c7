"""The memory store: cases in dicts, for tests, the demo and deployments that restore from
the changelog on every assignment (see the contract in engine/ports.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from engine.case import Case
from engine.problems import StoreClosedError
from engine.stores.codec import check_batch, decode_case


class MemoryStore:
    """Cases in dicts, as the (immutable) `Case` values written: nothing is encoded, so nothing
    survives the process. `get` returns the very object written."""

    def __init__(self) -> None:
        self._cases: dict[int, dict[str, Case]] = {}
        self._offsets: dict[int, int] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(partitions={sorted(self._cases)}, cases={self.count()})"

    @property
    def persistent(self) -> bool:
        return False

    def get(self, partition: int, case_id: str) -> Case | None:
        self._check_open()
        part = self._cases.get(partition)
        return None if part is None else part.get(case_id)

    def write(
        self,
        partition: int,
        upserts: Mapping[str, Case],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        self._check_open()
        cases, gone = check_batch(partition, upserts, deletes, changelog_offset)
        # Nothing below can raise: the batch is applied whole.
        part = self._cases.setdefault(partition, {})
        for case in cases:
            part[case.case_id] = case
        for case_id in gone:
            part.pop(case_id, None)
        if not part:
            del self._cases[partition]
        if changelog_offset is not None:
            self._offsets[partition] = changelog_offset

    def write_snapshots(
        self,
        partition: int,
        snapshots: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        upserts = {case_id: decode_case(value) for case_id, value in snapshots.items()}
        self.write(partition, upserts, deletes, changelog_offset)

    def changelog_offset(self, partition: int) -> int | None:
        self._check_open()
        return self._offsets.get(partition)

    def cases(self, partition: int) -> Iterator[Case]:
        self._check_open()
        part = self._cases.get(partition, {})
        return iter([part[case_id] for case_id in sorted(part)])

    def count(self, partition: int | None = None) -> int:
        self._check_open()
        if partition is None:
            return sum(len(part) for part in self._cases.values())
        return len(self._cases.get(partition, ()))

    def drop_partition(self, partition: int) -> None:
        self._check_open()
        self._cases.pop(partition, None)
        self._offsets.pop(partition, None)

    def close(self) -> None:
        self._closed = True
        self._cases.clear()
        self._offsets.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the memory store is closed")
