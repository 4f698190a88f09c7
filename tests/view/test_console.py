"""The web console's pages (consumers/view/console.py) over a read model filled by the real
projection from real engine output, on SQLite and PostgreSQL: what each page lists and draws is
what the queries say, in their order, and a scope hides other cases from every page."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consumers.view import labels
from consumers.view.access import Scope
from consumers.view.console import ScopeValue, console_router
from consumers.view.counts import backlog, forecast
from consumers.view.fold import TierOrder
from consumers.view.pages import Ladder, ladders
from consumers.view.projection import project
from consumers.view.queries import cases_found, history_of, list_cases
from consumers.view.tables import create_view_engine, prepare
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.conftest import ROOT
from tests.view.busy_town import busy_town, retracted_case
from tests.view.dom import Element, parse, row_ids
from tests.view.streams import as_consumed, replay, stored_rows


@pytest.fixture(scope="module")
def town(registry: WorkflowRegistry, engine: Engine) -> tuple[datetime, list[bytes]]:
    return busy_town(registry, engine)


def everything() -> ScopeValue:
    """The tests' scope dependency: the app's authenticates the caller first."""
    return None


def console(
    db: sa.Engine, now: datetime, tiers: TierOrder, scope: Callable[..., Any] = everything
) -> TestClient:
    app = FastAPI()
    app.include_router(console_router(db, scope=scope, now=lambda: now, tiers=tiers))
    return TestClient(app)


def page(client: TestClient, url: str) -> Element:
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    return parse(response.text)


@pytest.fixture
def filled(
    view_db: sa.Engine, town: tuple[datetime, list[bytes]], tiers: TierOrder
) -> tuple[sa.Engine, datetime]:
    project(view_db, as_consumed(town[1]), tiers)
    return view_db, town[0]


def test_the_backlog_shows_the_ladder_the_lists_and_the_forecast(
    filled: tuple[sa.Engine, datetime], tiers: TierOrder
) -> None:
    db, now = filled
    dom = page(console(db, now, tiers), "/")
    with db.connect() as conn:
        counts = backlog(conn, now=now)
        overdue = list_cases(conn, "overdue", now=now, limit=50).rows
        at_risk = list_cases(conn, "at_risk", now=now, limit=50).rows
        ahead = forecast(conn, now=now, hours=72, zone=ZoneInfo("Asia/Shanghai"))
    # the town has something of each
    assert overdue
    assert at_risk
    assert ahead.total > 0
    assert dom.find_all("meta")[2].attrs == {"http-equiv": "refresh", "content": "30"}
    for key, element in (("open", "total-open"), ("overdue", "total-overdue"),
                         ("at_risk", "total-at-risk"), ("paused", "total-paused")):  # fmt: skip
        assert dom.by_id(element).text == str(sum(getattr(r, key) for r in counts))
    assert row_ids(dom.by_id("overdue")) == [r.case_id for r in overdue]
    assert row_ids(dom.by_id("at-risk")) == [r.case_id for r in at_risk]
    assert labels.WORDS["overdue"] == "逾期 Overdue"
    assert "逾期 Overdue" in dom.by_id("overdue-list").text

    funnels = dom.find_all("svg", "funnel")
    workflows = sorted({r.workflow for r in counts})
    assert len(funnels) == len(workflows)
    for workflow, funnel in zip(workflows, funnels, strict=True):
        ladder = ladders(tiers)[workflow]
        held = {r.tier for r in counts if r.workflow == workflow}
        rungs = [t for t in ladder.rungs if t in ladder.current or t in held]
        shown = [t.text for t in funnel.find_all("text", "rung-label")]
        assert [s.split(" · ")[0] for s in shown[: len(rungs)]] == [labels.rung(t) for t in rungs]
        for tier, text in zip(rungs, shown, strict=False):
            expected = sum(r.open for r in counts if r.workflow == workflow and r.tier == tier)
            assert f"· {expected} " in text
        assert len(funnel.find_all("rect", "rung")) == len(shown)

    chart = dom.by_id("forecast").find_all("svg", "forecast")[0]
    cells = {(c.day, c.workflow) for c in ahead.cells}
    assert len(chart.find_all("rect", "bar")) == len(cells)
    assert sum(int(t.text) for t in chart.find_all("text", "total")) == ahead.total
    assert len(chart.find_all("text", "day")) == len(ahead.days)


def test_the_case_page_shows_every_record_on_the_timeline_and_in_the_table(
    filled: tuple[sa.Engine, datetime], town: tuple[datetime, list[bytes]], tiers: TierOrder
) -> None:
    db, now = filled
    case_id = retracted_case(town[1])
    client = console(db, now, tiers)
    dom = page(client, f"/cases/{case_id}")
    with db.connect() as conn:
        history = history_of(conn, case_id)
    row = stored_rows(db)[case_id]
    assert row.state in dom.find_all("table", "facts")[0].text

    records = dom.by_id("records").find_all("tr", "record")
    assert [r.find_all("td")[0].text for r in records] == [str(e.seq) for e in history]
    struck = [r for r in records if "retracted" in r.classes]
    assert len(struck) == 1 == sum(e.retracted for e in history)
    assert struck[0].find_all("s")
    assert "retraction" in records[-1].classes

    chart = dom.by_id("timeline").find_all("svg", "timeline")[0]
    marks = chart.find_all("g", "mark")
    assert len(marks) == len(history)
    assert [m for m in marks if "retracted" in m.classes]
    moves = [e for e in history if not e.retracted and e.type in ("case.transitioned",
                                                                  "case.migrated")]  # fmt: skip
    assert len(chart.find_all("rect", "stay")) == len(moves)
    assert chart.find_all("line", "deadline")
    assert len(chart.find_all("text", "tick")) >= 2

    missing = client.get("/cases/no-such-case")
    assert missing.status_code == 404
    assert "未找到 Not found" in missing.text


def test_search_finds_by_id_prefix_and_pages_through_a_list(
    filled: tuple[sa.Engine, datetime], tiers: TierOrder
) -> None:
    db, now = filled
    client = console(db, now, tiers)
    rows = stored_rows(db)
    some = sorted(rows)[0]
    exact = client.get(f"/search?q={some}", follow_redirects=False)
    assert exact.status_code == 303
    assert exact.headers["location"] == f"/cases/{some}"

    prefix = max(("12345-", "FQ-D-", "FQ-P-"), key=lambda p: sum(i.startswith(p) for i in rows))
    expected = sorted(i for i in rows if i.startswith(prefix))
    assert len(expected) > 50  # more than a page
    assert follow(client, f"/search?q={prefix}") == expected

    with db.connect() as conn:
        overdue = [r.case_id for r in list_cases(conn, "overdue", now=now, limit=1000).rows]
        open_ = [r.case_id for r in list_cases(conn, "open", now=now, limit=1000).rows]
    assert follow(client, "/search?status=overdue") == overdue
    assert len(open_) > 50  # paged by (deadline, id): the cursor's instant goes in the link
    assert follow(client, "/search?status=open") == open_
    assert (
        client.get("/search?status=open&after=x&after_deadline=2026-03-01T00:00").status_code == 422
    )
    assert parse(client.get("/search?q=nothing-like-it").text).by_id("no-results")


def follow(client: TestClient, url: str) -> list[str]:
    """Every case id of a search, page after page by its `more` link."""
    ids: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        dom = page(client, next_url)
        ids += row_ids(dom.by_id("results"))
        links = dom.find_all("a", "next")
        next_url = links[0].attrs["href"] if links else None
    return ids


SCOPES = [
    pytest.param(frozenset({"petition"}), id="workflows"),
    pytest.param(
        Scope(workflows=frozenset({"petition", "hotline-12345"}), prefix="FQ-P-"),
        id="workflows-and-prefix",
    ),
]


@pytest.mark.parametrize("granted", SCOPES)
def test_a_scope_hides_other_cases_from_every_page(
    filled: tuple[sa.Engine, datetime], tiers: TierOrder, granted: ScopeValue
) -> None:
    db, now = filled
    client = console(db, now, tiers, scope=lambda: granted)
    rows = stored_rows(db)
    seen = {i for i, r in rows.items() if r.workflow == "petition"}
    hidden = sorted(set(rows) - seen)

    dom = page(client, "/")
    linked = {a.attrs["href"].removeprefix("/cases/") for a in dom.find_all("a")
              if a.attrs.get("href", "").startswith("/cases/")}  # fmt: skip
    assert linked
    assert linked <= seen
    assert [s.attrs["aria-label"] for s in dom.find_all("svg", "funnel")] == [
        f"{labels.WORDS['ladder']} petition"
    ]
    assert dom.by_id("total-open").text == str(sum(1 for i in seen if rows[i].status == "open"))
    legend = [t.text for t in dom.by_id("forecast").find_all("text", "key")]
    assert set(legend) <= {"petition"}
    assert "petition" in dom.by_id("ladder").text
    assert "dispute-escalation" not in dom.text

    assert client.get(f"/cases/{hidden[0]}").status_code == 404
    assert client.get(f"/cases/{sorted(seen)[0]}").status_code == 200
    assert client.get(f"/search?q={hidden[0]}", follow_redirects=False).status_code == 200
    assert set(follow(client, "/search?q=FQ")) == {i for i in seen if i.startswith("FQ")}
    assert set(follow(client, "/search?status=open")) == {
        i for i in seen if rows[i].status == "open"
    }


@pytest.mark.unit
def test_pages_load_nothing_from_anywhere_else(tmp_path: Path, tiers: TierOrder) -> None:
    """Every link, form and stylesheet points back into the console; no script at all; the
    stylesheet names local CJK fonts only."""
    db = create_view_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    prepare(db)
    client = console(db, datetime.fromisoformat("2026-03-01T00:00:00+08:00"), tiers)
    for url in ("/", "/search?q=x", "/search"):
        dom = page(client, url)
        assert not dom.find_all("script")
        for element in dom.find_all():
            for attr in ("href", "src", "action"):
                assert element.attrs.get(attr, "/").startswith("/"), (url, element.attrs)
    css = client.get("/static/console.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert '"Noto Sans CJK SC"' in css.text
    assert "url(" not in css.text
    db.dispose()


def test_the_id_prefix_query_pages_in_id_order_exactly(
    filled: tuple[sa.Engine, datetime],
) -> None:
    db, _ = filled
    rows = stored_rows(db)
    expected = sorted(i for i in rows if i.startswith("FQ-D-"))
    seen: list[str] = []
    after: str | None = None
    with db.connect() as conn:
        while True:
            page_rows, after = cases_found(conn, "FQ-D-", after=after, limit=7)
            seen += [r.case_id for r in page_rows]
            if after is None:
                break
        assert cases_found(conn, "fq-d-")[0] == []  # case-sensitive on both databases
        scoped, _ = cases_found(conn, "", limit=1000,
                                       visible=Scope(frozenset({"petition"})).clause())  # fmt: skip
        with pytest.raises(ValueError, match="limit"):
            cases_found(conn, "FQ", limit=0)
    assert seen == expected
    assert {r.case_id for r in scoped} == {i for i, r in rows.items() if r.workflow == "petition"}


@pytest.mark.unit
def test_the_funnel_stands_every_version_on_one_ladder() -> None:
    """v2 replaced the mediation center with township and county: v1's cases at the center
    still stand above the grid, and the newest ladder's rungs show even when empty."""
    tiers = {("d", 1): ("grid", "center", "court"), ("d", 2): ("grid", "township", "county",
             "court"), ("h", 1): ("street", "city")}  # fmt: skip
    assert ladders(tiers) == {
        "d": Ladder(("grid", "center", "township", "county", "court"),
                    frozenset({"grid", "township", "county", "court"})),
        "h": Ladder(("street", "city"), frozenset({"street", "city"})),
    }  # fmt: skip
    assert ladders(None) == {}


ODD_IDS = ["T03/2026 0001", "T03?x=1#y", "枫桥-0002"]


@pytest.mark.unit
def test_any_case_id_links_to_its_page(tmp_path: Path, engine: Engine, tiers: TierOrder) -> None:
    """Case ids are any text (1-200 characters): a slash, `?`, `#` or a space in one still
    gives a link to its page and a search straight to it. (`%` is left out here: the test
    client decodes a path twice; uvicorn once, as it should.)"""
    first = next(open_lines())
    lines = [first.replace(b'"FQ-D-2026-0001"', json.dumps(i).encode()) for i in ODD_IDS]
    lines = [line.replace(b'"grid-20260212-0001"', f'"e{n}"'.encode()) for n, line in
             enumerate(lines)]  # fmt: skip
    published = replay(engine, lines, None)[1]
    db = create_view_engine(f"sqlite:///{tmp_path / 'odd.sqlite'}")
    prepare(db)
    project(db, as_consumed(published), tiers)
    client = console(db, datetime.fromisoformat("2026-02-13T09:00:00+08:00"), tiers)
    links = [a.attrs["href"] for a in page(client, "/search?status=open").find_all("a")
             if a.attrs.get("href", "").startswith("/cases/")]  # fmt: skip
    assert len(links) == len(ODD_IDS)
    shown = {page(client, link).find_all("span", "case-id")[0].text for link in links}
    assert shown == set(ODD_IDS)
    for case_id in ODD_IDS:
        found = client.get("/search", params={"q": case_id}, follow_redirects=False)
        assert found.status_code == 303
        assert found.headers["location"] in links
    db.dispose()


def open_lines() -> Iterator[bytes]:
    """The bundled example stream of the dispute ladder, line by line."""
    yield from (ROOT / "workflows/examples/dispute-escalation.jsonl").read_bytes().splitlines()
