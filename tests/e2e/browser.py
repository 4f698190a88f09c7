"""Headless Chromium as the e2e tests drive it: one process per look, its own profile, no
network of its own (no component updates, sync or first-run pages), a device scale of 1 so a
screenshot's pixels are CSS pixels."""

from __future__ import annotations

import subprocess
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--force-device-scale-factor=1",
]  # fmt: skip


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
