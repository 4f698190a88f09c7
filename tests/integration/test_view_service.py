"""`fengqiao view` on a real broker, behind a real engine, into PostgreSQL and SQLite.

The engine (`fengqiao run`, events clock) reads the bundled example streams and sixty days of a
small town; the view, a separate process, follows its output into the read model and is
SIGKILLed twice mid-stream. At the end every case's row must say what `simulate` says of the
case for the same input (state, tier, deadline and the rest of the row), the history must hold
each published record exactly once (seq contiguous), and the whole read model must equal one
projected in a single uninterrupted pass over the same topic. The API (`GET /api/cases/{id}`)
and `fengqiao cases list --status overdue --json` must say the same.

The engine reads ONE input partition here: with one partition its watermark is `simulate`'s
(the examples deliver some events late on purpose, and with several partitions each has its own
watermark, so a late event meets different fired timers: an engine matter, not the view's).
The transitions topic has three partitions, so the view reads several.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewPartitions, NewTopic
from prometheus_client import CollectorRegistry

from consumers.cli.main import main
from consumers.demo.town import Town, TownSpec
from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings, load_settings
from consumers.view import consume, tier_order
from consumers.view.access import hash_token
from consumers.view.consume import ViewConsumer
from consumers.view.metrics import ViewMetrics
from consumers.view.projection import Consumed, project
from consumers.view.queries import is_overdue
from consumers.view.settings import load_view_config
from consumers.view.tables import create_view_engine, history, prepare
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.integration.harness import ROOT, EngineProcess, produce, tick_events
from tests.view.streams import by_case, dump, expected_row, replay, row_fields, stored_rows

END = "2026-06-01T00:00:00+08:00"
"""The tick: the engine's watermark (and `simulate`'s) moves here at the end of the input."""
TOWN = TownSpec(population=15_000, start=date(2026, 1, 5), days=60)
EXAMPLES = ("dispute-escalation", "petition", "hotline-12345")


class ViewProcess:
    """`fengqiao view` in a subprocess, configured through FENGQIAO_* variables."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consumers.cli.main", "view"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def port(self, timeout_s: float = 60) -> int:
        """The HTTP port of the latest start (FENGQIAO_VIEW_HTTP_PORT=0), from its log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.findall(r'"port": (\d+), "api": true', self.log_path.read_text())
            if found:
                return int(found[-1])
            assert self.proc is not None
            assert self.proc.poll() is None, self.log_path.read_text()
            time.sleep(0.2)
        raise AssertionError("the view did not say its port:\n" + self.log_path.read_text())


def _lines(registry: WorkflowRegistry) -> list[bytes]:
    examples = [
        line
        for name in EXAMPLES
        for line in (ROOT / "workflows" / "examples" / f"{name}.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    town = [e.raw for e in Town(TOWN, registry).events()]
    return examples + town + tick_events(1, END)


def _setup(
    bootstrap: str, admin: Any, unique_name: Callable[[str], str]
) -> tuple[Settings, dict[str, str]]:
    prefix = unique_name("fq")
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap,
        "FENGQIAO_GROUP_ID": f"{prefix}-group",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix,
        "FENGQIAO_TOPIC_CASE_EVENTS": f"{prefix}.case-events",
        "FENGQIAO_TOPIC_TRANSITIONS": f"{prefix}.transitions",
        "FENGQIAO_TOPIC_CASE_STATE": f"{prefix}.case-state",
        "FENGQIAO_TOPIC_DEAD_LETTER": f"{prefix}.dead-letter",
        "FENGQIAO_INTAKE_TOPIC_PREFIX": f"{prefix}.intake.",
        "FENGQIAO_PARTITIONS": "1",
        "FENGQIAO_WORKFLOWS": str(ROOT / "workflows"),
        "FENGQIAO_CLOCK": "events",
        "FENGQIAO_RETENTION_DAYS": "0",  # `simulate` keeps closed cases too
        "FENGQIAO_HTTP_PORT": "0",
        "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_ROLE": "engine",
    }
    settings = load_settings({
        "bootstrap_servers": bootstrap, "partitions": 1,
        "topic_case_events": env["FENGQIAO_TOPIC_CASE_EVENTS"],
        "topic_transitions": env["FENGQIAO_TOPIC_TRANSITIONS"],
        "topic_case_state": env["FENGQIAO_TOPIC_CASE_STATE"],
        "topic_dead_letter": env["FENGQIAO_TOPIC_DEAD_LETTER"],
        "intake_topic_prefix": env["FENGQIAO_INTAKE_TOPIC_PREFIX"],
    })  # fmt: skip
    admin.create_topics([NewTopic(settings.topic_transitions, 3, 1)])  # before the engine's own
    create_topics(settings)
    return settings, env


def _history_count(db: sa.Engine) -> int:
    try:
        with db.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(history)) or 0)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no tables yet
        return 0


def _wait_for(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _committed(bootstrap: str, topic: str) -> list[Consumed]:
    """Every committed record of the topic with its offset: the uninterrupted pass's input."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                           isolation_level="read_committed")  # fmt: skip
    try:
        tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic))]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        ends = reader.end_offsets(tps)
        items: list[Consumed] = []
        while any(reader.position(tp) < ends[tp] for tp in tps):
            for tp, messages in reader.poll(timeout_ms=500).items():
                items += [Consumed(topic, tp.partition, m.offset, m.value) for m in messages]
        return sorted(items, key=lambda c: (c.partition, c.offset))
    finally:
        reader.close()


def _api_case(port: int, token: str, case_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/cases/{case_id}",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - local http
        found: dict[str, Any] = json.loads(answer.read())
        return found


@pytest.fixture(params=["postgresql", "sqlite"])
def view_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The read model's URL, as `FENGQIAO_VIEW_DB` takes it: a fresh PostgreSQL database of the
    session's server, or a SQLite file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'view.sqlite'}"
    url: sa.URL = request.getfixturevalue("postgres_url")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def engines() -> Iterator[Callable[[str], sa.Engine]]:
    """`engines(url)`: a SQLAlchemy engine disposed at the end of the test, pass or fail."""
    made: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        made.append(create_view_engine(url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.mark.timeout(600)
def test_the_view_equals_simulate_and_survives_sigkill_mid_stream(  # noqa: PLR0917 - fixtures
    view_url: str,
    kafka_bootstrap: str,
    kafka_admin: Any,
    unique_name: Callable[[str], str],
    registry: WorkflowRegistry,
    engine: Engine,
    engines: Callable[[str], sa.Engine],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, env = _setup(kafka_bootstrap, kafka_admin, unique_name)
    tiers = tier_order(registry)
    lines = _lines(registry)
    run, published = replay(engine, lines, None)  # what `simulate` says
    records = by_case(published)
    total = sum(len(r) for r in records.values())
    assert len(records) > 200
    assert total > 1000
    token = secrets.token_urlsafe(32)
    access = tmp_path / "tokens.yaml"
    access.write_text(f"tokens:\n  - name: test\n    sha256: {hash_token(token)}\n")
    produce(kafka_bootstrap, settings.topic_case_events, lines, partitions=1)

    engine_process = EngineProcess(env, tmp_path / "engine.log")
    view = ViewProcess({**env, "FENGQIAO_VIEW_DB": view_url, "FENGQIAO_VIEW_HTTP_PORT": "0",
                        "FENGQIAO_VIEW_HTTP_HOST": "127.0.0.1", "FENGQIAO_VIEW_BATCH": "20",
                        "FENGQIAO_VIEW_ACCESS": str(access)}, tmp_path / "view.log")  # fmt: skip
    db = engines(view_url)
    engine_process.start()
    view.start()
    killed_at: list[int] = []
    try:
        for share in (0.25, 0.6):  # SIGKILL mid-stream, twice, and start again at once
            goal = share * total
            why = f"the view did not project {share:.0%}"
            _wait_for(lambda: _history_count(db) >= goal, 180, why)  # noqa: B023 - called at once
            view.kill()
            killed_at.append(_history_count(db))
            view.start()
        _wait_for(lambda: _history_count(db) == total, 180,
                  f"the view did not catch up:\n{view.log_path.read_text()}")  # fmt: skip
        time.sleep(2)  # nothing more may come (no duplicate, no extra)
        port = view.port()
        some = sorted(records)[:: max(1, len(records) // 20)]
        api = {case_id: _api_case(port, token, case_id) for case_id in some}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as ready:
            assert ready.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        assert view.terminate() == 0, view.log_path.read_text()
    finally:
        if view.proc is not None and view.proc.poll() is None:
            view.kill()
        engine_code = engine_process.terminate()
    assert engine_code == 0, (tmp_path / "engine.log").read_text()
    with capsys.disabled():
        print(f"\nview: {len(records)} cases, {total} records, SIGKILLed at {killed_at}")
    assert all(0 < n < total for n in killed_at), killed_at  # the kills were mid-stream

    rows = stored_rows(db)
    assert set(rows) == set(run.cases)
    for case_id, case in run.cases.items():
        expected = expected_row(engine, case, attributes=True)
        assert row_fields(rows[case_id], attributes=True) == expected, case_id
    with db.connect() as conn:
        seqs: dict[str, list[int]] = {}
        for case_id, seq in conn.execute(sa.select(history.c.case_id, history.c.seq)):
            seqs.setdefault(case_id, []).append(seq)
    for case_id, published_records in records.items():
        assert sorted(seqs[case_id]) == list(range(1, len(published_records) + 1)), case_id

    reference = engines(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    prepare(reference)
    committed = _committed(kafka_bootstrap, settings.topic_case_events)
    committed += _committed(kafka_bootstrap, settings.topic_transitions)
    project(reference, committed, tiers)
    assert dump(db) == dump(reference)  # rows, history, reports, offsets: as if never killed

    for case_id, answer in api.items():
        row = rows[case_id]
        assert (answer["state"], answer["tier"]) == (row.state, row.tier)
        deadline = row.deadline.isoformat().replace("+00:00", "Z") if row.deadline else None
        assert answer["deadline"] == deadline
    assert re.search(r'^fengqiao_view_records_total\{outcome="applied"\} \d', metrics, re.M)

    now = datetime.fromisoformat(END)
    capsys.readouterr()
    assert main(["cases", "list", "--status", "overdue", "--json", "--limit", "0",
                 "--db", view_url, "--now", END]) == 0  # fmt: skip
    listed = [c["case_id"] for c in json.loads(capsys.readouterr().out)]
    assert sorted(listed) == sorted(c for c, r in rows.items() if is_overdue(r, now))


@pytest.mark.timeout(120)
def test_partitions_added_to_the_topic_are_read_without_a_restart(  # noqa: PLR0917 - fixtures
    kafka_bootstrap: str,
    kafka_admin: Any,
    unique_name: Callable[[str], str],
    engine: Engine,
    registry: WorkflowRegistry,
    engines: Callable[[str], sa.Engine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine's records, sent straight to a two-partition topic; a third partition added
    while the view runs gets the records of the last cases."""
    topic = unique_name("transitions")
    kafka_admin.create_topics([NewTopic(topic, 2, 1)])
    lines = (ROOT / "workflows" / "examples" / "dispute-escalation.jsonl").read_bytes()
    _, published = replay(engine, lines.splitlines(), datetime.fromisoformat(END))
    cases = by_case(published)
    late = sorted(cases)[-1]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for case_id, records in cases.items():
        if case_id != late:
            for record in records:
                producer.send(topic, json.dumps(record).encode(), key=case_id.encode())
    producer.flush()

    monkeypatch.setattr(consume, "PARTITIONS_EVERY_S", 0.2)
    kafka = {"bootstrap_servers": kafka_bootstrap, "topic_transitions": topic}
    config = load_view_config({"view_batch": 10}, kafka)
    db = engines(f"sqlite:///{tmp_path / 'view.sqlite'}")
    view = ViewConsumer(db, tier_order(registry), config, ViewMetrics.create(CollectorRegistry()),
                        metadata_max_age_ms=500)  # fmt: skip
    thread = threading.Thread(target=view.run, name="view")
    thread.start()
    try:
        expected = sum(len(r) for c, r in cases.items() if c != late)
        _wait_for(lambda: _history_count(db) == expected, 60, "the first partitions")
        assert view.ready()[0]
        kafka_admin.create_partitions({topic: NewPartitions(total_count=3)})
        producer.close()
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        _wait_for(lambda: 2 in producer.partitions_for(topic), 30, "the producer's metadata")
        for record in cases[late]:
            producer.send(topic, json.dumps(record).encode(), key=late.encode(), partition=2)
        producer.flush()
        _wait_for(lambda: late in stored_rows(db), 60, "the new partition")
    finally:
        view.stop.set()
        thread.join(30)
        producer.close()
    assert _history_count(db) == sum(len(r) for r in cases.values())
    assert view.metrics.partitions._value.get() == 3
