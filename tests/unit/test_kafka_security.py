"""The connection checks of `consumers.kafka.admin` that need no broker: TLS files are checked
before connecting, refused logins and failed handshakes are named from kafka-python's own log
records, and nothing shown carries a secret. (The same paths against real brokers:
tests/integration/test_security.py.)"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl import SaslAuthenticateRequest

from consumers.kafka.admin import _ConnectFailures, tls_problem
from consumers.runtime.settings import Settings, load_settings

pytestmark = pytest.mark.unit

PASSWORD = "hunter2-key-password"  # noqa: S105 - a throwaway key made by this test


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate and its key, encrypted with PASSWORD (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-keyout", str(folder / "client.key"), "-out", str(folder / "client.pem"), "-days", "1",
         "-subj", "/CN=test", "-passout", f"pass:{PASSWORD}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


def _ssl(folder: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "security_protocol": "SSL",
        "ssl_cafile": folder / "client.pem",
        "ssl_certfile": folder / "client.pem",
        "ssl_keyfile": folder / "client.key",
        "ssl_password": PASSWORD,
    }
    return load_settings({**values, **changes})


def test_usable_tls_files_pass(tls_files: Path) -> None:
    assert tls_problem(_ssl(tls_files)) is None


def test_a_wrong_or_missing_key_password_is_named_without_the_password(tls_files: Path) -> None:
    for password in ("wrong-password", None):
        problem = tls_problem(_ssl(tls_files, ssl_password=password))
        assert problem is not None
        assert problem.startswith("cannot load the client certificate FENGQIAO_SSL_CERTFILE=")
        assert "FENGQIAO_SSL_PASSWORD" in problem
        assert "wrong-password" not in problem
        assert PASSWORD not in problem


def test_a_ca_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    problem = tls_problem(load_settings({"security_protocol": "SASL_SSL", "ssl_cafile": ca,
                                         "sasl_mechanism": "PLAIN", "sasl_username": "u",
                                         "sasl_password": "p"}))  # fmt: skip
    assert problem is not None
    assert problem.startswith(f"FENGQIAO_SSL_CAFILE={ca}: not a readable PEM CA bundle")


def test_no_tls_no_check() -> None:
    assert tls_problem(load_settings()) is None


def _record(*args: object) -> logging.LogRecord:
    return logging.LogRecord("kafka.net.manager", logging.WARNING, "x", 1, "%s %s", args, None)


def test_a_refused_login_is_named_with_the_variables_to_check() -> None:
    settings = load_settings({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism":
                              "SCRAM-SHA-256", "sasl_username": "alice",
                              "sasl_password": "secret-sasl-password"})  # fmt: skip
    failures = _ConnectFailures()
    assert failures.refusal(settings) is None
    error = SaslAuthenticationFailedError(
        "SaslAuthenticationFailedError: Authentication failed during authentication due to "
        "invalid credentials with SASL mechanism SCRAM-SHA-256"
    )
    failures.handle(_record("bootstrap-0", error))
    refusal = failures.refusal(settings)
    assert refusal == (
        "Kafka at 127.0.0.1:9092 (SASL_PLAINTEXT) refused the SASL login of 'alice' with "
        "SCRAM-SHA-256: Authentication failed during authentication due to invalid credentials "
        "with SASL mechanism SCRAM-SHA-256; check FENGQIAO_SASL_MECHANISM, FENGQIAO_SASL_USERNAME "
        "and FENGQIAO_SASL_PASSWORD"
    )


class _Connection:
    """What kafka-python's KafkaConnection offers the watcher: its protocol parser."""

    def __init__(self, *requests: Any) -> None:
        self.parser = KafkaProtocol(client_id="test")
        for request in requests:
            self.parser.send_request(request)


def _sasl_authenticate() -> Any:
    request = SaslAuthenticateRequest(b"n,,n=alice")
    request.API_VERSION = 2
    return request


def test_a_login_cut_by_the_broker_is_not_called_unreachable() -> None:
    """Under load kafka-python can drop the broker's refusal that came with the close: the
    connection lost during the SASL exchange is then the only sign of refused credentials."""
    settings = load_settings({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                              "sasl_username": "alice", "sasl_password": "pw"})  # fmt: skip
    failures = _ConnectFailures()
    failures.handle(_record(_Connection(_sasl_authenticate()), KafkaConnectionError("closed")))
    assert failures.refusal(settings) == (
        "Kafka at 127.0.0.1:9092 (SASL_PLAINTEXT) closed the connection during the SASL login of "
        "'alice' with PLAIN: the credentials or the mechanism were refused or could not be "
        "verified; check FENGQIAO_SASL_MECHANISM, FENGQIAO_SASL_USERNAME and "
        "FENGQIAO_SASL_PASSWORD"
    )


def test_a_connection_lost_outside_the_login_says_nothing_of_credentials() -> None:
    settings = load_settings({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                              "sasl_username": "alice", "sasl_password": "pw"})  # fmt: skip
    failures = _ConnectFailures()
    failures.handle(_record(_Connection(), KafkaConnectionError("socket disconnected")))
    failures.handle(_record("bootstrap-0", KafkaConnectionError("socket disconnected")))
    assert failures.refusal(settings) is None


def test_a_failed_handshake_is_named() -> None:
    failures = _ConnectFailures()
    failures.handle(_record("bootstrap-0", KafkaConnectionError("Handshake failed: [SSL: X]")))
    failures.handle(_record("bootstrap-0", KafkaConnectionError("socket disconnected")))
    refusal = failures.refusal(load_settings())
    assert refusal is not None
    assert refusal.startswith("TLS handshake with Kafka at 127.0.0.1:9092 (PLAINTEXT) failed")
    assert "FENGQIAO_SSL_CAFILE" in refusal


def test_kafka_pythons_configuration_dump_stays_hidden_at_debug() -> None:
    """KafkaAdminClient logs its configuration, SASL password included, at DEBUG."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert logging.getLogger("kafka.admin.client").getEffectiveLevel() == logging.INFO
    finally:
        root.setLevel(level)
