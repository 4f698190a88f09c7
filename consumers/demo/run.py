"""`fengqiao demo`: a synthetic town's disputes through the engine, no Kafka needed.

Why it runs the way it does: the demo is what a newcomer sees first, so it must show the real
thing, not a mock. The town's events (`consumers.demo.town`) go through the core's batch step
(`engine.batch.BatchReplay`) with the SQLite store exactly as one partition of `fengqiao run`
does (cases are read from the store; the changes are written back after each batch, then
confirmed), on a virtual clock that runs `speed` days
per second. `/metrics` is served while it runs. At the end it prints a summary per tier and
the domain ratios, and writes a self-contained HTML report. Batches are one virtual day;
`consumers.demo.files` makes each one a commit, so Ctrl-C leaves a folder that the next run
resumes from.

Closed cases retire as in `fengqiao run` (`DemoOptions.retention`, by default the service's):
a retired case is deleted from the store, so a long town's store holds only its open and
recently closed cases.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from consumers.demo.files import (
    STORE_PARTITION,
    Checkpoint,
    FolderError,
    RecordLog,
    RunFolder,
)
from consumers.demo.report import RunInfo, write_report
from consumers.demo.summary import print_summary
from consumers.demo.town import DAY, Town, TownSpec
from consumers.demo.town_stats import Tally, ladders_of
from consumers.demo.view import update_view
from consumers.runtime.http import HttpServer
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.observe import observe_batch
from consumers.runtime.settings import Settings
from engine.batch import BatchReplay, BatchResult, Input
from engine.core import Engine
from engine.problems import InvalidWorkflowError
from engine.registry import WorkflowRegistry
from engine.stores import SqliteStore

DEFAULT_SPEED = 10.0
"""Virtual days per second: the default 90 days take about nine seconds to watch."""

DEFAULT_PORT = 9464
"""The port of `fengqiao run`; when it is taken the demo picks a free one and says so."""

INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""

RETENTION = timedelta(days=Settings.model_fields["retention_days"].default)
"""Closed cases are kept this long, then retired: the default of `fengqiao run`."""


@dataclass(frozen=True)
class DemoOptions:
    spec: TownSpec
    workflows: Path
    out: Path
    speed: float = DEFAULT_SPEED
    port: int | None = None
    fresh: bool = False
    retention: timedelta | None = RETENTION
    """How long a closed case is kept in the store (None: for ever)."""


@dataclass
class _Run:
    """Everything one run touches, so the loop's helpers stay small."""

    town: Town
    replay: BatchReplay
    store: SqliteStore
    log: RecordLog
    tally: Tally
    metrics: EngineMetrics
    metrics_registry: CollectorRegistry
    at: Checkpoint
    """The last commit."""
    base: Checkpoint
    """The commit this process resumed from (counters of earlier processes)."""
    pace: _Pace
    registry: WorkflowRegistry
    stop: bool = False


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    console = console or Console()
    try:
        registry = WorkflowRegistry.load(options.workflows)
    except InvalidWorkflowError as err:
        _say(console, str(err))
        return 1
    folder = RunFolder(options.out)
    try:
        _claim(folder, options)
    except FolderError as err:
        _say(console, f"error: {err}")
        return 2
    try:
        town = Town(options.spec, registry)
    except ValueError as err:
        _say(console, f"error: {options.workflows}: {err}")
        return 1
    for name in town.missing:
        _say(console, f"note: no workflow {name!r} in {options.workflows}; its cases are skipped")
    store = SqliteStore(folder.store)
    log = RecordLog(folder)
    try:
        run = _resume(town, registry, store, log, options)
        with _serving(run.metrics_registry, options.port, console) as port:
            _say(
                console,
                f"metrics: http://127.0.0.1:{port}/metrics   (Ctrl-C stops; run again to resume)",
            )
            complete = _play(run, options, console)
    except FolderError as err:
        _say(console, f"error: {err}")
        return 2
    except KeyboardInterrupt:  # the second Ctrl-C: the last committed day stands
        _say(console, "aborted: run the same command again to resume after the last whole day")
        return INTERRUPTED
    finally:
        log.close()
        store.close()
    return _finish(run, folder, options, complete, console)


def _resume(
    town: Town,
    registry: WorkflowRegistry,
    store: SqliteStore,
    log: RecordLog,
    options: DemoOptions,
) -> _Run:
    """Cut the folder back to its last commit and rebuild everything from it: the tally from
    the records, the timer index and the case gauges from the store."""
    at = log.recover(store.changelog_offset(STORE_PARTITION))
    log.open()
    tally = Tally(ladders_of(registry), options.spec.start, town.tz)
    for record in log.read():
        tally.add(record)
    replay = BatchReplay(Engine(registry, options.retention),
                         load=lambda case_id: store.get(STORE_PARTITION, case_id),
                         restored=store.cases(STORE_PARTITION))  # fmt: skip
    metrics_registry = CollectorRegistry()
    metrics = EngineMetrics.create(metrics_registry, registry)
    metrics.observe_cases(store.cases(STORE_PARTITION), STORE_PARTITION)
    metrics.partitions.set(1)
    pace = _Pace(options.speed, at.day)
    return _Run(town, replay, store, log, tally, metrics, metrics_registry, at, at, pace,
                registry)  # fmt: skip


def _finish(
    run: _Run, folder: RunFolder, options: DemoOptions, complete: bool, console: Console
) -> int:
    view = update_view(folder.records, folder.view, run.registry)
    info = RunInfo(run.at.position, run.at.duplicates, run.at.seconds, complete, view.url)
    report = write_report(folder.report, run.tally, options.spec, info)
    print_summary(console, run.tally, info, options.spec)
    _say(console, f"report: {report.resolve()}")
    _say(console, f"store:  {folder.store.resolve()}")
    _say(console, f"view:   {view.path.resolve()}   (fengqiao cases list --db {view.url})")
    if not complete:
        _say(
            console,
            f"interrupted after day {run.at.day} of {options.spec.days}: "
            "run the same command again to resume",
        )
        return INTERRUPTED
    return 0


def _say(console: Console, text: str) -> None:
    """A message line: never wrapped (paths and URLs must stay copyable), no markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _claim(folder: RunFolder, options: DemoOptions) -> None:
    """Start a new town in the folder, or check that the one there is the one asked for."""
    if options.fresh:
        folder.clear()
    found = folder.read_spec()
    if found is None:
        folder.clear()
        folder.write_spec(options.spec)
    elif found != options.spec:
        raise FolderError(
            f"{folder.out} holds another town ({_describe(found)}); pass --fresh to replace "
            f"it, or --out for another folder"
        )


def _describe(spec: TownSpec) -> str:
    return (
        f"--population {spec.population} --seed {spec.seed} --days {spec.days} --start {spec.start}"
    )


@contextmanager
def _serving(registry: CollectorRegistry, port: int | None, console: Console) -> Iterator[int]:
    http = HttpServer(registry, alive=lambda: True, ready=lambda: True)
    try:
        bound = http.start("127.0.0.1", DEFAULT_PORT if port is None else port)
    except OSError:
        if port is not None:
            raise
        bound = http.start("127.0.0.1", 0)
        _say(console, f"note: port {DEFAULT_PORT} is busy, serving on {bound} instead")
    try:
        yield bound
    finally:
        http.stop()


@contextmanager
def _ctrl_c(run: _Run, console: Console) -> Iterator[None]:
    """The first Ctrl-C finishes the current virtual day and commits; a second one aborts
    at once (the folder is still consistent: recovery cuts back to the last commit)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if run.stop:
            raise KeyboardInterrupt
        run.stop = True
        _say(console, "stopping after this virtual day… (Ctrl-C again to abort at once)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (embedded in a test runner's worker): no handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _play(run: _Run, options: DemoOptions, console: Console) -> bool:
    """Run the remaining days; True when the town's whole period is done."""
    days = options.spec.days
    if run.at.day >= days:
        _say(
            console,
            f"{options.out} already holds the complete run: showing it (--fresh to run it again)",
        )
        return True
    if run.at.commit:
        _say(console, f"resuming after day {run.at.day} ({run.at.position:,} events applied)")
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("days · {task.fields[date]} · {task.fields[events]:,} events · "
                   "{task.fields[open]:,} open · {task.fields[breaches]:,} SLA breaches"),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip
    with progress, _ctrl_c(run, console):
        task = progress.add_task("town", total=days, completed=run.at.day, date=_date(run),
                                 events=run.at.position, open=0, breaches=0)  # fmt: skip
        _show(progress, task, run)
        batch = _Batch(run.at.day)
        for event in run.town.events(skip=run.at.position):
            while event.at >= run.town.day_start(batch.day + 1):
                if not _end_day(run, batch, lambda: _show(progress, task, run)):
                    return False
            _feed(run, batch, event.raw)
        while batch.day < days:
            if not _end_day(run, batch, lambda: _show(progress, task, run)):
                return batch.day >= days
    return True


@dataclass
class _Batch:
    """The virtual day being played: the events that arrived in it, not yet applied."""

    day: int
    inputs: list[Input] = field(default_factory=list)


def _end_day(run: _Run, batch: _Batch, show: Callable[[], None]) -> bool:
    """The day through the core's batch step (its events, then its remaining timers), commit
    it, keep pace; False when asked to stop."""
    batch.day += 1
    result = run.replay.step(batch.inputs, fire_until=run.town.day_start(batch.day))
    _commit(run, batch, result)
    show()
    batch.inputs = []
    if run.stop:
        return False
    run.pace.wait(batch.day, lambda: run.stop)
    return True


def _date(run: _Run) -> str:
    """The virtual day being played, for the progress bar."""
    spec = run.town.spec
    return (spec.start + DAY * run.at.day).isoformat() if run.at.day < spec.days else "done"


def _show(progress: Progress, task: TaskID, run: _Run) -> None:
    date = _date(run)
    breaches = sum(w.breaches for w in run.tally.workflows.values())
    open_now = run.tally.open_cases()
    progress.update(task, completed=run.at.day, date=date, events=run.at.position,
                    open=open_now, breaches=breaches)  # fmt: skip


def _feed(run: _Run, batch: _Batch, raw: bytes) -> None:
    batch.inputs.append(Input(raw, f"town:{run.at.position + len(batch.inputs)}"))


def _commit(run: _Run, batch: _Batch, result: BatchResult) -> None:
    """One batch: records, checkpoint, then the store (the commit point), then metrics."""
    started = time.perf_counter()
    lines = []
    for out in result.outputs:
        line = out.value
        run.tally.add(json.loads(line))
        lines.append(line + b"\n")
    checkpoint = Checkpoint(
        commit=run.at.commit + 1, position=run.at.position + result.events, day=batch.day,
        duplicates=run.at.duplicates + result.duplicates,
        seconds=run.base.seconds + run.pace.busy(),
    )  # fmt: skip
    checkpoint = run.log.prepare(lines, checkpoint)
    run.store.write(STORE_PARTITION, result.upserts, result.deletes,
                    changelog_offset=checkpoint.commit)  # fmt: skip
    run.replay.confirm()
    run.at = checkpoint
    _count(run, result, time.perf_counter() - started)


def _count(run: _Run, result: BatchResult, seconds: float) -> None:
    """The metrics of a committed batch, through the very call `fengqiao run` makes (no
    processing latency: the demo's clock is virtual, the lag would mean nothing)."""
    metrics = run.metrics
    observe_batch(metrics, STORE_PARTITION, result)
    metrics.tally.publish()
    metrics.transactions.labels("committed").inc()
    metrics.batch_seconds.observe(seconds)
    metrics.pending_timers.set(run.replay.pending_timers)
    metrics.cases.set(run.store.count(STORE_PARTITION))


class _Pace:
    """The virtual clock's speed limit: day `d` may not end before `d / speed` seconds after
    the run (re)started. Keeps the time spent sleeping apart, so busy time can be reported."""

    def __init__(self, speed: float, first_day: int) -> None:
        self.speed = speed
        self.first_day = first_day
        self.started = time.perf_counter()
        self.slept = 0.0

    def busy(self) -> float:
        return time.perf_counter() - self.started - self.slept

    def wait(self, day: int, stop: Callable[[], bool]) -> None:
        if self.speed <= 0:
            return
        due = self.started + (day - self.first_day) / self.speed
        while not stop() and (left := due - time.perf_counter()) > 0:
            before = time.perf_counter()
            time.sleep(min(left, 0.05))
            self.slept += time.perf_counter() - before
