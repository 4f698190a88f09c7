"""End-to-end fixtures: a headless Chromium to open what the project writes for people.

Chromium is found on PATH; when it is missing and we are root (CI images, dev containers) it is
installed with apt once per session. Otherwise the session fails with what to install: these
tests are never skipped, a report nobody has seen render is not a tested report.

The web console's screenshots need a CJK font too (`cjk_fonts`): without one Chinese labels are
drawn as empty boxes. `fonts-noto-cjk` is installed the same way when fontconfig knows no font
for Chinese.

Every test under tests/e2e gets the `e2e` mark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_TIMEOUT = 1200


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def _find() -> str | None:
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _install(package: str = "chromium") -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed:\n{done.stderr[-2000:]}"
    return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium (installed with apt if missing and root)."""
    found = _find()
    if found:
        return found
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        problem = _install()
        found = _find()
        if found:
            return found
        pytest.fail(f"could not install chromium with apt: {problem}")
    pytest.fail(
        "the e2e tests need Chromium: install the `chromium` package (Debian/Ubuntu: "
        "`sudo apt-get install chromium`), or run them as root where apt-get can install it"
    )


def _cjk_families() -> str:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return ""
    done = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture(scope="session")
def cjk_fonts() -> str:
    """The font families fontconfig has for Chinese (`fonts-noto-cjk` installed with apt when
    there are none and we are root; otherwise the session fails with what to install)."""
    found = _cjk_families()
    if found:
        return found
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        problem = _install("fonts-noto-cjk")
        found = _cjk_families()
        if found:
            return found
        pytest.fail(f"could not install fonts-noto-cjk with apt: {problem}")
    pytest.fail(
        "the console's screenshots need a CJK font: install `fonts-noto-cjk` (Debian/Ubuntu: "
        "`sudo apt-get install fonts-noto-cjk`), or run them as root where apt-get can install it"
    )
