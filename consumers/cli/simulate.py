"""`fengqiao simulate`: file in, records out, through the pure replay in `engine.replay`."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TextIO

from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay, ReplayStats


def simulate(
    registry: WorkflowRegistry, events: Path, out: Path | None, until: datetime | None
) -> ReplayStats:
    """Replay `events` (JSON lines, file order); records go to `out` or stdout."""
    replay = Replay(Engine(registry))
    with ExitStack() as stack:
        sink: TextIO = (
            stack.enter_context(out.open("w", encoding="utf-8", newline="\n"))
            if out
            else sys.stdout
        )
        source = stack.enter_context(events.open("rb"))
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            for record in replay.feed(line.rstrip(b"\r\n"), f"{events.name}:{number}"):
                sink.write(record.model_dump_json() + "\n")
        if until is not None:
            for record in replay.advance(until):
                sink.write(record.model_dump_json() + "\n")
    return replay.stats
