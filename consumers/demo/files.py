"""The demo's output folder: the SQLite store, the records it emitted, and how far it got.

Why this protocol: `fengqiao demo` runs its town like one partition of `fengqiao run`, and
Ctrl-C (or a kill) at any instant must leave a folder the next run resumes from, with no record
lost or counted twice. Kafka gets that from one transaction over records, changelog and
offsets; here the commit point is the SQLite store's atomic `write`, and everything else is
written *before* it and cut back to it on recovery:

1. append the batch's output records to `records.jsonl` (the stand-in for
   `fengqiao.transitions`), flush;
2. append a checkpoint line to `records.index`: commit number, generator position (events
   applied), length of `records.jsonl`, virtual days done, running counters; flush;
3. `store.write(0, changed cases, changelog_offset=commit number)`: one SQLite transaction.

The demo has no changelog topic, so partition 0's offset slot in the store holds the number of
the last committed batch. On start, `recover` reads it, truncates `records.jsonl` to the length
that checkpoint names and drops later checkpoint lines: whatever was written after the last
commit never happened. The generator is deterministic, so resuming means skipping `position`
events and going on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from consumers.demo.town import TownSpec

STORE_PARTITION = 0
"""The town is one partition, as one `fengqiao run` process would own it."""


class FolderError(Exception):
    """The output folder cannot be resumed as asked; the message says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a committed batch left the run (all counters are running totals)."""

    commit: int = 0
    position: int = 0
    """Events of the town's stream applied (the generator resumes after them)."""
    bytes: int = 0
    """Length of records.jsonl after this batch."""
    day: int = 0
    """Virtual days completed (their timers have fired)."""
    duplicates: int = 0
    seconds: float = 0.0
    """Time spent in the engine and the store, excluding the speed limit's sleeps."""


class RunFolder:
    """The files of one demo town; `out/demo` by default."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.store = out / "town.sqlite"
        self.spec = out / "town.json"
        self.records = out / "records.jsonl"
        self.index = out / "records.index"
        self.report = out / "report.html"
        self.view = out / "view.sqlite"
        """The read model of the town's records (consumers/demo/view.py)."""

    def read_spec(self) -> TownSpec | None:
        if not self.spec.exists():
            return None
        data = json.loads(self.spec.read_text(encoding="utf-8"))
        return TownSpec(data["population"], data["seed"], date.fromisoformat(data["start"]),
                        data["days"])  # fmt: skip

    def write_spec(self, spec: TownSpec) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        data = {**asdict(spec), "start": spec.start.isoformat()}
        self.spec.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def clear(self) -> None:
        """Forget the town in this folder (`--fresh`)."""
        for path in (self.store, self.spec, self.records, self.index, self.report, self.view):
            path.unlink(missing_ok=True)
        for database in (self.store, self.view):
            for suffix in ("-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)


class RecordLog:
    """`records.jsonl` plus its checkpoint index, appended batch by batch."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self._records: BinaryIO | None = None
        self._index: BinaryIO | None = None

    def recover(self, commit: int | None) -> Checkpoint:
        """Cut both files back to `commit` (the store's) and return its checkpoint."""
        lines = self._index_lines()
        if commit is None or commit == 0:
            found, kept = Checkpoint(), []
        else:
            kept = [line for line in lines if json.loads(line)["commit"] <= commit]
            if not kept or json.loads(kept[-1])["commit"] != commit:
                raise FolderError(
                    f"{self.folder.index} has no checkpoint {commit} (the store's last batch): "
                    "the folder was edited or mixed up; start over with --fresh"
                )
            found = Checkpoint(**json.loads(kept[-1]))
        self.folder.out.mkdir(parents=True, exist_ok=True)
        with self.folder.records.open("ab") as records:
            records.truncate(found.bytes)
        self.folder.index.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        return found

    def open(self) -> None:
        self._records = self.folder.records.open("ab")
        self._index = self.folder.index.open("ab")

    def close(self) -> None:
        for handle in (self._records, self._index):
            if handle is not None:
                handle.close()
        self._records = self._index = None

    def prepare(self, lines: list[bytes], checkpoint: Checkpoint) -> Checkpoint:
        """Steps 1 and 2: the batch's records, then its checkpoint (with the new length)."""
        assert self._records is not None
        assert self._index is not None
        self._records.write(b"".join(lines))
        self._records.flush()
        done = Checkpoint(**{**asdict(checkpoint), "bytes": self._records.tell()})
        self._index.write(json.dumps(asdict(done)).encode() + b"\n")
        self._index.flush()
        return done

    def read(self) -> Iterator[dict[str, Any]]:
        """The committed records, oldest first (call after `recover`)."""
        if not self.folder.records.exists():
            return
        with self.folder.records.open("rb") as records:
            for line in records:
                yield json.loads(line)

    def _index_lines(self) -> list[str]:
        if not self.folder.index.exists():
            return []
        text = self.folder.index.read_text(encoding="utf-8")
        # A line cut short by a crash cannot belong to a committed batch: it was being written.
        return [line for line in text.splitlines() if line.endswith("}")]
