"""The `FENGQIAO_*` variables as an operator meets them: listed by `fengqiao run --help`, and
checked when a command that reads them starts.

Why: pydantic-settings reads the variables it knows and silently ignores every other one, so a
typo (`FENGQIAO_BOOTSTRAP_SERVER`) ran the engine against the default broker with no word said.
Both the list and the check come from the `Settings` model itself (field, `env_name`, default,
choices, description), so neither can drift from what is really read.

Other commands have settings of their own (the read side's `FENGQIAO_VIEW_*`,
consumers/view/settings.py): their models `register_settings` when imported, since this room sits
below theirs and may not import them. The CLI imports every command, so by the time it checks
the environment, every model is registered: a variable of `fengqiao view` is no typo to `run`.

Not every `FENGQIAO_*` variable is a setting: the test suite and the tools around it have their
own (`TOOL_VARIABLES`); they are never warned about, since a shell that runs the tests often
has them exported while it starts the engine.
"""

from __future__ import annotations

import difflib
import socket
import textwrap
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from consumers.runtime.settings import ENV_PREFIX, Settings, env_name

TOOL_VARIABLES = frozenset({
    # the integration tests (tests/integration/conftest.py): an existing broker (also read as
    # FENGQIAO_BOOTSTRAP_SERVERS by the settings), fail rather than skip, testcontainers' image
    "FENGQIAO_KAFKA_BOOTSTRAP_SERVERS", "FENGQIAO_REQUIRE_KAFKA", "FENGQIAO_KAFKA_IMAGE",
    # deploy/local/kafka (deploy/local/README.md)
    "FENGQIAO_PYTHON", "FENGQIAO_KAFKA_VERSION", "FENGQIAO_KAFKA_CACHE", "FENGQIAO_MAVEN_REPO",
    "FENGQIAO_KAFKA_START_TIMEOUT", "FENGQIAO_KAFKA_SECURITY", "FENGQIAO_KAFKA_JAVA_OPTS",
    # tests/integration/prometheus_tools.py, tests/unit/fuzzing.py, tests/contract/
    "FENGQIAO_PROMTOOL", "FENGQIAO_PROMETHEUS", "FENGQIAO_FUZZ_EXAMPLES", "FENGQIAO_NPM_CACHE",
    # deploy/local/postgres and its fixture (tests/postgres_server.py): an existing server,
    # fail rather than skip, the binaries, the user they run as, the start timeout
    "FENGQIAO_POSTGRES_URL", "FENGQIAO_REQUIRE_POSTGRES", "FENGQIAO_POSTGRES_ROOT",
    "FENGQIAO_POSTGRES_USER", "FENGQIAO_POSTGRES_START_TIMEOUT",
    # `fengqiao cases --url` (consumers/cli/cases_remote.py): the client's token for the view
    "FENGQIAO_VIEW_TOKEN",
})  # fmt: skip
"""`FENGQIAO_*` variables of the tests and tools: legitimate, but not settings."""

SUGGEST_CUTOFF = 0.8
"""How alike (difflib's ratio) a variable must be to a setting's to be offered as the fix."""

_DEFAULT_FACTORIES = {socket.gethostname: "the hostname"}
_INDENT = " " * 6


_MODELS: list[type[BaseSettings]] = [Settings]
"""Every command's settings model: the engine's, then those registered."""


def register_settings(model: type[BaseSettings]) -> None:
    """Make the variables of another command's settings known (idempotent)."""
    if model not in _MODELS:
        _MODELS.append(model)


def setting_variables() -> dict[str, str]:
    """Every variable the settings of every command read (aliases included) → its field name."""
    names: dict[str, str] = {}
    for field, info in _fields():
        names[env_name(field)] = field
        if isinstance(info.validation_alias, AliasChoices):
            for alias in info.validation_alias.choices:
                if isinstance(alias, str) and alias.upper().startswith(ENV_PREFIX):
                    names[alias.upper()] = field
    return names


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """One `warning: …` line per `FENGQIAO_*` variable in `environ` that no setting reads (the
    settings match names case-insensitively, so does this), with the likely intended one."""
    known = setting_variables()
    candidates = [env_name(field) for field, _ in _fields()]
    warnings: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in TOOL_VARIABLES:
            continue
        close = difflib.get_close_matches(upper, candidates, n=1, cutoff=SUGGEST_CUTOFF)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"warning: {name} is not a Fengqiao setting{hint}")
    return warnings


def _fields() -> list[tuple[str, FieldInfo]]:
    return [(field, info) for model in _MODELS for field, info in model.model_fields.items()]


def variables_help(width: int = 80, model: type[BaseSettings] = Settings) -> str:
    """The settings of one command as its `--help` lists them (`run`'s by default): variable,
    default, choices, description."""
    lines = ["settings (environment variables; the options above override a few):"]
    for field, info in model.model_fields.items():
        head = f"  {env_name(field)}"
        default = _default(info)
        if default is not None:
            head += f" = {default}"
        choices = _choices(info.annotation)
        if choices:
            head += f"  ({' | '.join(choices)})"
        lines.append(head)
        if info.description:
            text = " ".join(info.description.split())
            lines.extend(textwrap.wrap(text, width, initial_indent=_INDENT,
                                       subsequent_indent=_INDENT))  # fmt: skip
    lines.append("  An unknown FENGQIAO_* variable is reported at start with a `warning:` line.")
    return "\n".join(lines)


def _default(info: FieldInfo) -> str | None:
    """The default as one would write it in the environment (None: unset by default)."""
    if info.default_factory is not None:
        factory: Any = info.default_factory
        return _DEFAULT_FACTORIES.get(factory, "computed")
    value = info.default
    if value is None or isinstance(value, SecretStr):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, str | int | float | Path) else repr(value)


def _choices(annotation: Any) -> list[str]:
    """The values of a `Literal` setting (also inside `X | None`)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    if origin in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _choices(arg)]
    return []
