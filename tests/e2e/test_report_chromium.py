"""The demo's HTML report opened in headless Chromium: the charts are in the DOM and on screen.

The DOM check (`--dump-dom`) proves the SVG is there after parsing; the screenshot proves it was
painted: the Sankey bands and nodes show up as pixels of their exact colours (bands are drawn
at 45 % opacity over the white page, so their colour on screen is the blend).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from consumers.cli.main import main
from consumers.demo.report import OUTCOME_COLORS, RUNG_COLORS
from tests.e2e.browser import run_chromium
from tests.e2e.png import decode

# The first test may install Debian packages with apt (prometheus, chromium): minutes.
pytestmark = pytest.mark.timeout(900)

LINK_OPACITY = 0.45


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _on_white(color: str, opacity: float) -> tuple[int, int, int]:
    r, g, b = _rgb(color)
    return (round(r * opacity + 255 * (1 - opacity)), round(g * opacity + 255 * (1 - opacity)),
            round(b * opacity + 255 * (1 - opacity)))  # fmt: skip


def _near(pixels: Counter[tuple[int, int, int]], color: tuple[int, int, int]) -> int:
    return sum(
        n for p, n in pixels.items() if all(abs(a - b) <= 2 for a, b in zip(p, color, strict=True))
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    args = ["demo", "--size", "20000", "--days", "45", "--speed", "0", "--port", "0"]
    assert main([*args, "--out", str(out)]) == 0
    return out / "report.html"


def test_the_dom_holds_the_charts(chromium: str, report: Path, tmp_path: Path) -> None:
    done = run_chromium(chromium, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count('<svg class="chart sankey"') == 3
    assert dom.count('class="link"') > 10
    assert dom.count('class="bar"') > 10
    assert dom.count('class="line"') == 3
    assert "Local resolution rate" in dom


def test_the_screenshot_shows_the_escalation_flow(
    chromium: str, report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "report.png"
    done = run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}",
                        "--window-size=1280,1400", report.as_uri())  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    image = decode(shot.read_bytes())
    assert (image.width, image.height) == (1280, 1400)
    pixels = Counter(image.pixels())
    total = image.width * image.height
    # Nodes: the "reported" column of the first two flows, opaque rectangles 14 px wide.
    assert pixels[_rgb(OUTCOME_COLORS["reported"])] > 2 * 14 * 150
    # Bands: into the lowest rung, and into "resolved", blended on the white page.
    assert _near(pixels, _on_white(RUNG_COLORS[0], LINK_OPACITY)) > 0.02 * total
    assert _near(pixels, _on_white(OUTCOME_COLORS["resolved"], LINK_OPACITY)) > 0.02 * total
    assert pixels[(255, 255, 255)] < 0.9 * total
