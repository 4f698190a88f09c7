"""Integration fixtures: one real Apache Kafka broker per test session, unique names, settings.

Where the broker comes from, first that works:
1. env `FENGQIAO_KAFKA_BOOTSTRAP_SERVERS` (host:port,...): an existing broker; it must answer,
   else the session fails (it was asked for explicitly). Security settings come from the other
   `FENGQIAO_*` variables, as for `fengqiao run`.
2. the project's own broker: `deploy/local/kafka start --dir <tmp>` (Java 17+, Maven for the
   first download of the jars), stopped and deleted at the end of the session.
3. testcontainers' `KafkaContainer`, if the package is importable and a Docker engine answers
   (image: env `FENGQIAO_KAFKA_IMAGE`, else testcontainers' default).
If none works, the integration tests are skipped with the reasons; they fail instead when env
`CI` is true or `FENGQIAO_REQUIRE_KAFKA=1`.

Every test under tests/integration gets the `integration` mark. Tests isolate themselves through
unique topic, group and transactional ids, so they can share the one broker.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

with warnings.catch_warnings():
    # kafka-python 3.0.x calls the deprecated importlib.resources.read_text while importing.
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka  # noqa: F401

from consumers.kafka.admin import TopicsError, admin_client
from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings, load_settings
from tests.integration.intake_samples import CHANNELS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LOCAL_KAFKA = ROOT / "deploy" / "local" / "kafka"
TRUE_VALUES = {"1", "true", "yes", "on"}
START_ATTEMPTS = 3

SettingsFactory = Callable[..., Settings]
TopicsFactory = Callable[..., Settings]


@dataclass
class Broker:
    bootstrap: str
    source: str
    start_seconds: float | None = None


# For the terminal summary: which broker the session used and how long it took to start.
_session_broker: list[Broker] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Called with every item of the session, not only ours: mark just those under this folder.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for broker in _session_broker:
        took = f", started in {broker.start_seconds:.1f}s" if broker.start_seconds else ""
        terminalreporter.write_line(f"kafka: {broker.source} at {broker.bootstrap}{took}")


def _required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() in TRUE_VALUES
    return ci or os.environ.get("FENGQIAO_REQUIRE_KAFKA", "").strip() == "1"


def _unavailable(reasons: list[str]) -> NoReturn:
    message = "no Kafka broker for the integration tests:\n" + "\n".join(
        f"  - {r}" for r in reasons
    )
    if _required():
        pytest.fail(message + "\n(CI or FENGQIAO_REQUIRE_KAFKA=1: failing, not skipping)", False)
    pytest.skip(message)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _tcp_refusals(bootstrap: str) -> list[str]:
    """Why each bootstrap server refuses a TCP connection ([] if one accepts)."""
    refusals: list[str] = []
    for raw in bootstrap.split(","):
        server = raw.strip()
        parts = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(\d+))?", server)
        host, port = (parts.group(1), parts.group(2) or "9092") if parts else (server, "9092")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), 5):
                return []
        except (OSError, ValueError) as err:
            refusals.append(f"{server}: {err}")
    return refusals


def _answers(bootstrap: str, timeout_ms: int = 10_000) -> str | None:
    """None if a broker at `bootstrap` answers a metadata request, else why not."""
    # A plain TCP check first: kafka-python retries refused connections for the whole timeout
    # and leaks a socket per attempt (see below), which ends as errors at the end of the session.
    refusals = _tcp_refusals(bootstrap)
    if refusals:
        return "no TCP connection: " + "; ".join(refusals)
    with warnings.catch_warnings():
        # kafka-python 3.0.12 does not close a socket whose connect() was refused: without this,
        # each retry ends up as a ResourceWarning, i.e. an error under `-W error`.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            settings = load_settings({"bootstrap_servers": bootstrap})
            with admin_client(settings, timeout_ms=timeout_ms) as admin:
                admin.describe_cluster()
        except (TopicsError, ValueError) as err:
            return str(err)
        finally:
            gc.collect()
    return None


def _run_local(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FENGQIAO_PYTHON": sys.executable}
    return subprocess.run(
        [str(LOCAL_KAFKA), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _stop_local(state_dir: str) -> None:
    try:
        _run_local("stop", "--dir", state_dir, "--clean", timeout=60)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def _start_local() -> tuple[Broker, str] | str:
    """(broker, state dir) of a freshly started local broker, or why it could not start."""
    if not os.access(LOCAL_KAFKA, os.X_OK):
        return f"{LOCAL_KAFKA} is missing or not executable"
    problem = ""
    for _ in range(START_ATTEMPTS):
        state_dir = tempfile.mkdtemp(prefix="fengqiao-kafka-")
        started = time.monotonic()
        try:
            # Generous: the first run downloads the jars; the script bounds readiness itself.
            proc = _run_local("start", "--dir", state_dir, timeout=900)
        except subprocess.TimeoutExpired:
            _stop_local(state_dir)
            return "deploy/local/kafka start did not finish within 900s"
        took = time.monotonic() - started
        found = re.search(r"^bootstrap=(\S+)$", proc.stdout, re.MULTILINE)
        if proc.returncode == 0 and found:
            return Broker(found.group(1), "local broker (deploy/local/kafka)", took), state_dir
        _stop_local(state_dir)
        problem = f"deploy/local/kafka start failed (exit {proc.returncode}):\n{_tail(proc.stderr)}"
        # Worth another go: a port taken between the script's check and the JVM's bind, or a
        # random cluster id the storage tool rejects (one starting with '-'). Not: no Java etc.
        if "port in use" not in proc.stderr and "formatting storage" not in proc.stderr:
            break
    return problem


def _start_container() -> tuple[Broker, Any] | str:
    try:
        module = importlib.import_module("testcontainers.kafka")
    except ImportError:
        return "testcontainers is not installed"
    try:
        importlib.import_module("docker").from_env().ping()
    except Exception as err:
        return f"testcontainers: no Docker engine answers ({type(err).__name__}: {err})"
    image = os.environ.get("FENGQIAO_KAFKA_IMAGE")
    started = time.monotonic()
    try:
        container = module.KafkaContainer(image) if image else module.KafkaContainer()
        container.start()
    except Exception as err:
        return f"testcontainers: KafkaContainer failed to start ({type(err).__name__}: {err})"
    bootstrap = str(container.get_bootstrap_server())
    return Broker(bootstrap, "testcontainers KafkaContainer", time.monotonic() - started), container


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """`host:port` of a real broker for the whole session (see the module docstring)."""
    explicit = os.environ.get("FENGQIAO_KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if explicit:
        why = _answers(explicit)
        if why is not None:
            pytest.fail(
                f"FENGQIAO_KAFKA_BOOTSTRAP_SERVERS={explicit} does not answer: {why}", False
            )
        _session_broker.append(Broker(explicit, "FENGQIAO_KAFKA_BOOTSTRAP_SERVERS"))
        yield explicit
        return

    reasons: list[str] = []
    local = _start_local()
    if isinstance(local, tuple):
        broker, state_dir = local
        _session_broker.append(broker)
        try:
            yield broker.bootstrap
        finally:
            _stop_local(state_dir)
        return
    reasons.append(local)

    container = _start_container()
    if isinstance(container, tuple):
        broker, handle = container
        _session_broker.append(broker)
        try:
            yield broker.bootstrap
        finally:
            handle.stop()
        return
    reasons.append(container)
    _unavailable(reasons)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Iterator[Any]:
    """A KafkaAdminClient on the session's broker (kafka-python, untyped)."""
    with admin_client(load_settings({"bootstrap_servers": kafka_bootstrap})) as admin:
        yield admin


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[..., str]:
    """`unique_name(prefix)` → a fresh, legal topic/group/transactional id for this test."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    token = uuid.uuid4().hex[:8]
    counter = itertools.count()

    def make(prefix: str = "fq") -> str:
        return f"{prefix}.{slug}.{token}.{next(counter)}"

    return make


@pytest.fixture
def settings_factory(
    kafka_bootstrap: str, kafka_admin: Any, unique_name: Callable[..., str]
) -> Iterator[SettingsFactory]:
    """`settings_factory(**overrides)` → Settings on the session's broker.

    All calls in one test share the same unique topic names, group id and transactional id
    prefix; each call gets its own `instance_id` (two engines in a test must not fence each
    other) unless one is passed, e.g. to restart "the same" instance. The test's topics are
    deleted afterwards (matters on a shared broker from FENGQIAO_KAFKA_BOOTSTRAP_SERVERS).
    """
    shared: dict[str, object] = {
        "bootstrap_servers": kafka_bootstrap,
        "topic_case_events": unique_name("case-events"),
        "topic_transitions": unique_name("transitions"),
        "topic_case_state": unique_name("case-state"),
        "topic_dead_letter": unique_name("dead-letter"),
        "intake_topic_prefix": unique_name("intake") + ".",
        "group_id": unique_name("group"),
        "transactional_id_prefix": unique_name("tx"),
        "workflows": ROOT / "workflows",
    }
    topics: set[str] = set()

    def make(**overrides: object) -> Settings:
        values = {**shared, "instance_id": unique_name("instance"), **overrides}
        settings = load_settings(values)
        topics.update(settings.topic_names())
        topics.update(f"{settings.intake_topic_prefix}{c}" for c in CHANNELS)
        return settings

    yield make
    if topics:
        kafka_admin.delete_topics(sorted(topics), raise_errors=False)


@pytest.fixture
def make_topics(settings_factory: SettingsFactory) -> TopicsFactory:
    """`make_topics(partitions=3, **overrides)` → Settings whose four topics now exist
    (created like `create_topics` does, with that partition count)."""

    def make(partitions: int = 3, **overrides: object) -> Settings:
        settings = settings_factory(partitions=partitions, **overrides)
        report = create_topics(settings)
        assert not report.mismatches, report.mismatches
        return settings

    return make
