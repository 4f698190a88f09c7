"""Settings of the read side (`fengqiao view`, `fengqiao cases`), from env `FENGQIAO_VIEW_*`.

The view's own settings are the `FENGQIAO_VIEW_*` variables of `ViewSettings`. What it shares
with the engine is not repeated here but read through the engine's own `Settings`
(consumers/runtime/settings.py): the Kafka connection (`FENGQIAO_BOOTSTRAP_SERVERS`, the
`FENGQIAO_SECURITY_PROTOCOL` / `SASL_*` / `SSL_*` variables), the topic it reads
(`FENGQIAO_TOPIC_TRANSITIONS`) and the workflows folder (`FENGQIAO_WORKFLOWS`: the ladders'
order of tiers, which the row's `escalations` count needs). So one environment, one compose
file or one Kubernetes secret configures the engine and its view alike, and the two can never
disagree on the topic name or the broker's credentials. `load_view_settings` reads both and
reports every problem of either in one `SettingsError`.

`FENGQIAO_VIEW_DB` is a `SecretStr`: a PostgreSQL URL may carry a password (or leave it to
`PGPASSWORD` / `~/.pgpass`, which libpq reads). It shows as `**********` everywhere; only
`database_url` unwraps it, and `shown_url` prints it with the password masked.

The variables are registered with consumers/runtime/variables.py at import, so that every
command's check of unknown `FENGQIAO_*` variables knows them (that room sits below this one and
cannot import it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumers.runtime.settings import ENV_PREFIX, Settings, SettingsError, env_name, load_settings
from consumers.runtime.variables import register_settings

DEFAULT_DB = "sqlite:///fengqiao-view.db"
BACKENDS = ("sqlite", "postgresql")
_SECRET_FIELDS = frozenset({"view_db", "view_session_key"})
SESSION_KEY_MIN = 32

PositiveInt = Annotated[int, Field(gt=0)]


class ViewSettings(BaseSettings):
    """The read side's own settings; see the module docstring for the shared ones."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        frozen=True,
        extra="forbid",
        validate_default=True,
    )

    view_db: SecretStr = Field(
        default=SecretStr(DEFAULT_DB),
        description=(
            f"The read model's database (default {DEFAULT_DB}, a file beside the process): "
            "sqlite:///PATH embedded, or postgresql://USER@HOST:PORT/DB shared by several "
            "views and consoles (driver psycopg; the password may come from PGPASSWORD)."
        ),
    )
    view_http_host: str = Field(
        "0.0.0.0",  # noqa: S104 - a container's endpoint listens on all interfaces
        description="Address of the view's HTTP endpoints (API, console, /metrics, probes).",
    )
    view_http_port: int = Field(default=9465, ge=0, le=65535, description="0 = pick a free port.")
    view_access: FilePath | None = Field(
        default=None,
        description=(
            "The access file: hashed bearer tokens and their scopes. Unset: the API and the "
            "console are not served, only /metrics, /healthz and /readyz."
        ),
    )
    view_batch: int = Field(
        default=1000,
        gt=0,
        le=50_000,
        description="Most records projected in one database transaction.",
    )

    view_session_key: SecretStr | None = Field(
        default=None,
        description=(
            "The key that signs the console's session cookies, at least "
            f"{SESSION_KEY_MIN} characters of randomness. Unset: a random key per process, so "
            "sessions end at a restart and replicas behind one address refuse each other's; "
            "give every replica the same."
        ),
    )

    @field_validator("view_session_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < SESSION_KEY_MIN:
            raise ValueError(f"a session key needs at least {SESSION_KEY_MIN} characters")
        return value

    @field_validator("view_access", "view_session_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `FENGQIAO_VIEW_ACCESS=` in a compose file means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("view_db")
    @classmethod
    def _check_db(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        try:
            url = sa.make_url(text)
        except sa.exc.ArgumentError:
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB") from None
        if url.get_backend_name() not in BACKENDS:
            raise ValueError(f"the read model runs on SQLite or PostgreSQL, not {url.drivername}")
        if url.get_backend_name() == "sqlite" and not url.database:
            raise ValueError("sqlite:///PATH needs a file (an in-memory database would be lost)")
        return SecretStr(text)


register_settings(ViewSettings)


@dataclass(frozen=True)
class ViewConfig:
    """Everything `fengqiao view` needs: its own settings and the engine's shared ones."""

    view: ViewSettings
    kafka: Settings
    """Only the connection, `topic_transitions`, `topic_case_events` and `workflows` are read
    of it."""


def database_url(settings: ViewSettings) -> sa.URL:
    """`FENGQIAO_VIEW_DB` as SQLAlchemy takes it: a bare `postgresql://` gets the psycopg 3
    driver (SQLAlchemy's default driver, psycopg2, is not installed)."""
    url = sa.make_url(settings.view_db.get_secret_value())
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def session_key(settings: ViewSettings) -> bytes | None:
    """The HMAC key of session cookies from `FENGQIAO_VIEW_SESSION_KEY` (its SHA-256: any text
    of enough randomness makes a full-length key); None: a random one per process."""
    if settings.view_session_key is None:
        return None
    return hashlib.sha256(settings.view_session_key.get_secret_value().encode("utf-8")).digest()


def shown_url(url: sa.URL) -> str:
    """The URL for a message or a log line: the password masked."""
    return url.render_as_string(hide_password=True)


def load_view_settings(overrides: Mapping[str, object] | None = None) -> ViewSettings:
    """The view's settings from the environment, `overrides` (field → value, e.g. CLI flags;
    None: not given) on top. Raises `SettingsError` naming every bad variable."""
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return ViewSettings(**given)  # type: ignore[arg-type]
    except ValidationError as err:
        raise SettingsError([_describe(e) for e in err.errors()]) from None


def load_view_config(
    view_overrides: Mapping[str, object] | None = None,
    kafka_overrides: Mapping[str, object] | None = None,
) -> ViewConfig:
    """The view's settings and the engine's shared ones; one `SettingsError` for both."""
    problems: list[str] = []
    view: ViewSettings | None = None
    kafka: Settings | None = None
    try:
        view = load_view_settings(view_overrides)
    except SettingsError as err:
        problems += err.problems
    try:
        kafka = load_settings(kafka_overrides)
    except SettingsError as err:
        problems += err.problems
    if view is None or kafka is None:
        raise SettingsError(problems)
    return ViewConfig(view, kafka)


def _describe(error: Mapping[str, Any]) -> str:
    """`FENGQIAO_VIEW_BATCH: Input should be greater than 0 (got '0')`; a secret's value is
    never repeated."""
    loc = error.get("loc", ())
    field = str(loc[0]).lower().removeprefix(ENV_PREFIX.lower()) if loc else ""
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not field:
        return message
    if error.get("type") == "extra_forbid" or error.get("type") == "extra_forbidden":
        return f"{env_name(field)}: unknown setting"
    shown = ""
    value = error.get("input")
    if field not in _SECRET_FIELDS and isinstance(value, str | int | float | bool):
        shown = f" (got {repr(value)[:80]})"
    return f"{env_name(field)}: {message}{shown}"
