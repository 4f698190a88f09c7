"""The commands that read workflow and channel files: `validate`, and the loading that `graph`,
`simulate`, `schemas` and `bench` share, so every command says the same words about a folder it
cannot use (`PATH:1:1: error: …`)."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.channel_checks import CheckedChannel, check_channel_paths, load_channels
from engine.channels import CHANNELS_FOLDER, Channel, channel_files
from engine.problems import InvalidWorkflowError, Problem
from engine.registry import WorkflowRegistry, check_paths
from engine.validate import CheckedWorkflow

DEFAULT_WORKFLOWS = Path("workflows")


def workflows_default() -> Path:
    """`workflows/` of the working directory, else the one shipped beside the packages."""
    if DEFAULT_WORKFLOWS.is_dir():
        return DEFAULT_WORKFLOWS
    return Path(__file__).resolve().parents[2] / "workflows"


def unusable(path: Path) -> str | None:
    """Why `path` cannot be read as a workflow file or folder, before anything parses it (the
    same words for every command, so `validate`, `graph` and `simulate` agree)."""
    try:
        if not path.exists():
            return "no such file or directory"
        if path.is_dir():
            next(path.iterdir(), None)
    except OSError as err:  # a folder (or one on the way) we may not list
        return f"cannot read: {err.strerror}"
    return None


def _where(paths: Sequence[Path]) -> str:
    """What `validate` checked, for its `ok:` line: the paths as given, or their count."""
    if len(paths) > 3:
        return f"{len(paths)} paths"
    return ", ".join(f"{p}/" if p.is_dir() and not str(p).endswith("/") else str(p) for p in paths)


def cmd_validate(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or [workflows_default()]
    refused = {p: why for p in paths if (why := unusable(p)) is not None}
    for path, why in refused.items():
        print(f"{path}:1:1: error: {why}")
    usable = [p for p in paths if p not in refused]
    channel_paths = [p for p in usable if p.is_file() and p.parent.name == CHANNELS_FOLDER]
    workflow_paths = [p for p in usable if p not in channel_paths]
    checked, problems = check_paths(workflow_paths)
    against = None if problems else checked  # a broken workflow would look "unknown"
    channels, channel_problems = _check_channels(workflow_paths, channel_paths, against)
    problems += channel_problems
    for problem in sorted(problems):
        print(problem)
    if problems or refused:
        return 1
    also = f" and {len(channels)} channel(s)" if channels else ""
    print(f"ok: {len(checked)} workflow(s){also} valid in {_where(paths)}", file=sys.stderr)
    return 0


def _check_channels(
    folders: Sequence[Path], files: Sequence[Path], checked: Sequence[CheckedWorkflow] | None
) -> tuple[list[CheckedChannel], list[Problem]]:
    """Channel files: those of each folder's `channels/` (against the workflows checked, unless
    some were refused: then each file alone), and channel files named one by one (against the
    workflows of the folder above them)."""
    found: list[CheckedChannel] = []
    problems: list[Problem] = []
    specs = None if checked is None else [c.spec for c in checked]
    for folder in (p for p in folders if p.is_dir()):
        ok, bad = check_channel_paths(channel_files(folder), specs)
        found += ok
        problems += bad
    for parent, named in itertools.groupby(sorted(files), key=lambda p: p.parent.parent):
        workflows, refused = check_paths([parent])
        ok, bad = check_channel_paths(list(named), None if refused else [c.spec for c in workflows])
        found += ok
        problems += bad
    return found, problems


def registry_or_say(folder: Path) -> WorkflowRegistry | None:
    """The workflows of `folder`, or None after printing why not (`PATH:1:1: error: …`)."""
    why = unusable(folder)
    if why is not None:
        print(f"{folder}:1:1: error: {why}", file=sys.stderr)
        return None
    try:
        return WorkflowRegistry.load(folder)
    except InvalidWorkflowError as err:
        print(err, file=sys.stderr)
        return None


def channels_or_say(folder: Path) -> dict[str, Channel] | None:
    """The channels of `folder` (checked against its workflows), or None after printing why."""
    registry = registry_or_say(folder)
    if registry is None:
        return None
    try:
        return load_channels(folder, registry.specs())
    except InvalidWorkflowError as err:
        print(err, file=sys.stderr)
        return None
