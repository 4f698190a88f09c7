"""The observability contract end to end: a real Prometheus scrapes a running `fengqiao run` on
loopback, evaluates the real rule files, and every PromQL expression of the rules and the
Grafana dashboards returns data. A dashboard or rule naming a metric nobody exports fails.

Input goes in several chunks a few scrapes apart, so that counters *rise* while Prometheus
watches (a rate over a counter first seen at its final value is 0, and every ratio of zeros is
empty). The stream mixes the synthetic dispute cases, copies of the example streams of every
workflow (the hotline's call-back ratings feed the satisfaction ratio) and a few refusals; the
adapters run too (`--role all`) and get every channel's sample messages and a broken one each
time, so the intake series and the broken-upstream half of the dead-letter alert have data.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from consumers.synthetic import synthetic_stream
from tests.integration.harness import ROOT, EngineProcess, produce, tick_events
from tests.integration.intake_samples import INVALID, SAMPLES, encode
from tests.integration.prometheus_tools import PrometheusServer, free_port, http_get
from tests.promql import alert_operands, all_expressions, metric_names, substitute

# The first test may install Debian packages with apt (prometheus, chromium): minutes.
pytestmark = pytest.mark.timeout(900)

PARTITIONS = 3
CHUNKS = 5
END = "2026-12-31T00:00:00+08:00"
EXAMPLES = sorted((ROOT / "workflows" / "examples").glob("*.jsonl"))
BAD = [b"not json", b'{"event_id": "x", "case_id": "c", "type": "mediation.failed"}']


def _copy(line: bytes, n: int) -> bytes:
    """An example event renamed for copy `n` (its own cases, its own event ids)."""
    try:
        data = json.loads(line)
    except ValueError:
        return line
    if not isinstance(data, dict):  # the examples hold a few deliberately broken lines
        return line
    for key in ("case_id", "event_id"):
        if isinstance(data.get(key), str):
            data[key] = f"{data[key]}~{n}"
    return json.dumps(data, ensure_ascii=False).encode()


_NUMBERS = ("message_id", "ticket_no", "report_no", "submission_id", "petition_no",
            "incident_no", "filing_no")  # fmt: skip


def _native(n: int) -> dict[str, list[bytes]]:
    """Every channel's samples renamed for copy `n`, and one broken message per channel."""
    out: dict[str, list[bytes]] = {}
    for channel, messages in SAMPLES.items():
        renamed = [{k: f"{v}-c{n}" if k in _NUMBERS else v for k, v in m.items()}
                   for m in [*messages, INVALID[channel][0]]]  # fmt: skip
        out[channel] = [encode(m) for m in renamed]
    return out


def _chunks() -> list[list[bytes]]:
    synthetic = synthetic_stream(300, seed=13)
    size = -(-len(synthetic) // CHUNKS)
    chunks = []
    for n in range(CHUNKS):
        examples = [_copy(line, n) for path in EXAMPLES for line in path.read_bytes().splitlines()]
        chunks.append(synthetic[n * size : (n + 1) * size] + examples + BAD)
    chunks[-1].extend(tick_events(PARTITIONS, END))  # fire every remaining timer
    return chunks


GAUGES = ("fengqiao_cases_open", "fengqiao_cases_at_risk", "fengqiao_cases_overdue",
          "fengqiao_cases_paused", "fengqiao_deadlines_holiday_data_missing",
          "fengqiao_pending_timers", "fengqiao_cases_in_store")  # fmt: skip


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _ready(port: int) -> bool:
    try:
        http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except (urllib.error.URLError, OSError):
        return False
    return True


def _env(bootstrap: str, prefix: str, http_port: int) -> tuple[Settings, dict[str, str]]:
    settings = Settings(
        bootstrap_servers=bootstrap, topic_case_events=f"{prefix}.case-events",
        topic_transitions=f"{prefix}.transitions", topic_case_state=f"{prefix}.case-state",
        topic_dead_letter=f"{prefix}.dead-letter", intake_topic_prefix=f"{prefix}.intake.",
        partitions=PARTITIONS,
    )  # fmt: skip
    create_topics(settings)
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-group",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix, "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_INTAKE_TOPIC_PREFIX": settings.intake_topic_prefix,
        "FENGQIAO_PARTITIONS": str(PARTITIONS), "FENGQIAO_WORKFLOWS": str(ROOT / "workflows"),
        "FENGQIAO_CLOCK": "events", "FENGQIAO_ROLE": "all",
        "FENGQIAO_ADAPTER_GROUP_ID": f"{prefix}-adapters",
        "FENGQIAO_HTTP_HOST": "127.0.0.1", "FENGQIAO_HTTP_PORT": str(http_port),
    }  # fmt: skip
    return settings, env


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _scalar(server: PrometheusServer, expr: str) -> float:
    result = server.query(expr)
    return float(result[0]["value"][1]) if result else -1.0


def _missing(server: PrometheusServer) -> list[str]:
    """Every expression (alerts: each operand) that returns no data, with where it is."""
    missing: list[str] = []
    for e in all_expressions():
        queries = alert_operands(e.expr) if e.kind == "alert" else [substitute(e.expr)]
        if e.kind == "record":
            queries.append(e.where.split(": ", 1)[1])  # and the recorded series itself
        missing.extend(f"{e.where}: {q}" for q in queries if not server.query(q))
    return missing


def test_prometheus_scrapes_the_engine_and_every_rule_and_panel_has_data(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    started = time.monotonic()
    engine_port = free_port()
    settings, env = _env(kafka_bootstrap, unique_name("fq"), engine_port)
    server = PrometheusServer(tmp_path, f"127.0.0.1:{engine_port}")
    engine = EngineProcess(env, tmp_path / "engine.log")
    chunks = _chunks()
    total = sum(len(chunk) for chunk in chunks)
    server.start()
    engine.start()
    try:
        _wait(lambda: _scalar(server, 'up{job="fengqiao"}') == 1, 90, "the first scrape")
        native = 0
        for n, chunk in enumerate(chunks):
            produce(kafka_bootstrap, settings.topic_case_events, chunk, PARTITIONS)
            for channel, messages in _native(n).items():
                topic = f"{settings.intake_topic_prefix}{channel}"
                produce(kafka_bootstrap, topic, messages, PARTITIONS)
                native += len(messages)
            time.sleep(2.5)  # a few scrapes between chunks: counters rise while watched
        _wait(lambda: _scalar(server, "sum(fengqiao_intake_messages_total)") == native, 120,
              f"{native} native messages consumed")  # fmt: skip
        _wait(lambda: _scalar(server, "sum(fengqiao_events_consumed_total)") >= total, 120,
              f"{total} events consumed")  # fmt: skip
        time.sleep(4)  # a few more scrapes and rule evaluations of the final figures

        names = set(server.api("label/__name__/values"))
        referenced = {n for e in all_expressions() for n in metric_names(e.expr)}
        assert referenced - names == set(), "rules or dashboards name metrics nobody exports"
        missing = _missing(server)
        assert missing == [], "expressions without data:\n" + "\n".join(missing)

        body = http_get(f"http://127.0.0.1:{engine_port}/metrics")
        series = [line for line in body.decode().splitlines() if not line.startswith("#")]
        scraped = _scalar(server, 'scrape_samples_scraped{job="fengqiao"}')
        scrape_ms = 1000 * _scalar(server, 'scrape_duration_seconds{job="fengqiao"}')
    finally:
        code = engine.terminate()
        server.stop()
    assert code == 0, (tmp_path / "engine.log").read_text()
    assert scraped == len(series)
    print(f"observability e2e: {total} events, {len(all_expressions())} expressions, /metrics "
          f"{len(body)} bytes / {len(series)} samples, scrape {scrape_ms:.1f} ms, "
          f"{time.monotonic() - started:.1f}s")  # fmt: skip


def test_case_gauges_come_back_from_the_changelog_after_a_restart(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    """Gauges are recounted from the restored cases, not reset: a restarted engine (memory
    store: everything comes back from the changelog) reports what its predecessor did."""
    first_port, second_port = free_port(), free_port()
    settings, env = _env(kafka_bootstrap, unique_name("fq"), first_port)
    lines = synthetic_stream(150, seed=17) + tick_events(PARTITIONS, "2025-04-20T00:00:00+08:00")
    produce(kafka_bootstrap, settings.topic_case_events, lines, PARTITIONS)
    log = tmp_path / "engine.log"
    first = EngineProcess(env, log)
    first.start()
    try:
        consumed = ("fengqiao_events_consumed_total", ())
        _wait(lambda: _ready(first_port), 120, "the first engine")
        _wait(lambda: _scrape(first_port).get(consumed) == len(lines), 120, "the stream consumed")
        time.sleep(1)  # the gauges are published right after the counters of the last batch
        before = {k: v for k, v in _scrape(first_port).items() if k[0] in GAUGES}
    finally:
        assert first.terminate() == 0, log.read_text()
    second = EngineProcess({**env, "FENGQIAO_HTTP_PORT": str(second_port)}, log)
    second.start()
    try:
        # Ready *and* owning every partition: a joiner may first be handed none of them.
        owned = ("fengqiao_partitions_assigned", ())
        _wait(lambda: _ready(second_port) and _scrape(second_port).get(owned) == PARTITIONS,
              120, "the restore of every partition")  # fmt: skip
        after = {k: v for k, v in _scrape(second_port).items() if k[0] in GAUGES}
        restarted = _scrape(second_port)
    finally:
        assert second.terminate() == 0, log.read_text()
    assert restarted[("fengqiao_events_consumed_total", ())] == 0  # a new process indeed
    assert after == before
    for name in ("fengqiao_cases_open", "fengqiao_cases_at_risk", "fengqiao_cases_overdue"):
        assert sum(v for (n, _), v in after.items() if n == name) > 0, name
