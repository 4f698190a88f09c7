"""What `fengqiao run` tells an operator before it joins Kafka: its `--help` lists every
`FENGQIAO_*` setting, an unknown `FENGQIAO_*` variable is one warning line, and an HTTP port it
cannot bind is one error line and exit 2 (not a traceback)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from consumers.cli import service
from consumers.cli.main import main
from consumers.cli.service import run_service
from consumers.runtime.settings import Settings, env_name, load_settings
from consumers.runtime.variables import (
    TOOL_VARIABLES,
    setting_variables,
    unknown_variable_warnings,
    variables_help,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DELIBERATE_TYPOS = {"FENGQIAO_NO_SUCH_SETTING", "FENGQIAO_BOOTSTRAP_SERVER", "FENGQIAO_WHATEVER",
                    "FENGQIAO_VIEW_BATCHES"}  # fmt: skip
"""Unknown names the tests and the README use on purpose, to show the refusal or the warning."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No FENGQIAO_* variable of the shell running the tests leaks in."""
    for name in [n for n in os.environ if n.upper().startswith("FENGQIAO_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_run_help_lists_every_setting_with_default_choices_and_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys)
    flat = " ".join(text.split())
    assert "settings (environment variables" in text
    for field, info in Settings.model_fields.items():
        assert re.search(rf"^  {env_name(field)}\b", text, re.MULTILINE), field
        if info.description:
            assert " ".join(info.description.split()) in flat, field
    assert "  FENGQIAO_BATCH_MAX_RECORDS = 500\n" in text
    assert "  FENGQIAO_STATIC_MEMBERSHIP = true\n" in text
    assert "  FENGQIAO_INSTANCE_ID = the hostname\n" in text
    assert "  FENGQIAO_CLOCK = wall  (wall | events)\n" in text
    assert "  FENGQIAO_SASL_MECHANISM  (PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512)\n" in text
    assert "session timeout" in flat  # the static-membership trade-off is told where it is set
    # readable: the list keeps its own line breaks (not re-flowed by argparse), every line fits
    assert max(len(line) for line in variables_help().splitlines()) <= 90


def test_an_unknown_variable_is_one_warning_with_the_likely_setting(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("FENGQIAO_BOOTSTRAP_SERVER", "broker:9092")
    clean_env.setenv("FENGQIAO_WHATEVER", "1")
    clean_env.setenv("FENGQIAO_COMMIT_INTERVAL_MS", "0")  # invalid: stops before any broker
    for name in ("FENGQIAO_KAFKA_BOOTSTRAP_SERVERS", "FENGQIAO_REQUIRE_KAFKA", "FENGQIAO_PYTHON",
                 "FENGQIAO_KAFKA_IMAGE"):  # fmt: skip
        clean_env.setenv(name, "127.0.0.1:9092" if "BOOTSTRAP" in name else "x")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("warning:")]
    assert warnings == [
        "warning: FENGQIAO_BOOTSTRAP_SERVER is not a Fengqiao setting "
        "(did you mean FENGQIAO_BOOTSTRAP_SERVERS?)",
        "warning: FENGQIAO_WHATEVER is not a Fengqiao setting",
    ]
    assert any("FENGQIAO_COMMIT_INTERVAL_MS" in line for line in err)  # the error still follows


def test_settings_and_their_aliases_are_never_warned_about_in_any_case() -> None:
    environ = dict.fromkeys(setting_variables(), "x")
    environ["fengqiao_group_id"] = "x"  # the settings read names case-insensitively
    assert unknown_variable_warnings(environ) == []
    assert unknown_variable_warnings({"PATH": "/bin", "NOT_FENGQIAO": "1"}) == []


def test_every_fengqiao_variable_in_the_repository_is_a_setting_or_a_tool_variable() -> None:
    """Tests, deploy files, Makefile, CI and docs: a new tool variable goes to TOOL_VARIABLES,
    or the engine would warn about it in every shell that exports it."""
    files = [ROOT / "Makefile", ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    for folder in ("tests", "deploy", ".ci", "docs"):
        files.extend(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix != ".pyc")
    found: dict[str, Path] = {}
    for path in files:
        text = path.read_text(errors="replace")
        for name in re.findall(r"FENGQIAO_[A-Z0-9_]*[A-Z0-9]", text):
            found.setdefault(name, path)
    known = set(setting_variables()) | TOOL_VARIABLES | DELIBERATE_TYPOS
    prefixes = {"FENGQIAO_TOPIC", "FENGQIAO_KAFKA", "FENGQIAO_VIEW"}  # "FENGQIAO_TOPIC_*" in prose
    unknown = {n: str(p.relative_to(ROOT)) for n, p in found.items()
               if n not in known and n not in prefixes}  # fmt: skip
    assert not unknown, unknown
    assert "FENGQIAO_REQUIRE_KAFKA" in found  # the scan sees the test variables


def test_a_busy_http_port_is_one_error_line_and_exit_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setattr(service, "check_topics", lambda _settings: [])  # no broker needed
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings({"http_host": "127.0.0.1", "http_port": port,
                                  "workflows": ROOT / "workflows"})  # fmt: skip
        assert run_service(settings) == 2
    assert capsys.readouterr().err == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_an_unknown_http_host_is_one_error_line_and_exit_2(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setattr(service, "check_topics", lambda _settings: [])
    settings = load_settings({"http_host": "no-such-host.invalid", "http_port": 0,
                              "workflows": ROOT / "workflows"})  # fmt: skip
    assert run_service(settings) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot listen on no-such-host.invalid:0: "), err
    assert len(err.splitlines()) == 1
