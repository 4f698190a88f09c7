"""`fengqiao cases list|show` (consumers/cli/cases.py, case_tables.py) on a SQLite read model
projected from the engine's own output: the tables a supervisor reads, the JSON a script reads
(the same rows), the retracted records marked, and every refusal one `error:` line.

The read model: the first thirteen events of the dispute example, the engine's clock stopped
on 19 March, and one retraction (of a breach) added by hand, as the engine publishes them after
a late event (DESIGN §4).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from consumers.cli.case_tables import row_json, span
from consumers.cli.main import main
from consumers.view.fold import TierOrder
from consumers.view.projection import project
from consumers.view.queries import is_overdue
from consumers.view.tables import create_view_engine, meta, prepare
from engine.core import Engine
from tests.view.streams import as_consumed, by_case, encode, replay, retraction, stored_rows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
STOPPED = datetime.fromisoformat("2026-03-19T00:00:00+08:00")
LATER = "2026-04-05T12:00:00+08:00"
"""Past case 0003's deadline (2 April): overdue then."""
SHANGHAI = ["--tz", "Asia/Shanghai"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def read_model(tmp_path_factory: pytest.TempPathFactory, engine: Engine, tiers: TierOrder) -> str:
    """The database's URL (see the module docstring)."""
    lines = (ROOT / "workflows" / "examples" / "dispute-escalation.jsonl").read_bytes()
    _, published = replay(engine, lines.splitlines()[:13], STOPPED)
    first = by_case(published)["FQ-D-2026-0001"]
    breach = next(r for r in first if r["type"] == "sla.breached")
    published += encode([retraction(breach, seq=len(first) + 1)])
    url = f"sqlite:///{tmp_path_factory.mktemp('cases') / 'view.sqlite'}"
    db = create_view_engine(url)
    prepare(db)
    project(db, as_consumed(published), tiers)
    db.dispose()
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_open_cases_as_a_table_soonest_deadline_first(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "cases", "list", "--db", read_model, *SHANGHAI,
                          "--now", "2026-03-19T09:30:00+08:00")  # fmt: skip
    assert (code, err) == (0, "")
    assert out == (
        "  CASE            WORKFLOW               STATE             TIER    DEADLINE          "
        "DUE         NOTES\n"
        "  FQ-D-2026-0003  dispute-escalation v1  center.mediating  center  2026-04-02 00:00  "
        "in 13d 14h\n"
        "  FQ-D-2026-0004  dispute-escalation v1  center.mediating  center  2026-04-09 00:00  "
        "paused\n"
        "2 open cases; times in Asia/Shanghai, as of 2026-03-19 09:30\n"
    )


def test_closed_cases_say_their_outcome_and_whether_on_time(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "cases", "list", "--status", "closed", "--db", read_model,
                        *SHANGHAI, "--now", LATER)  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == [
        "FQ-D-2026-0001", "dispute-escalation", "v1", "confirmed", "center", "confirmed",
        "not", "on", "time,", "1", "escalation",
    ]  # fmt: skip
    assert lines[2].split()[-3:] == ["resolved", "on", "time"]
    assert lines[-1].startswith("2 closed cases;")


def test_overdue_lists_exactly_the_overdue_cases_in_json(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "cases", "list", "--status", "overdue", "--json",
                        "--db", read_model, "--now", LATER)  # fmt: skip
    assert code == 0
    listed = json.loads(out)
    rows = stored_rows(create_view_engine(read_model))
    now = datetime.fromisoformat(LATER)
    assert [c["case_id"] for c in listed] == ["FQ-D-2026-0003"]
    assert {c for c, r in rows.items() if is_overdue(r, now)} == {"FQ-D-2026-0003"}
    assert listed == [row_json(rows["FQ-D-2026-0003"], now)]
    assert listed[0]["deadline"] == "2026-04-01T16:00:00Z"  # UTC, RFC 3339, as the API's
    assert (listed[0]["overdue"], listed[0]["at_risk"]) == (True, False)


def test_no_case_in_a_status_says_so(read_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "cases", "list", "--status", "at_risk", "--db", read_model,
                        "--now", "2026-03-19T09:30:00+08:00")  # fmt: skip
    assert (code, out) == (0, "no at risk cases\n")
    code, out, _ = _run(capsys, "cases", "list", "--status", "paused", "--workflow", "petition",
                        "--db", read_model, "--json")  # fmt: skip
    assert (code, json.loads(out)) == (0, [])


def test_a_limit_below_the_count_is_said_on_stderr(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "cases", "list", "--limit", "1", "--json", "--db", read_model)
    assert code == 0
    assert [c["case_id"] for c in json.loads(out)] == ["FQ-D-2026-0003"]
    assert err == "note: more cases than --limit 1; --limit 0 lists them all\n"
    code, out, err = _run(capsys, "cases", "list", "--limit", "0", "--json", "--db", read_model)
    assert (len(json.loads(out)), err) == (2, "")


def test_one_case_with_its_timeline_and_the_retracted_record_marked(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "cases", "show", "FQ-D-2026-0001", "--db", read_model,
                        *SHANGHAI, "--now", LATER)  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == [
        "FQ-D-2026-0001  dispute-escalation v1  (times in Asia/Shanghai)",
        "  status    closed, confirmed (tier center)",
        "  opened    2026-02-12 18:40   in this state since 2026-03-18 16:00",
        "  closed    2026-03-18 16:00: confirmed at tier center",
    ]
    timeline = lines[lines.index("") + 1 :]
    assert timeline[0].split() == ["#", "time", "record", "state", "tier", "deadline", "detail"]
    assert timeline[1].split() == ["1", "2026-02-12", "18:40", "case.transitioned", "→",
                                   "grid.mediating", "grid", "2026-02-25", "00:00",
                                   "case.reported"]  # fmt: skip
    breach, escalated = timeline[3], timeline[4]
    assert breach.split()[:4] == ["3", "✗", "2026-02-25", "00:00"]
    assert breach.endswith("retracted by #9")
    assert "\x1b[9m" not in out  # struck through only on a terminal
    assert "grid.mediating → center.mediating" in escalated
    assert "sla.breached" in escalated
    assert timeline[9].split()[:4] == ["9", "2026-02-25", "00:00", "record.retracted"]
    assert timeline[9].endswith("retracts #3 (sla.breached), late")
    assert timeline[-1].startswith("  ✗ retracted: a late event proved the record untrue")


def test_one_case_in_json_is_its_row_and_every_record(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "cases", "show", "FQ-D-2026-0004", "--json", "--db", read_model,
                        "--now", LATER)  # fmt: skip
    assert code == 0
    shown: dict[str, Any] = json.loads(out)
    row = stored_rows(create_view_engine(read_model))["FQ-D-2026-0004"]
    assert shown["case"] == row_json(row, datetime.fromisoformat(LATER))
    assert shown["case"]["paused"] is True
    assert [e["type"] for e in shown["history"]] == ["case.transitioned", "sla.changed"]
    assert [e["seq"] for e in shown["history"]] == [1, 2]
    assert shown["history"][1]["record"]["action"] == "paused"


def test_an_unknown_case_is_exit_1_and_one_line(
    read_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "cases", "show", "FQ-NOPE", "--db", read_model) == (
        1, "", "error: no case 'FQ-NOPE' in the read model\n",
    )  # fmt: skip


def test_no_read_model_is_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.sqlite"
    code, out, err = _run(capsys, "cases", "list", "--db", f"sqlite:///{missing}")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: no read model at {missing} (--db, or FENGQIAO_VIEW_DB")
    assert not missing.exists()  # a reader creates nothing
    empty = tmp_path / "empty.sqlite"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    code, _, err = _run(capsys, "cases", "list", "--db", f"sqlite:///{empty}")
    assert (code, err.count("\n")) == (2, 1)
    assert "holds no read model yet (`fengqiao view` makes it)" in err


def test_a_read_model_of_another_schema_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = create_view_engine(url)
    prepare(db)
    with db.begin() as conn:
        conn.execute(sa.update(meta).values(value="0"))
    db.dispose()
    code, _, err = _run(capsys, "cases", "show", "X", "--db", url)
    assert code == 2
    assert "holds a read model of schema version 0; this fengqiao reads" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tz", "Mars/Olympus"], "error: --tz 'Mars/Olympus' is not a time zone"),
        (["--now", "tomorrow"], "error: --now 'tomorrow' is not an RFC 3339 instant"),
        (["--now", "2026-03-19T09:30:00"], "with an offset"),
        (["--limit", "-1"], "error: --limit must be 0 (all) or more"),
        (["--db", "mysql://u@h/db"], "FENGQIAO_VIEW_DB: the read model runs on SQLite or"),
    ],
)
def test_bad_arguments_are_one_error_line_and_exit_2(
    read_model: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = [] if "--db" in argv else ["--db", read_model]
    code, out, err = _run(capsys, "cases", "list", *db, *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err


def test_spans_read_as_days_hours_minutes() -> None:
    from datetime import timedelta  # noqa: PLC0415

    assert span(timedelta(days=2, hours=3, minutes=59)) == "2d 3h"
    assert span(timedelta(hours=3, minutes=20)) == "3h 20m"
    assert span(timedelta(minutes=-20)) == "20m"
