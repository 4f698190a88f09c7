"""How a case is stored: the snapshot JSON shared by the changelog and every store, and the
checks every store applies to a batch before it changes anything."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from engine.case import Case

MAX_OFFSET = 2**63 - 1
"""Kafka offsets are signed 64-bit, and so are SQLite integers."""


_SNAPSHOT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""`json.dumps` with these options builds a new encoder on every call; one changed case is
encoded per input, so the same encoder serves them all (it keeps no state between calls)."""


def encode_case(case: Case) -> str:
    """The snapshot JSON of a case: the changelog value and the SQLite row, byte for byte."""
    return _SNAPSHOT_JSON.encode(case.to_dict())


def decode_case(snapshot: str | bytes) -> Case:
    """The case of a snapshot (a changelog value may be passed as the raw bytes)."""
    return Case.from_dict(json.loads(snapshot))


def check_partition(partition: int) -> None:
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        raise ValueError(f"partition must be a non-negative int, not {partition!r}")


def check_batch(
    partition: int,
    upserts: Mapping[str, Case],
    deletes: Iterable[str],
    changelog_offset: int | None,
) -> tuple[list[Case], list[str]]:
    """Validate a whole batch before any of it is applied; returns (cases, case ids to delete)."""
    check_partition(partition)
    cases: list[Case] = []
    for case_id, case in upserts.items():
        if not isinstance(case, Case):
            raise TypeError(f"upsert {case_id!r} is a {type(case).__name__}, not a Case")
        if case_id != case.case_id:
            raise ValueError(f"upsert key {case_id!r} differs from its case_id {case.case_id!r}")
        cases.append(case)
    gone = list(deletes)
    for case_id in gone:
        if not isinstance(case_id, str):
            raise TypeError(f"delete {case_id!r} is a {type(case_id).__name__}, not a str")
        if case_id in upserts:
            raise ValueError(f"case {case_id!r} is both upserted and deleted in one batch")
    if changelog_offset is not None and (
        not isinstance(changelog_offset, int)
        or isinstance(changelog_offset, bool)
        or not 0 <= changelog_offset <= MAX_OFFSET
    ):
        raise ValueError(f"changelog_offset must be an int in [0, 2**63), not {changelog_offset!r}")
    return cases, gone
