"""The read side's settings (consumers/view/settings.py): `FENGQIAO_VIEW_*` from the
environment, the engine's Kafka settings shared, every problem named by its variable, the
database URL never shown with its password, and no warning about the view's variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.runtime.settings import SettingsError
from consumers.runtime.variables import setting_variables, unknown_variable_warnings
from consumers.view.settings import (
    ViewSettings,
    database_url,
    load_view_config,
    load_view_settings,
    session_key,
    shown_url,
)

pytestmark = pytest.mark.unit

VIEW_VARIABLES = {
    "FENGQIAO_VIEW_DB", "FENGQIAO_VIEW_HTTP_HOST", "FENGQIAO_VIEW_HTTP_PORT",
    "FENGQIAO_VIEW_ACCESS", "FENGQIAO_VIEW_BATCH", "FENGQIAO_VIEW_SESSION_KEY",
}  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own FENGQIAO_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)


def test_defaults_need_nothing_installed() -> None:
    s = load_view_settings()
    assert s.view_db.get_secret_value() == "sqlite:///fengqiao-view.db"
    assert (s.view_http_host, s.view_http_port) == ("0.0.0.0", 9465)  # noqa: S104
    assert (s.view_access, s.view_batch) == (None, 1000)
    assert database_url(s).get_backend_name() == "sqlite"


def test_env_is_parsed_and_shared_with_the_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens: []\n")
    env = {
        "FENGQIAO_VIEW_DB": "postgresql://view:s3cret@db.example:5433/fengqiao",
        "FENGQIAO_VIEW_HTTP_HOST": "127.0.0.1",
        "FENGQIAO_VIEW_HTTP_PORT": "8080",
        "FENGQIAO_VIEW_ACCESS": str(tokens),
        "FENGQIAO_VIEW_BATCH": "200",
        "FENGQIAO_BOOTSTRAP_SERVERS": "k1:9092",
        "FENGQIAO_TOPIC_TRANSITIONS": "town.transitions",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_view_config()
    assert (config.view.view_http_host, config.view.view_http_port) == ("127.0.0.1", 8080)
    assert (config.view.view_access, config.view.view_batch) == (tokens, 200)
    assert config.kafka.bootstrap_servers == "k1:9092"
    assert config.kafka.topic_transitions == "town.transitions"
    # SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed: psycopg 3
    url = database_url(config.view)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password) == ("view", "s3cret")
    assert (url.host, url.port) == ("db.example", 5433)
    assert "s3cret" not in shown_url(url)
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(config.view.model_dump())


def test_flags_win_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_VIEW_HTTP_PORT", "8080")
    s = load_view_settings({"view_http_port": 0, "view_db": None})
    assert s.view_http_port == 0
    assert s.view_db.get_secret_value() == "sqlite:///fengqiao-view.db"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://u@h/db", "runs on SQLite or PostgreSQL, not mysql"),
        ("not a url", "expected sqlite:///PATH or postgresql://"),
        ("sqlite://", "needs a file"),
    ],
)
def test_a_database_the_view_cannot_use_is_refused(url: str, problem: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_view_settings({"view_db": url})
    assert problem in str(refused.value)
    assert str(refused.value).count("FENGQIAO_VIEW_DB") == 1


def test_every_problem_of_both_settings_in_one_message_without_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FENGQIAO_VIEW_DB", "oracle://u:hunter2@h/db")
    monkeypatch.setenv("FENGQIAO_VIEW_BATCH", "0")
    monkeypatch.setenv("FENGQIAO_VIEW_ACCESS", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("FENGQIAO_COMMIT_INTERVAL_MS", "0")
    with pytest.raises(SettingsError) as refused:
        load_view_config()
    message = str(refused.value)
    assert "4 problems" in message
    assert "FENGQIAO_VIEW_BATCH: Input should be greater than 0 (got '0')" in message
    assert "FENGQIAO_VIEW_ACCESS: Path does not point to a file" in message
    assert "FENGQIAO_COMMIT_INTERVAL_MS" in message
    assert "FENGQIAO_VIEW_DB" in message
    assert "hunter2" not in message


def test_an_empty_access_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_VIEW_ACCESS", " ")
    assert load_view_settings().view_access is None


def test_the_view_variables_are_settings_not_typos() -> None:
    """`fengqiao run` and `fengqiao view` share one environment: neither warns about the
    other's variables, and a typo of the view's gets the view's name as the hint."""
    assert set(setting_variables()) >= VIEW_VARIABLES
    assert {f"FENGQIAO_{f.upper()}" for f in ViewSettings.model_fields} == VIEW_VARIABLES
    assert unknown_variable_warnings(dict.fromkeys(VIEW_VARIABLES, "x")) == []
    assert unknown_variable_warnings({"FENGQIAO_VIEW_BATCHES": "5"}) == [
        "warning: FENGQIAO_VIEW_BATCHES is not a Fengqiao setting "
        "(did you mean FENGQIAO_VIEW_BATCH?)"
    ]


def test_a_sqlite_url_is_kept_as_written() -> None:
    s = load_view_settings({"view_db": "sqlite:////var/lib/fengqiao/view.db"})
    assert database_url(s) == sa.make_url("sqlite:////var/lib/fengqiao/view.db")


def test_a_session_key_is_long_secret_and_the_same_for_the_same_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert session_key(load_view_settings()) is None  # unset: random per process
    monkeypatch.setenv("FENGQIAO_VIEW_SESSION_KEY", "short-and-guessable")
    with pytest.raises(SettingsError) as refused:
        load_view_settings()
    assert "FENGQIAO_VIEW_SESSION_KEY: a session key needs at least 32 characters" in str(
        refused.value
    )
    assert "short-and-guessable" not in str(refused.value)
    monkeypatch.setenv("FENGQIAO_VIEW_SESSION_KEY", "x" * 32)
    key = session_key(load_view_settings())
    assert key is not None
    assert len(key) == 32
    assert key == session_key(load_view_settings())
    assert "x" * 32 not in repr(load_view_settings())
