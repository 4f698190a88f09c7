"""`fengqiao --help` and every command's `--help` say what the command does and what each
argument means: a newcomer reads them before the README."""

from __future__ import annotations

import argparse

import pytest

from consumers.cli.main import build_parser, main

pytestmark = pytest.mark.unit


def _commands() -> dict[str, tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help or "" for action in sub._choices_actions}
    return {name: (helps.get(name, ""), command) for name, command in sub.choices.items()}


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_with_a_line_and_points_at_the_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_help(capsys).split())
    for name, (line, _) in _commands().items():
        assert len(line) > 15, f"{name} needs a one-line help"
        assert f"{name} {' '.join(line.split())}" in text
    assert "fengqiao demo" in text
    assert "README.md" in text


@pytest.mark.parametrize("name", sorted(_commands()))
def test_each_command_explains_itself_and_every_argument(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, command = _commands()[name]
    undocumented = [
        action.option_strings or action.dest
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert not undocumented, f"`fengqiao {name}`: arguments without help: {undocumented}"
    text = _help(capsys, name)
    assert text.startswith(f"usage: fengqiao {name}")
    description = " ".join((command.description or "").split())
    assert len(description) > 15, "the help says what the command does"
    assert description in " ".join(text.split())


def test_demo_help_explains_size_speed_output_port_and_resuming(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_help(capsys, "demo").split())
    for flag in ("--size", "--population", "--days", "--seed", "--start", "--speed", "--out",
                 "--port", "--fresh", "--workflows"):  # fmt: skip
        assert flag in text
    assert "0 = as fast as possible" in text
    assert "0 = any free port" in text
    assert "run the same command again to resume" in text
    assert "/metrics" in text
    assert "HTML report" in text
