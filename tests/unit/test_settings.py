"""consumers/runtime/settings.py: env parsing, validation messages, secrets, Kafka client
keywords."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from consumers.runtime.settings import Settings, SettingsError, kafka_client_config, load_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own FENGQIAO_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = load_settings()
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.security_protocol == "PLAINTEXT"
    assert s.group_id == "fengqiao-engine"
    assert s.transactional_id_prefix == "fengqiao-engine"
    assert s.instance_id == socket.gethostname()
    assert s.transactional_id == f"fengqiao-engine-{socket.gethostname()}"
    assert s.topic_names() == (
        "fengqiao.case-events",
        "fengqiao.transitions",
        "fengqiao.case-state",
        "fengqiao.dead-letter",
    )
    assert (s.partitions, s.replication_factor) == (6, 1)
    assert s.workflows == Path("workflows")
    assert (s.store, s.sqlite_path) == ("memory", None)
    assert (s.batch_max_records, s.commit_interval_ms, s.transaction_timeout_ms) == (
        500,
        100,
        10000,
    )
    assert (s.http_host, s.http_port) == ("0.0.0.0", 9464)  # noqa: S104
    assert s.clock == "wall"


def test_env_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": "k1:9092, k2:9093",
        "FENGQIAO_GROUP_ID": "g",
        "FENGQIAO_INSTANCE_ID": "engine-0",
        "FENGQIAO_TOPIC_CASE_STATE": "x.state",
        "FENGQIAO_PARTITIONS": "12",
        "FENGQIAO_REPLICATION_FACTOR": "3",
        "FENGQIAO_STORE": "sqlite:/var/lib/fengqiao/cases.db",
        "FENGQIAO_BATCH_MAX_RECORDS": "50",
        "FENGQIAO_COMMIT_INTERVAL_MS": "250",
        "FENGQIAO_HTTP_PORT": "0",
        "FENGQIAO_CLOCK": "Events",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert s.bootstrap_servers == "k1:9092,k2:9093"
    assert s.group_id == "g"
    assert s.transactional_id == "fengqiao-engine-engine-0"
    assert s.topic_case_state == "x.state"
    assert (s.partitions, s.replication_factor) == (12, 3)
    assert s.sqlite_path == Path("/var/lib/fengqiao/cases.db")
    assert (s.batch_max_records, s.commit_interval_ms, s.http_port) == (50, 250, 0)
    assert s.clock == "events"


def test_the_test_suite_bootstrap_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    assert load_settings().bootstrap_servers == "broker:29092"


def test_overrides_beat_env_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_PARTITIONS", "12")
    monkeypatch.setenv("FENGQIAO_GROUP_ID", "from-env")
    s = load_settings({"partitions": 3, "group_id": None})
    assert s.partitions == 3
    assert s.group_id == "from-env"


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.partitions = 3  # type: ignore[misc]


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("FENGQIAO_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("FENGQIAO_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("FENGQIAO_SASL_USERNAME", "engine")
    monkeypatch.setenv("FENGQIAO_SASL_PASSWORD", "hunter2-sasl")
    monkeypatch.setenv("FENGQIAO_SSL_CAFILE", str(ca))
    monkeypatch.setenv("FENGQIAO_SSL_PASSWORD", "hunter2-key")
    s = load_settings()
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        assert "hunter2" not in text
        assert "**********" in text
    assert s.security_protocol == "SASL_SSL"
    assert s.sasl_mechanism == "SCRAM-SHA-512"

    config = kafka_client_config(s)
    assert config == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(ca),
        "ssl_password": "hunter2-key",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "engine",
        "sasl_plain_password": "hunter2-sasl",
    }


def test_plaintext_client_config_is_minimal() -> None:
    config = kafka_client_config(load_settings({"bootstrap_servers": "a:1,b:2"}))
    assert config == {"bootstrap_servers": ["a:1", "b:2"], "security_protocol": "PLAINTEXT"}


def test_error_names_the_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_COMMIT_INTERVAL_MS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "FENGQIAO_COMMIT_INTERVAL_MS: Input should be greater than 0" in message
    assert caught.value.problems == [
        "FENGQIAO_COMMIT_INTERVAL_MS: Input should be greater than 0 (got '0')"
    ]


def test_every_problem_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_PARTITIONS", "many")
    monkeypatch.setenv("FENGQIAO_STORE", "postgres://db")
    monkeypatch.setenv("FENGQIAO_CLOCK", "sundial")
    monkeypatch.setenv("FENGQIAO_SECURITY_PROTOCOL", "TLS")
    monkeypatch.setenv("FENGQIAO_TOPIC_CASE_STATE", "bad topic")
    with pytest.raises(SettingsError) as caught:
        load_settings({"http_port": 70000, "no_such_setting": 1})
    message = str(caught.value)
    assert message.startswith("invalid settings (7 problems):\n")
    for name in (
        "FENGQIAO_PARTITIONS",
        "FENGQIAO_STORE",
        "FENGQIAO_CLOCK",
        "FENGQIAO_SECURITY_PROTOCOL",
        "FENGQIAO_TOPIC_CASE_STATE",
        "FENGQIAO_HTTP_PORT",
        "FENGQIAO_NO_SUCH_SETTING: unknown setting",
    ):
        assert f"\n  {name}" in message, name


def test_cross_field_checks_name_the_variables_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FENGQIAO_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("FENGQIAO_COMMIT_INTERVAL_MS", "20000")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "hunter2" not in message
    assert "FENGQIAO_SASL_PASSWORD set but FENGQIAO_SECURITY_PROTOCOL=PLAINTEXT" in message
    assert "FENGQIAO_COMMIT_INTERVAL_MS (20000) must be below FENGQIAO_TRANSACTION_TIMEOUT_MS" in (
        message
    )


def test_sasl_needs_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(SettingsError, match="FENGQIAO_SASL_MECHANISM, FENGQIAO_SASL_USERNAME"):
        load_settings()


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_SSL_PASSWORD", "hunter2")
    monkeypatch.setenv("FENGQIAO_PARTITIONS", "0")
    with pytest.raises(SettingsError) as caught:
        load_settings({"sasl_password": 12345})
    assert "hunter2" not in str(caught.value)
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(
    ("store", "ok"),
    [("memory", True), ("sqlite:cases.db", True), ("sqlite:", False), ("redis", False)],
)
def test_store_values(store: str, ok: bool) -> None:
    if ok:
        assert load_settings({"store": store}).store == store
    else:
        with pytest.raises(
            SettingsError, match='FENGQIAO_STORE: expected "memory" or "sqlite:PATH"'
        ):
            load_settings({"store": store})


def test_topic_names_must_be_distinct() -> None:
    with pytest.raises(SettingsError, match="must be distinct"):
        load_settings({"topic_transitions": "fengqiao.case-events"})


def test_settings_class_reads_env_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_BATCH_MAX_RECORDS", "7")
    assert Settings().batch_max_records == 7
