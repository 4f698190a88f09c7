"""The web console served by a real uvicorn server and opened in headless Chromium: each page's
lists and charts are in the DOM Chromium built (`--dump-dom`), and on screen (`--screenshot`:
the funnel's rungs, the overdue marks and the timeline's stays as pixels of their colours).

The read model is filled by the real projection from real engine output (`busy_town`). The
screenshots are kept under the test's tmp_path and their paths printed (`pytest -s`, or `-rP`),
for a person to look at: Chinese labels need the CJK font `cjk_fonts` provides.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from consumers.view import tier_order
from consumers.view.charts import RUNG_COLORS
from consumers.view.console import ScopeValue, console_router
from consumers.view.projection import project
from consumers.view.queries import case_by_id, history_of, list_cases
from consumers.view.tables import create_view_engine, prepare
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.e2e.browser import run_chromium
from tests.e2e.png import decode
from tests.view.busy_town import busy_town, busy_town_events, retracted_case
from tests.view.dom import Element, parse, row_ids
from tests.view.streams import as_consumed, as_consumed_events

# The first test may install Debian packages with apt (chromium, fonts-noto-cjk): minutes.
pytestmark = pytest.mark.timeout(900)

OVERDUE_RED = (0xDC, 0x26, 0x26)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@dataclass(frozen=True)
class Served:
    url: str
    db: sa.Engine
    now: datetime
    retracted: str


def everything() -> ScopeValue:
    return None


@pytest.fixture(scope="module")
def served(
    registry: WorkflowRegistry, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The console over a SQLite read model of the busy town, on a free port of 127.0.0.1."""
    now, published = busy_town(registry, engine)
    db = create_view_engine(f"sqlite:///{tmp_path_factory.mktemp('console') / 'view.sqlite'}")
    prepare(db)
    tiers = tier_order(registry)
    project(db, as_consumed(published) + as_consumed_events(busy_town_events(registry)), tiers)
    app = FastAPI()
    app.include_router(console_router(db, scope=everything, now=lambda: now, tiers=tiers))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", db, now, retracted_case(published))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        db.dispose()


def look(chromium: str, tmp_path: Path, url: str, name: str, height: int) -> tuple[Element, Path]:
    """The DOM Chromium built from `url`, and a screenshot 1280 px wide (path printed)."""
    dumped = run_chromium(chromium, tmp_path / "profile", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    shot = tmp_path / f"{name}.png"
    done = run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}",
                        f"--window-size=1280,{height}", url)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    print(f"screenshot of {url}: {shot}")
    return parse(dumped.stdout), shot


def colours(shot: Path) -> Counter[tuple[int, int, int]]:
    image = decode(shot.read_bytes())
    assert image.width == 1280
    return Counter(image.pixels())


def test_the_backlog_page_renders_its_lists_and_charts(
    chromium: str, cjk_fonts: str, served: Served, tmp_path: Path
) -> None:
    dom, shot = look(chromium, tmp_path, f"{served.url}/", "backlog", 2400)
    with served.db.connect() as conn:
        overdue = list_cases(conn, "overdue", now=served.now, limit=50).rows
        at_risk = list_cases(conn, "at_risk", now=served.now, limit=50).rows
    assert overdue
    assert at_risk
    assert row_ids(dom.by_id("overdue")) == [r.case_id for r in overdue]
    assert row_ids(dom.by_id("at-risk")) == [r.case_id for r in at_risk]
    funnels = dom.find_all("svg", "funnel")
    assert len(funnels) == 3
    assert all(len(f.find_all("rect", "rung")) >= 3 for f in funnels)
    forecast = dom.by_id("forecast").find_all("svg", "forecast")[0]
    assert forecast.find_all("rect", "bar")
    assert "超期预测 Breach forecast" in dom.by_id("forecast").text
    pixels = colours(shot)
    assert pixels[_rgb(RUNG_COLORS[0])] > 34 * 40  # the lowest rungs' bars (and the forecast's)
    assert pixels[_rgb(RUNG_COLORS[1])] > 34 * 20
    assert pixels[OVERDUE_RED] > 200  # the overdue figure, badges and marks on the rungs


def test_the_case_page_renders_its_timeline_and_records(
    chromium: str, cjk_fonts: str, served: Served, tmp_path: Path
) -> None:
    url = f"{served.url}/cases/{served.retracted}"
    dom, shot = look(chromium, tmp_path, url, "case", 1300)
    with served.db.connect() as conn:
        history = history_of(conn, served.retracted)
    timeline = dom.by_id("timeline").find_all("svg", "timeline")[0]
    assert len(timeline.find_all("g", "mark")) == len(history)
    assert timeline.find_all("rect", "stay")
    assert timeline.find_all("line", "deadline")
    records = dom.by_id("records").find_all("tr", "record")
    assert len(records) == len(history)
    assert len([r for r in records if "retracted" in r.classes]) == 1
    with served.db.connect() as conn:
        row = case_by_id(conn, served.retracted)
    assert row is not None
    assert row.attributes  # the report's, from the case-events topic
    shown = [a.text for a in dom.find_all("span", "attribute")]
    assert shown == [f"{k}: {v}" for k, v in sorted(row.attributes.items())]
    pixels = colours(shot)
    assert pixels[_rgb(RUNG_COLORS[0])] + pixels[_rgb(RUNG_COLORS[1])] > 24 * 40  # the stays


def test_the_search_pages_render_their_results(
    chromium: str, cjk_fonts: str, served: Served, tmp_path: Path
) -> None:
    dom, _ = look(chromium, tmp_path, f"{served.url}/search?q=FQ-D-", "search", 1400)
    results = row_ids(dom.by_id("results"))
    assert results
    assert all(i.startswith("FQ-D-") for i in results)
    assert results == sorted(results)
    dom, shot = look(chromium, tmp_path, f"{served.url}/search?status=overdue", "overdue", 1400)
    with served.db.connect() as conn:
        overdue = list_cases(conn, "overdue", now=served.now, limit=50).rows
    assert row_ids(dom.by_id("results")) == [r.case_id for r in overdue]
    assert colours(shot)[OVERDUE_RED] > 100  # the overdue badges
