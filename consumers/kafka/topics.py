"""The four Fengqiao topics: their specs, creating them, and checking them before the engine starts.

- case-events (`topic_case_events`): `partitions`; delete after 7 days (input; the committed
  offsets say how far we are).
- case-state (`topic_case_state`): `partitions`; compacted (the changelog: the latest snapshot
  of every case), segments rolled hourly so the cleaner can keep restores short.
- transitions (`topic_transitions`): `partitions`; delete after 30 days (output; sinks keep the
  history).
- dead-letter (`topic_dead_letter`): `partitions`; delete after 30 days (time for a human to look).

case-events and case-state are co-partitioned: same count, same key (`case_id`), so a partition's
cases are restored from the changelog partition of the same number. With a replication factor of
3 or more, `min.insync.replicas=2` is set too (acks=all then survives one broker).

`create_topics` creates what is missing and reports how existing topics differ from the spec;
`check_topics` returns the problems the engine refuses to start with.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from consumers.errors import ShellError
from consumers.runtime.settings import Settings, env_name, kafka_client_config
from schemas.intake.channels import CHANNELS

with warnings.catch_warnings():
    # kafka-python 3.0.x loads its protocol schemas with importlib.resources.read_text, which
    # Python 3.11+ flags as deprecated: harmless, but fatal under `-W error`.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import (
        KafkaConnectionError,
        KafkaError,
        KafkaTimeoutError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
        for_code,
    )

DAY_MS = 24 * 60 * 60 * 1000
UNKNOWN_TOPIC = 3
TOPIC_ALREADY_EXISTS = 36
# kafka-python's admin client logs its whole configuration, SASL password included, at DEBUG:
# keep that one logger above DEBUG whatever level the root logger is given.
logging.getLogger("kafka.admin.client").setLevel(logging.INFO)

BOOTSTRAP_ATTEMPT_MS = 3_000
"""Bootstrap in windows this long, so refused credentials end the wait at once (kafka-python
itself retries a failed SASL login until its bootstrap timeout and then only says "timeout")."""


class TopicsError(ShellError):
    """Kafka could not be reached, or refused to create a topic."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    setting: str  # the Settings field naming it, e.g. "topic_case_state"
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicsReport:
    """What `create_topics` did: created and already existing topic names, and how existing
    topics differ from their spec (partition count, replication factor, configs)."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    mismatches: tuple[str, ...]

    def lines(self) -> list[str]:
        """One human-readable line per topic and per mismatch (what a CLI prints)."""
        return (
            [f"created topic '{name}'" for name in self.created]
            + [f"topic '{name}' exists" for name in self.existing]
            + [f"warning: {m}" for m in self.mismatches]
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines())


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The engine's four topics and one intake topic per channel, as `create_topics` makes them."""
    common: dict[str, str] = {}
    if settings.replication_factor >= 3:
        common["min.insync.replicas"] = "2"
    deleted = {"cleanup.policy": "delete"}

    def spec(setting: str, **configs: str) -> TopicSpec:
        return TopicSpec(
            name=getattr(settings, setting),
            setting=setting,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            configs={**common, **configs},
        )

    return [
        spec("topic_case_events", **deleted, **{"retention.ms": str(7 * DAY_MS)}),
        spec("topic_transitions", **deleted, **{"retention.ms": str(30 * DAY_MS)}),
        spec(
            "topic_case_state",
            **{
                "cleanup.policy": "compact",
                # Roll segments hourly and clean early: the active segment is never compacted,
                # and every superseded snapshot left behind is replayed on each restore.
                "segment.ms": str(60 * 60 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            },
        ),
        spec("topic_dead_letter", **deleted, **{"retention.ms": str(30 * DAY_MS)}),
        *(
            TopicSpec(
                name=f"{settings.intake_topic_prefix}{channel}",
                setting="intake_topic_prefix",
                partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                configs={**common, **deleted, "retention.ms": str(7 * DAY_MS)},
            )
            for channel in CHANNELS
        ),
    ]


class _AdminClient(KafkaAdminClient):  # type: ignore[misc]  # kafka-python is untyped
    """KafkaAdminClient that does not leak its I/O thread when the broker cannot be reached
    (kafka-python 3.0.12 starts the thread, then raises from the constructor)."""

    def __init__(self, **configs: Any) -> None:
        try:
            super().__init__(**configs)
        except BaseException:
            if hasattr(self, "_net"):
                self._closed = False
                self.close()
            raise


@contextmanager
def admin_client(settings: Settings, *, timeout_ms: int = 30_000) -> Iterator[Any]:
    """A connected KafkaAdminClient for `settings`, closed afterwards.

    Raises TopicsError naming the bootstrap servers when no broker answers within `timeout_ms`,
    and at once, with the broker's reason and the variables to check, when the broker refuses
    the credentials (SASL) or the TLS handshake fails. No message carries a secret.
    """
    problem = tls_problem(settings)
    if problem is not None:
        raise TopicsError(problem)
    admin = _bootstrap(settings, timeout_ms)
    try:
        yield admin
    finally:
        admin.close()


def _bootstrap(settings: Settings, timeout_ms: int) -> Any:
    deadline = time.monotonic() + timeout_ms / 1000
    watcher = _ConnectFailures()
    kafka_log = logging.getLogger("kafka")
    # While it bootstraps, kafka-python's own warnings (one per retry) go to the watcher only.
    kafka_log.addHandler(watcher)
    try:
        while True:
            left_ms = max(1, int((deadline - time.monotonic()) * 1000))
            try:
                return _AdminClient(
                    **kafka_client_config(settings),
                    client_id=f"fengqiao-admin-{settings.instance_id}",
                    bootstrap_timeout_ms=min(BOOTSTRAP_ATTEMPT_MS, left_ms),
                    request_timeout_ms=timeout_ms,
                )
            except KafkaTimeoutError as err:
                refused = watcher.refusal(settings)
                if refused is not None:
                    raise TopicsError(refused) from None
                if time.monotonic() >= deadline:
                    raise TopicsError(_unreachable(settings, err)) from err
            except KafkaError as err:
                raise TopicsError(watcher.refusal(settings) or _unreachable(settings, err)) from err
    finally:
        kafka_log.removeHandler(watcher)


def _unreachable(settings: Settings, err: BaseException) -> str:
    return (
        f"cannot reach Kafka at {settings.bootstrap_servers} "
        f"({env_name('bootstrap_servers')}, security {settings.security_protocol}): {err}"
    )


_ERROR_PREFIX = re.compile(r"^(?:\[Error \d+\] )?(?:\w+Error: )*")


class _ConnectFailures(logging.Handler):
    """Remembers why kafka-python's connection attempts failed, from the exceptions it logs.

    kafka-python retries a refused SASL login or a failed TLS handshake like a network error and
    finally reports only a timeout; the exception objects in its log records say what happened.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.auth: KafkaError | None = None
        self.tls: BaseException | None = None
        self.cut_during_sasl = False
        """The broker closed a connection while our SASL login was in flight. Under load
        kafka-python can drop the broker's refusal that came with the close (its transport
        treats end-of-stream as an error and discards the bytes read with it), so this is often
        the only sign of refused credentials."""

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if _sasl_in_flight(arg):
                self.cut_during_sasl = True
            if isinstance(arg, SaslAuthenticationFailedError | UnsupportedSaslMechanismError):
                self.auth = arg
            elif isinstance(arg, ssl.SSLError) or (
                isinstance(arg, KafkaConnectionError) and "Handshake failed" in str(arg)
            ):
                self.tls = arg

    def refusal(self, settings: Settings) -> str | None:
        where = f"Kafka at {settings.bootstrap_servers} ({settings.security_protocol})"
        if self.auth is not None:
            detail = _ERROR_PREFIX.sub("", str(self.auth))
            return (
                f"{where} refused the SASL login of {settings.sasl_username!r} with "
                f"{settings.sasl_mechanism}: {detail}; check {env_name('sasl_mechanism')}, "
                f"{env_name('sasl_username')} and {env_name('sasl_password')}"
            )
        if self.cut_during_sasl and settings.security_protocol.startswith("SASL_"):
            return (
                f"{where} closed the connection during the SASL login of "
                f"{settings.sasl_username!r} with {settings.sasl_mechanism}: the credentials or "
                f"the mechanism were refused or could not be verified; check "
                f"{env_name('sasl_mechanism')}, {env_name('sasl_username')} and "
                f"{env_name('sasl_password')}"
            )
        if self.tls is not None:
            return (
                f"TLS handshake with {where} failed: {self.tls}; check "
                f"{env_name('ssl_cafile')} (the CA that signed the broker's certificate) and "
                f"{env_name('security_protocol')}"
            )
        return None


_SASL_API_KEYS = frozenset({17, 36})
"""SaslHandshake and SaslAuthenticate: a connection lost with one of these in flight was cut
by the broker in the middle of our login."""


def _sasl_in_flight(arg: object) -> bool:
    """Whether `arg` is a kafka-python connection whose last request in flight is a SASL one
    (read from its protocol parser, which keeps the request headers after the socket closed)."""
    parser = getattr(arg, "parser", None)
    headers = getattr(parser, "in_flight_requests", None)
    if not headers:
        return False
    try:
        last = headers[-1]
    except (IndexError, TypeError):
        return False
    api_key = getattr(last, "request_api_key", getattr(last, "api_key", None))
    return api_key in _SASL_API_KEYS


def tls_problem(settings: Settings) -> str | None:
    """Why the TLS files of `settings` cannot be used (None if they can, or TLS is off).

    Checked before connecting: kafka-python would report an unreadable CA or a wrong key
    password only as "[SSL] PEM lib", and with no password given OpenSSL would even prompt for
    one on the terminal.
    """
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context()
    if settings.ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ssl_cafile))
        except (ssl.SSLError, OSError) as err:
            return (
                f"{env_name('ssl_cafile')}={settings.ssl_cafile}: not a readable PEM CA bundle "
                f"({err})"
            )
    if settings.ssl_certfile is not None:
        secret = settings.ssl_password
        password = secret.get_secret_value() if secret is not None else ""
        try:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile is not None else None,
                password=lambda: password,
            )
        except (ssl.SSLError, OSError) as err:
            return (
                f"cannot load the client certificate {env_name('ssl_certfile')}="
                f"{settings.ssl_certfile} with its key ({env_name('ssl_keyfile')}): a wrong or "
                f"missing {env_name('ssl_password')}, or not PEM files ({type(err).__name__})"
            )
    return None


@dataclass(frozen=True)
class _Described:
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def _describe(admin: Any, specs: list[TopicSpec]) -> tuple[dict[str, _Described], list[str]]:
    """Existing topics among `specs` with their partitions and the configs the specs name;
    and problems describing them (other than "does not exist")."""
    names = [s.name for s in specs]
    found: dict[str, _Described] = {}
    problems: list[str] = []
    metadata: list[dict[str, Any]] = admin.describe_topics(names)
    present: dict[str, dict[str, Any]] = {}
    for topic in metadata:
        code = topic.get("error_code", 0)
        if code == UNKNOWN_TOPIC:
            continue
        if code:
            problems.append(f"cannot describe topic '{topic['name']}': {for_code(code).__name__}")
            continue
        present[topic["name"]] = topic
    if not present:
        return found, problems
    by_name = {s.name: s for s in specs}
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, sorted(by_name[name].configs) or None)
        for name in present
    ]
    # config_filter="all": the default ("modified") would hide values equal to broker defaults.
    described: dict[str, dict[str, dict[str, Any]]] = admin.describe_configs(
        resources, config_filter="all"
    ).get("topic", {})
    for name, topic in present.items():
        partitions = topic.get("partitions") or []
        replicas = max((len(p.get("replica_nodes") or []) for p in partitions), default=0)
        configs = {key: str(entry.get("value")) for key, entry in described.get(name, {}).items()}
        found[name] = _Described(len(partitions), replicas, configs)
    return found, problems


def _differences(spec: TopicSpec, actual: _Described) -> list[str]:
    out: list[str] = []
    if actual.partitions != spec.partitions:
        out.append(f"{actual.partitions} partitions, not {spec.partitions}")
    if actual.replication_factor != spec.replication_factor:
        out.append(f"replication factor {actual.replication_factor}, not {spec.replication_factor}")
    for key, want in sorted(spec.configs.items()):
        have = actual.configs.get(key)
        if have != want:
            out.append(f"{key}={have}, not {want}")
    return out


def create_topics(
    settings: Settings, *, admin: Any = None, timeout_ms: int = 30_000
) -> TopicsReport:
    """Create the missing topics of `topic_specs(settings)`; idempotent and safe to race.

    Existing topics are left alone; how they differ from the spec is reported in `mismatches`
    (use `check_topics` for the differences the engine cannot run with). Raises TopicsError
    when the broker refuses a topic (e.g. a replication factor above the number of brokers).
    """
    if admin is None:
        with admin_client(settings, timeout_ms=timeout_ms) as own:
            return create_topics(settings, admin=own, timeout_ms=timeout_ms)
    specs = topic_specs(settings)
    before, problems = _describe(admin, specs)
    if problems:
        raise TopicsError("; ".join(problems))
    missing = [s for s in specs if s.name not in before]
    created: list[str] = []
    raced: list[str] = []
    if missing:
        response = admin.create_topics(
            {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "configs": dict(s.configs),
                }
                for s in missing
            },
            timeout_ms=timeout_ms,
            raise_errors=False,
        )
        refused: dict[str, list[str]] = {}  # error → topics, so one cause is reported once
        for topic in response.get("topics", []):
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(topic["name"])
            elif code == TOPIC_ALREADY_EXISTS:  # another process created it meanwhile
                raced.append(topic["name"])
            else:
                detail = topic.get("error_message") or ""
                error = for_code(code).__name__ + (f": {detail}" if detail else "")
                refused.setdefault(error, []).append(f"'{topic['name']}'")
        if refused:
            raise TopicsError(
                "; ".join(
                    f"cannot create topic(s) {', '.join(names)}: {error}"
                    for error, names in refused.items()
                )
            )
        # CreateTopics returns before every partition has a leader (KRaft propagates it a bit
        # later): wait, so a producer started right after does not fail on the first send.
        admin.wait_for_topics(created + raced, timeout_ms=timeout_ms)
    after = before
    if raced:
        after, _ = _describe(admin, specs)
    mismatches: list[str] = []
    for spec in specs:
        if spec.name in created or spec.name not in after:
            continue
        diffs = _differences(spec, after[spec.name])
        if diffs:
            mismatches.append(
                f"existing topic '{spec.name}' ({env_name(spec.setting)}) has " + ", ".join(diffs)
            )
    existing = tuple(s.name for s in specs if s.name not in created)
    return TopicsReport(created=tuple(created), existing=existing, mismatches=tuple(mismatches))


def check_topics(settings: Settings, *, admin: Any = None, timeout_ms: int = 30_000) -> list[str]:
    """Problems the engine must refuse to start with; [] when all is well.

    Missing topics; case-events and case-state with different partition counts (they must be
    co-partitioned); a case-state changelog whose cleanup.policy is not exactly `compact`
    (`delete`, or `compact,delete`, would lose the state of quiet cases). Raises TopicsError
    when Kafka cannot be reached.
    """
    if admin is None:
        with admin_client(settings, timeout_ms=timeout_ms) as own:
            return check_topics(settings, admin=own, timeout_ms=timeout_ms)
    # The engine's own topics; intake topics belong to the adapters, which simply wait on them.
    specs = [s for s in topic_specs(settings) if s.setting != "intake_topic_prefix"]
    found, problems = _describe(admin, specs)
    for spec in specs:
        if spec.name not in found and not any(f"'{spec.name}'" in p for p in problems):
            problems.append(
                f"topic '{spec.name}' ({env_name(spec.setting)}) does not exist; create the "
                "topics first (consumers.kafka.topics.create_topics)"
            )
    events = found.get(settings.topic_case_events)
    state = found.get(settings.topic_case_state)
    if events is not None and state is not None and events.partitions != state.partitions:
        problems.append(
            f"'{settings.topic_case_events}' has {events.partitions} partitions but "
            f"'{settings.topic_case_state}' has {state.partitions}: the events topic and the "
            "state changelog must have the same partition count (co-partitioned by case_id)"
        )
    if state is not None:
        policy = state.configs.get("cleanup.policy", "")
        if sorted(p.strip() for p in policy.split(",")) != ["compact"]:
            problems.append(
                f"changelog topic '{settings.topic_case_state}' has cleanup.policy={policy}; it "
                "must be compact (with delete, the state of cases idle longer than the "
                "retention would be lost)"
            )
    return problems
