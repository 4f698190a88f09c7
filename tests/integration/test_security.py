"""Kafka over TLS and SASL, end to end: `fengqiao run` against secured brokers.

For each of SSL (with a client certificate: mutual TLS), SASL_PLAINTEXT + PLAIN,
SASL_PLAINTEXT + SCRAM-SHA-256 and SASL_SSL + SCRAM-SHA-512, a broker of our own is started with
`deploy/local/kafka start --security ...` (a throwaway CA, PLAIN users in JAAS, SCRAM users made
at format time). Topics are created through `consumers.kafka.topics.create_topics`, the engine
runs as a real process configured only through `FENGQIAO_*` variables, and its committed output
is read back over the same secured connection and compared with `simulate`. Wrong credentials
make the engine exit 2 with one clear line, no traceback; no secret appears in any output.

The brokers are this module's own (the session broker is PLAINTEXT); one runs at a time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings, env_name, kafka_client_config, load_settings
from engine.intake import IntakeContext, Refused, translate
from tests.integration.harness import ROOT, EngineProcess, by_case, simulate
from tests.integration.intake_samples import CHANNELS, SAMPLES, encode

LOCAL_KAFKA = ROOT / "deploy" / "local" / "kafka"
WORKFLOWS = ROOT / "workflows"
SECRET_VARIABLES = ("FENGQIAO_SASL_PASSWORD", "FENGQIAO_SSL_PASSWORD")

CASES = [
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
]


def _required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
    return ci or os.environ.get("FENGQIAO_REQUIRE_KAFKA", "").strip() == "1"


@dataclass
class SecuredBroker:
    protocol: str
    state_dir: str
    facts: dict[str, str]
    """`key=value` lines `deploy/local/kafka start` printed (bootstrap, CA path, user names)."""
    env: dict[str, str]
    """DIR/security.env: the FENGQIAO_* variables (secrets included) a client needs."""
    start_seconds: float

    @property
    def bootstrap(self) -> str:
        return self.facts["bootstrap"]


@dataclass
class _Pool:
    """The module's secured brokers: one at a time, started on first use, stopped at the end."""

    current: SecuredBroker | None = None
    started: list[tuple[str, float]] = field(default_factory=list)

    def get(self, protocol: str) -> SecuredBroker:
        if self.current is not None and self.current.protocol == protocol:
            return self.current
        self.close()
        self.current = _start(protocol)
        self.started.append((protocol, self.current.start_seconds))
        return self.current

    def close(self) -> None:
        if self.current is not None:
            _stop(self.current.state_dir)
            self.current = None


def _run_local(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FENGQIAO_PYTHON": sys.executable}
    return subprocess.run(
        [str(LOCAL_KAFKA), *args], capture_output=True, text=True, env=env, timeout=timeout,
        check=False,
    )  # fmt: skip


def _stop(state_dir: str) -> None:
    try:
        _run_local("stop", "--dir", state_dir, "--clean", timeout=60)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def _start(protocol: str) -> SecuredBroker:
    state_dir = tempfile.mkdtemp(prefix=f"fengqiao-kafka-{protocol.lower()}-")
    started = time.monotonic()
    try:
        proc = _run_local("start", "--dir", state_dir, "--security", protocol.lower(), timeout=900)
    except subprocess.TimeoutExpired:
        _stop(state_dir)
        proc = None
    took = time.monotonic() - started
    if proc is None or proc.returncode != 0:
        _stop(state_dir)
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:]) if proc else "timed out"
        message = f"deploy/local/kafka start --security {protocol.lower()} failed:\n{tail}"
        if _required():
            pytest.fail(message, False)
        pytest.skip(message)
    facts = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    env_file = Path(facts["security_env"])
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return SecuredBroker(protocol, state_dir, facts, env, took)


@pytest.fixture(scope="module")
def broker_pool() -> Iterator[_Pool]:
    pool = _Pool()
    try:
        yield pool
    finally:
        pool.close()
        for protocol, seconds in pool.started:
            print(f"secured broker {protocol}: started in {seconds:.1f}s")


@dataclass
class Secured:
    """One case: a broker, the SASL mechanism to use on it, and names unique to the case."""

    broker: SecuredBroker
    mechanism: str | None
    prefix: str = field(default_factory=lambda: f"fq-sec-{uuid.uuid4().hex[:8]}")

    def env(self, **changes: str) -> dict[str, str]:
        """FENGQIAO_* variables for `fengqiao run` (and `load_settings`) on this broker."""
        env = {
            **self.broker.env,
            "FENGQIAO_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "FENGQIAO_GROUP_ID": f"{self.prefix}-engine",
            "FENGQIAO_ADAPTER_GROUP_ID": f"{self.prefix}-adapters",
            "FENGQIAO_TRANSACTIONAL_ID_PREFIX": self.prefix,
            "FENGQIAO_INSTANCE_ID": "a",
            "FENGQIAO_TOPIC_CASE_EVENTS": f"{self.prefix}.case-events",
            "FENGQIAO_TOPIC_TRANSITIONS": f"{self.prefix}.transitions",
            "FENGQIAO_TOPIC_CASE_STATE": f"{self.prefix}.case-state",
            "FENGQIAO_TOPIC_DEAD_LETTER": f"{self.prefix}.dead-letter",
            "FENGQIAO_INTAKE_TOPIC_PREFIX": f"{self.prefix}.intake.",
            "FENGQIAO_PARTITIONS": "1",
            "FENGQIAO_WORKFLOWS": str(WORKFLOWS),
            "FENGQIAO_CLOCK": "events",
            "FENGQIAO_HTTP_PORT": "0",
            "FENGQIAO_ROLE": "all",
        }
        if self.mechanism is not None:
            env["FENGQIAO_SASL_MECHANISM"] = self.mechanism
        return {**env, **changes}

    def settings(self) -> Settings:
        values = {k.removeprefix("FENGQIAO_").lower(): v for k, v in self.env().items()}
        return load_settings(values)

    def secrets(self) -> list[str]:
        return [self.broker.env[name] for name in SECRET_VARIABLES if name in self.broker.env]


@pytest.fixture(
    scope="module", params=CASES, ids=[f"{p}-{m}" if m else p for p, m in CASES]
)  # fmt: skip
def secured(request: pytest.FixtureRequest, broker_pool: _Pool) -> Secured:
    protocol, mechanism = request.param
    return Secured(broker_pool.get(protocol), mechanism)


def _engine(secured: Secured, log: Path, **changes: str) -> EngineProcess:
    engine = EngineProcess(secured.env(**changes), log)
    # The suite's own variable must not pick another broker for the child.
    engine.env.pop("FENGQIAO_KAFKA_BOOTSTRAP_SERVERS", None)
    return engine


def _produce(settings: Settings, topic: str, values: Iterable[bytes]) -> None:
    """Canonical events keyed by case_id, as the engine requires (anything else: no key)."""
    producer = KafkaProducer(**kafka_client_config(settings), acks="all")
    try:
        for value in values:
            try:
                key: bytes | None = str(json.loads(value)["case_id"]).encode()
            except (ValueError, KeyError, TypeError):
                key = None
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def _read(settings: Settings, topic: str, *, expect: int, timeout_s: float) -> list[Any]:
    """Committed records of `topic` read over the secured connection: waits for `expect` of
    them, then 2 s more for any extra."""
    consumer = KafkaConsumer(
        **kafka_client_config(settings), group_id=None, isolation_level="read_committed",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    out: list[Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        settle: float | None = None
        while time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=300).values():
                out.extend(json.loads(m.value) for m in messages)
            if len(out) >= expect:
                settle = settle or time.monotonic() + 2.0
                if time.monotonic() >= settle:
                    break
    finally:
        consumer.close()
    return out


def _canonical(case: str, type_: str, at: str, payload: dict[str, Any] | None = None) -> bytes:
    return json.dumps({
        "event_id": f"{case}-{type_}", "case_id": case, "type": type_, "occurred_at": at,
        "source": "grid", "payload": payload or {},
    }).encode()  # fmt: skip


REPORT = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
EVENTS = [
    _canonical("sec-1", "case.reported", "2026-02-05T09:00:00+08:00", REPORT),
    _canonical("sec-2", "case.reported", "2026-02-05T09:05:00+08:00", REPORT),
    _canonical("sec-1", "mediation.failed", "2026-02-05T11:00:00+08:00"),
    _canonical("sec-2", "mediation.succeeded", "2026-02-05T11:30:00+08:00", {"x": 1}),
]
GRID_REPORT = SAMPLES["grid"][0]  # 2026-02-05 10:00 Shanghai: the same morning as EVENTS


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [f"{len(s)}-character secret" for s in secrets if s and s in text]


def test_the_engine_runs_over_a_secured_connection(secured: Secured, tmp_path: Path) -> None:
    settings = secured.settings()
    assert settings.security_protocol == secured.broker.protocol
    report = create_topics(settings)
    assert settings.topic_case_events in report.created

    intake = translate("grid", encode(GRID_REPORT), IntakeContext(CHANNELS))
    assert not isinstance(intake, Refused)
    lines = [*EVENTS, *(event.model_dump_json().encode() for event in intake)]
    expected = by_case(simulate(WORKFLOWS, lines))
    count = sum(len(records) for records in expected.values())
    _produce(settings, settings.topic_case_events, [*EVENTS, b"not json"])
    _produce(settings, f"{settings.intake_topic_prefix}grid", [encode(GRID_REPORT)])

    log = tmp_path / "engine.log"
    engine = _engine(secured, log)
    engine.start()
    try:
        records = _read(settings, settings.topic_transitions, expect=count, timeout_s=120)
        dead = _read(settings, settings.topic_dead_letter, expect=1, timeout_s=30)
    finally:
        code = engine.terminate()
    output = log.read_text("utf-8")
    assert code == 0, output
    assert by_case(records) == expected
    assert "grid:ZJ-2026-0001" in expected  # the adapters ran over the secured connection too
    assert [r["reason"] for r in dead] == ["malformed"]
    assert _leaks(output, secured.secrets()) == []
    assert "Traceback" not in output


def test_wrong_credentials_are_refused_with_a_clear_error(secured: Secured, tmp_path: Path) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    sasl = secured.broker.protocol.startswith("SASL_")
    variable = "FENGQIAO_SASL_PASSWORD" if sasl else "FENGQIAO_SSL_PASSWORD"
    log = tmp_path / "engine.log"
    engine = _engine(secured, log, **{variable: wrong})
    started = time.monotonic()
    engine.start()
    assert engine.proc is not None
    try:
        code = engine.proc.wait(timeout=90)
    finally:
        if engine.alive():
            engine.kill()
    took = time.monotonic() - started
    output = log.read_text("utf-8")
    assert code == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    if sasl:
        # Either the broker's refusal reached us (then its own reason is quoted), or the broker
        # closed the connection mid-login and kafka-python dropped the refusal with the bytes of
        # the close (seen under load): then we say the login was cut, never "cannot reach".
        refused = re.search(r"refused the SASL login of 'alice' with (PLAIN|SCRAM-SHA-\d+): "
                            r"Authentication failed", errors[0])  # fmt: skip
        cut = re.search(r"closed the connection during the SASL login of 'alice' with "
                        r"(PLAIN|SCRAM-SHA-\d+): the credentials or the mechanism were refused",
                        errors[0])  # fmt: skip
        assert refused or cut, output
        assert "cannot reach" not in errors[0], output
        for variable in ("sasl_mechanism", "sasl_username", "sasl_password"):
            assert env_name(variable) in errors[0], output
    else:
        assert "cannot load the client certificate" in errors[0], output
        assert env_name("ssl_password") in errors[0]
    assert _leaks(output, [wrong, *secured.secrets()]) == []
    assert len(output.splitlines()) <= 5, output  # one error, not a retry per second
    assert took < 60, f"took {took:.0f}s to give up"
