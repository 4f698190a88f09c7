"""Connecting to Kafka for administration, and saying clearly why it failed.

`admin_client(settings)` is a connected `KafkaAdminClient`, or a `TopicsError` whose message
names what to check: the bootstrap servers when no broker answers; the SASL variables when the
broker refused (or cut) our login; the CA file when the TLS handshake failed. kafka-python itself
retries all of these like network errors and finally reports only a timeout: the reasons are
read from the exceptions in its own log records (`_ConnectFailures`).
"""

from __future__ import annotations

import logging
import re
import ssl
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consumers.errors import ShellError
from consumers.runtime.settings import Settings, env_name, kafka_client_config

with warnings.catch_warnings():
    # kafka-python 3.0.x loads its protocol schemas with importlib.resources.read_text, which
    # Python 3.11+ flags as deprecated: harmless, but fatal under `-W error`.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.errors import (
        KafkaConnectionError,
        KafkaError,
        KafkaTimeoutError,
        SaslAuthenticationFailedError,
        UnsupportedSaslMechanismError,
    )

# kafka-python's admin client logs its whole configuration, SASL password included, at DEBUG:
# keep that one logger above DEBUG whatever level the root logger is given.
logging.getLogger("kafka.admin.client").setLevel(logging.INFO)

BOOTSTRAP_ATTEMPT_MS = 3_000
"""Bootstrap in windows this long, so refused credentials end the wait at once (kafka-python
itself retries a failed SASL login until its bootstrap timeout and then only says "timeout")."""


class TopicsError(ShellError):
    """Kafka could not be reached, or refused to create a topic."""


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
