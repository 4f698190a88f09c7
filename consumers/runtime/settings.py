"""Settings of the Kafka service (`fengqiao run`), from env `FENGQIAO_*` and CLI flags.

Every field is flat and read from `FENGQIAO_<FIELD NAME IN UPPER CASE>`, e.g.
`FENGQIAO_BOOTSTRAP_SERVERS`, `FENGQIAO_COMMIT_INTERVAL_MS`, `FENGQIAO_SASL_PASSWORD`
(`FENGQIAO_KAFKA_BOOTSTRAP_SERVERS` is accepted too, the name the test-suite uses). Flags passed
to `load_settings` as overrides win over the environment. The object is frozen; to vary it, call
`load_settings` again (`model_copy(update=...)` would skip validation).

Secrets (`sasl_password`, `ssl_password`) are `SecretStr`: `repr`, `str`, `model_dump` and
every error message show `**********`; only `kafka_client_config` unwraps them, for the Kafka
client, and nothing logs that dict.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    Field,
    FilePath,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumers.errors import ShellError

ENV_PREFIX = "FENGQIAO_"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
ClockMode = Literal["wall", "events"]

# Kafka's own rule for topic names (and a sane one for group / transactional ids).
_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]]+)(:\d{1,5})?$")
_SECRET_FIELDS = frozenset({"sasl_password", "ssl_password"})

KafkaName = Annotated[str, Field(pattern=_KAFKA_NAME.pattern)]
PositiveInt = Annotated[int, Field(gt=0)]


class SettingsError(ShellError, ValueError):
    """Settings that cannot be used; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        super().__init__(f"invalid settings ({count}):\n" + "\n".join(f"  {p}" for p in problems))


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Everything `fengqiao run` needs; see the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        frozen=True,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    # -- Kafka connection ---------------------------------------------------------------------
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list of brokers to bootstrap from.",
        validation_alias=AliasChoices(
            "bootstrap_servers",
            "FENGQIAO_BOOTSTRAP_SERVERS",
            "FENGQIAO_KAFKA_BOOTSTRAP_SERVERS",
        ),
    )
    security_protocol: SecurityProtocol = Field("PLAINTEXT", description="TLS, SASL, both or none.")
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="Required with SASL_PLAINTEXT / SASL_SSL."
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: FilePath | None = Field(
        default=None, description="CA bundle (PEM) to verify the brokers; system CAs if unset."
    )
    ssl_certfile: FilePath | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS."
    )
    ssl_keyfile: FilePath | None = Field(default=None, description="Client private key (PEM).")
    ssl_password: SecretStr | None = Field(
        default=None, description="Password of the client private key."
    )
    ssl_check_hostname: bool = Field(True, description="Verify the brokers' host names (TLS).")

    # -- identity -----------------------------------------------------------------------------
    group_id: KafkaName = Field("fengqiao-engine", description="Consumer group of the engines.")
    transactional_id_prefix: KafkaName = Field(
        "fengqiao-engine", description="The producer's transactional id is <prefix>-<instance_id>."
    )
    instance_id: KafkaName = Field(
        default_factory=socket.gethostname,
        description=(
            "Stable name of this engine process (default: the hostname). The producer's "
            "transactional id is `<transactional_id_prefix>-<instance_id>`: a restarted process "
            "must reuse its instance id so that its transactional id fences its predecessor "
            "(a zombie can then no longer commit); with static_membership it also names the "
            "process in its consumer groups. Two live processes must never share one. "
            "In Kubernetes use a StatefulSet pod name, not a Deployment's random pod name."
        ),
    )
    static_membership: bool = Field(
        default=True,
        description=(
            "The engine joins its consumer group as a static member named after instance_id "
            "(KIP-345; the intake adapters stay dynamic members): a "
            "process restarted with the same instance id takes its partitions back at once, "
            "without a rebalance, if it is back within the session timeout. A member that dies "
            "for good keeps its partitions until the session timeout ends (as without it). "
            "SIGTERM still leaves the group, so its partitions move at once."
        ),
    )

    # -- topics -------------------------------------------------------------------------------
    topic_case_events: KafkaName = Field("fengqiao.case-events", description="Case events in.")
    topic_transitions: KafkaName = Field("fengqiao.transitions", description="Records out.")
    topic_case_state: KafkaName = Field("fengqiao.case-state", description="Compacted changelog.")
    topic_dead_letter: KafkaName = Field("fengqiao.dead-letter", description="Refused input.")
    partitions: PositiveInt = Field(
        default=6, description="Partitions of case-events and case-state when creating topics."
    )
    replication_factor: PositiveInt = Field(
        default=1, description="Replication factor when creating topics (3 in production)."
    )

    # -- engine -------------------------------------------------------------------------------
    intake_topic_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,200}$")] = (
        Field(
            default="fengqiao.intake.",
            description="Intake topics are <prefix><channel>: one per upstream system.",
        )
    )
    adapter_group_id: KafkaName = Field("fengqiao-adapters", description="The adapters' group.")
    person_key_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for `person_key` (links reports by the same person without "
        "keeping the phone or ID number); unset: no person_key is derived.",
    )
    role: Literal["all", "engine", "adapters"] = Field(
        default="all", description="What `fengqiao run` runs: both loops, or one of them."
    )
    workflows: Path = Field(Path("workflows"), description="Folder of workflow files.")
    store: str = Field(default="memory", description='"memory" or "sqlite:PATH".')
    retention_days: int = Field(
        default=90, ge=0, le=36500,
        description="Days of domain time a closed case is kept (duplicates recognised, late "
        "events refused as a closed case's, lookups), then retired: deleted from the store and "
        "tombstoned in the changelog. Later events for it find no case; 0 keeps closed cases.",
    )  # fmt: skip
    batch_max_records: PositiveInt = Field(500, description="Most inputs in one batch (one "
        "transaction); its sends (~2 records an input, ~50-100 µs each) must fit in the "
        "transaction timeout.")  # fmt: skip
    commit_interval_ms: PositiveInt = Field(100, description="Longest an idle poll waits, and "
        "the longest polls are gathered into one transaction while behind (consumers/kafka/"
        "gather.py).")  # fmt: skip
    transaction_timeout_ms: PositiveInt = Field(
        10000, description="The broker aborts a transaction left open longer (by a dead process)."
    )
    session_timeout_ms: int = Field(
        default=45000,
        ge=6000,
        le=300000,
        description=(
            "Consumer-group session timeout: a member silent this long is dropped and its "
            "partitions move (failover of a crashed process takes this long; with static "
            "membership a restart within it keeps the partitions, without a rebalance). "
            "`/healthz` fails after 3 of them without a stable membership. Within the broker's "
            "group.min/max.session.timeout.ms (6 s and 30 min by default)."
        ),
    )
    clock: ClockMode = Field(
        default="wall",
        description=(
            "Watermark for timers of idle cases: `wall` = the wall clock (production); "
            "`events` = the latest occurred_at seen (replays, tests)."
        ),
    )

    fixed_now: AwareDatetime | None = Field(
        default=None,
        description="With clock=wall, read this instant instead of the wall clock (tests, drills).",
    )

    # -- HTTP (/metrics, /healthz, /readyz) ---------------------------------------------------
    # A container's metrics endpoint listens on all interfaces.
    http_host: str = Field("0.0.0.0", description="Address of the HTTP endpoints.")  # noqa: S104
    http_port: int = Field(default=9464, ge=0, le=65535, description="0 = pick a free port.")

    # -- validation ---------------------------------------------------------------------------
    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("clock", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `FENGQIAO_SASL_MECHANISM=` in a compose file or Helm chart means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("needs at least one host:port")
        bad = [s for s in servers if not _HOST_PORT.match(s)]
        if bad:
            raise ValueError("expected host[:port][,host[:port]...]")
        return ",".join(servers)

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        if value == "memory":
            return value
        if value.startswith("sqlite:") and value.removeprefix("sqlite:").strip():
            return value
        raise ValueError('expected "memory" or "sqlite:PATH"')

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        problems: list[str] = []
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        protocol = f"{env_name('security_protocol')}={self.security_protocol}"
        if sasl:
            missing = [
                env_name(name)
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                problems.append(f"{protocol} needs {', '.join(missing)}")
        else:
            given = [
                env_name(name)
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is not None
            ]
            if given:
                problems.append(
                    f"{', '.join(given)} set but {protocol} does not use SASL "
                    "(use SASL_PLAINTEXT or SASL_SSL)"
                )
        if not tls:
            given = [
                env_name(name)
                for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")
                if getattr(self, name) is not None
            ]
            if given:
                problems.append(
                    f"{', '.join(given)} set but {protocol} does not use TLS (use SSL or SASL_SSL)"
                )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            problems.append(f"{env_name('ssl_keyfile')} needs {env_name('ssl_certfile')}")
        if self.commit_interval_ms >= self.transaction_timeout_ms:
            problems.append(
                f"{env_name('commit_interval_ms')} ({self.commit_interval_ms}) must be below "
                f"{env_name('transaction_timeout_ms')} ({self.transaction_timeout_ms})"
            )
        topics = self.topic_names()
        if len(set(topics)) != len(topics):
            problems.append(
                "the four FENGQIAO_TOPIC_* names must be distinct, got " + ", ".join(topics)
            )
        if problems:
            # One ValueError per model: pydantic reports it with an empty location.
            raise ValueError("; ".join(problems))
        return self

    # -- derived values -----------------------------------------------------------------------
    @property
    def transactional_id(self) -> str:
        """This process's producer transactional id: `<prefix>-<instance_id>`."""
        return f"{self.transactional_id_prefix}-{self.instance_id}"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of `store=sqlite:PATH`, or None for the in-memory store."""
        return Path(self.store.removeprefix("sqlite:")) if self.store != "memory" else None

    def topic_names(self) -> tuple[str, str, str, str]:
        """case-events, transitions, case-state, dead-letter."""
        return (
            self.topic_case_events,
            self.topic_transitions,
            self.topic_case_state,
            self.topic_dead_letter,
        )


TRANSACTIONAL_RETRY_BACKOFF_MS = 20
"""`retry_backoff_ms` of our transactional producers (kafka-python's default: 100).

A transaction that begins while the broker is still writing the previous one's commit markers
is answered CONCURRENT_TRANSACTIONS and retried after this backoff. Back-to-back transactions,
one per polled batch, hit it all the time. The Java client retries that case after 20 ms
(KAFKA-5477); kafka-python 3.0 computes the same 20 ms but sleeps the configured backoff, so
each batch paid up to 100 ms (measured: engine p99 at 1,000 events/s 297 ms → see README).
"""


def kafka_client_config(settings: Settings) -> dict[str, object]:
    """Keyword arguments for KafkaProducer, KafkaConsumer and KafkaAdminClient alike.

    `bootstrap_servers` plus the security settings; only keys all three clients accept. The
    result holds secrets in clear text: pass it to the client, never log or print it.
    """
    config: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        config["ssl_check_hostname"] = settings.ssl_check_hostname
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(settings, name)
            if path is not None:
                config[name] = str(path)
        if settings.ssl_password is not None:
            config["ssl_password"] = settings.ssl_password.get_secret_value()
    if settings.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return config


def _describe(error: Mapping[str, Any]) -> str:
    loc = error.get("loc", ())
    field = str(loc[0]) if loc else ""
    if field.upper().startswith(ENV_PREFIX):  # reported under its env alias
        field = field[len(ENV_PREFIX) :].lower()
    if field == "kafka_bootstrap_servers":
        field = "bootstrap_servers"
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    if not field:  # a model-level check: its message names the variables itself
        return message
    where = env_name(field) + "".join(f"[{part}]" for part in loc[1:])
    if error.get("type") == "extra_forbidden":
        return f"{where}: unknown setting"
    shown = ""
    if field not in _SECRET_FIELDS and error.get("type") not in ("missing",):
        value = error.get("input")
        if isinstance(value, str | int | float | bool | Path):
            text = repr(str(value) if isinstance(value, Path) else value)
            shown = f" (got {text[:80]})"
    return f"{where}: {message}{shown}"


def load_settings(overrides: Mapping[str, object] | None = None) -> Settings:
    """Settings from the environment, with `overrides` (field name → value, e.g. CLI flags) on top.

    Overrides whose value is None are ignored (an argparse flag that was not given). Raises
    `SettingsError` naming every bad variable at once, e.g.
    `FENGQIAO_COMMIT_INTERVAL_MS: Input should be greater than 0 (got '0')`.
    """
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as err:
        raise SettingsError([_describe(e) for e in err.errors()]) from None
